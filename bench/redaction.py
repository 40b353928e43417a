"""Redaction recall, precision and speed: ours beside vanilla Presidio, in the same run.

Sets (from ../shared/eval, written by others):
  presidio_synth   presidio-research's synthetic sentences (1,000), gold spans by type
  physionet_deid   PhysioNet deid gold notes (dev), gold PHI spans
  aci_bench        ACI-Bench valid dialogues, one segment per speaker turn; gold = every mention
                   of the patient's names from the metadata (ours is given them as chart-known
                   identifiers, as in scribe)
  asr_style        presidio_synth made to look like speech recognition output: lowercase, no
                   punctuation, numbers and emails spoken ("five five five", "at gmail dot com")

Scoring, the same for both systems: a gold identifier counts as caught when 80 % or more of
its letters and digits lie inside predicted spans (of any type: a redactor only has to remove
it); a predicted span counts as correct when half or more of its letters and digits lie inside
gold spans. "overall" leaves out presidio_synth's TITLE (Mr., Dr.) and NRP (nationality,
religion) classes and ages under 90, which are not Safe Harbor identifiers (scribe keeps an
age of 45 in the note on purpose); they still appear in their own rows.

"ours+notes" is ours with the notes model on (policies/redaction.yaml: notes_model), the NER
trained by bench/train_notes_ner.py on the PhysioNet tune half: its PhysioNet figures that count
are the report half's.

Vanilla = presidio_analyzer.AnalyzerEngine with the same spaCy model, default recognizers,
default threshold. Both systems read each set in batches (ours through find_spans_batch, as a
transcript's segments are read; vanilla through Presidio's own BatchAnalyzerEngine), so the
kchars/s figures compare like with like. Prints a table per set and writes bench/out/redaction.json.

    .venv/bin/python bench/redaction.py [--limit N]
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import itertools
import json
import random
import re
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import EVAL, OUT, ROOT, table
from scribe.domain.redaction import KnownIdentifier
from scribe.domain.spoken import speak_digits, speak_email

NOT_IDENTIFIERS = {"TITLE", "NRP", "AGE_UNDER_90"}


@dataclass
class Doc:
    text: str
    gold: list[tuple[int, int, str]]
    known: list[KnownIdentifier]
    group: str = ""  # what the split goes by: the synthetic set's template, the patient, the dialogue


HALVES = ("tune", "report")


def half(group: str) -> str:
    """A document's half, fixed by a hash of its group (a template, a patient, a dialogue), so
    that no template, patient or dialogue is on both sides. Rules are tuned on "tune" only;
    "report" is the half a change is judged on."""
    return HALVES[hashlib.sha256(group.encode()).digest()[0] % 2]


def presidio_synth(limit: int | None) -> list[Doc]:
    rows = json.loads((EVAL / "presidio_synth" / "synth_dataset_v2_dev.json").read_text())[:limit]
    return [Doc(r["full_text"], [(s["start_position"], s["end_position"], s["entity_type"]) for s in r["spans"]], [],
                f"template {r['template_id']}") for r in rows]


def physionet(limit: int | None) -> list[Doc]:
    docs = []
    with (EVAL / "physionet_deid" / "deid_gold_dev.jsonl").open() as f:
        for line in f:
            r = json.loads(line)
            docs.append(Doc(r["text"], [(s["start"], s["end"], s["type"]) for s in r["spans"]], [],
                            f"patient {r['patient']}"))
    return docs[:limit]


def aci(limit: int | None) -> list[Doc]:
    folder = EVAL / "aci_bench"
    meta = {m["encounter_id"]: m for m in csv.DictReader((folder / "valid_metadata.csv").open())}
    docs = []
    for row in csv.DictReader((folder / "valid.csv").open()):
        m = meta[row["encounter_id"]]
        names = [n.strip() for n in (m["patient_firstname"], m["patient_familyname"], m["doctor_name"]) if n.strip()]
        text = row["dialogue"]
        gold = []
        for n in names:
            gold += [(x.start(), x.end(), "PERSON") for x in re.finditer(rf"\b{re.escape(n)}\b", text, re.I)]
        full = " ".join(n.strip() for n in (m["patient_firstname"], m["patient_familyname"]) if n.strip())
        known = [KnownIdentifier(full, "PERSON", "client.name")] + [KnownIdentifier(n, "PERSON", "client.name") for n in names]
        docs.append(Doc(text, gold, known, f"dialogue {row['encounter_id']}"))
    return [turn for doc in docs[:limit] for turn in _turns(doc)]


def _turns(doc: Doc) -> list[Doc]:
    """A dialogue as scribe reads a transcript: one segment per speaker turn (line), all
    sharing the dialogue's chart."""
    out, pos = [], 0
    for line in doc.text.split("\n"):
        start, end = pos, pos + len(line)
        pos = end + 1
        if line.strip():
            gold = [(s - start, e - start, k) for s, e, k in doc.gold if start <= s and e <= end]
            out.append(Doc(line, gold, doc.known, doc.group))
    return out


_SPOKEN_NUMBER_TYPES = {"PHONE_NUMBER", "CREDIT_CARD", "US_SSN", "ZIP_CODE", "IBAN_CODE", "US_DRIVER_LICENSE"}


def asr_style(limit: int | None, seed: int = 7) -> list[Doc]:
    """Rebuild each synthetic sentence as an ASR transcript: each piece (gold value or the
    text between) is transformed on its own, so the gold spans stay exact."""
    rng = random.Random(seed)
    out = []
    for doc in presidio_synth(limit):
        pieces: list[tuple[str, str | None]] = []
        pos = 0
        for start, end, kind in sorted(doc.gold):
            pieces.append((doc.text[pos:start], None))
            pieces.append((doc.text[start:end], kind))
            pos = end
        pieces.append((doc.text[pos:], None))
        text, gold = "", []
        for piece, piece_kind in pieces:
            spoken = _speak(piece, piece_kind, rng)
            if piece_kind is not None and spoken.strip():
                lead = len(spoken) - len(spoken.lstrip())
                gold.append((len(text) + lead, len(text) + len(spoken.rstrip()), piece_kind))
            text += spoken
        out.append(Doc(text, gold, [], doc.group))
    return out


def _speak(piece: str, kind: str | None, rng: random.Random) -> str:
    if kind == "EMAIL_ADDRESS":
        return " " + speak_email(piece) + " "
    if kind in _SPOKEN_NUMBER_TYPES:
        piece = speak_digits(piece)
    else:
        piece = re.sub(r"\d+", lambda m: speak_digits(m.group(0)) if len(m.group(0)) > 2 else m.group(0), piece)
    piece = re.sub(r"[^\w\s']", " ", piece.lower())
    return re.sub(r"\s+", " ", piece)


def _kind(value: str, kind: str) -> str:
    """Ages under 90 are not identifiers under Safe Harbor (and scribe keeps them): own row."""
    if kind in ("AGE", "Age"):
        numbers = [int(n) for n in re.findall(r"\d+", value)]
        if numbers and max(numbers) < 90:
            return "AGE_UNDER_90"
    return kind


def _covered(text: str, start: int, end: int, mask: list[bool]) -> float:
    idx = [i for i in range(start, end) if text[i].isalnum()]
    return sum(mask[i] for i in idx) / len(idx) if idx else 1.0


Predict = Callable[[list[Doc]], list[list[tuple[int, int]]]]


def score(docs: list[Doc], predicted: list[list[tuple[int, int]]]) -> dict[str, dict[str, Any]]:
    found: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    correct = total_pred = 0
    for doc, preds in zip(docs, predicted, strict=True):
        pmask = [False] * len(doc.text)
        for s, e in preds:
            for i in range(s, e):
                pmask[i] = True
        gmask = [False] * len(doc.text)
        for s, e, _ in doc.gold:
            for i in range(s, e):
                gmask[i] = True
        for s, e, kind in doc.gold:
            kind = _kind(doc.text[s:e], kind)
            found[kind][1] += 1
            found[kind][0] += _covered(doc.text, s, e, pmask) >= 0.8
        for s, e in preds:
            if any(c.isalnum() for c in doc.text[s:e]):
                total_pred += 1
                correct += _covered(doc.text, s, e, gmask) >= 0.5
    rows = {k: {"recall": v[0] / v[1], "n": v[1]} for k, v in sorted(found.items())}
    ids = [v for k, v in found.items() if k not in NOT_IDENTIFIERS]
    n = sum(v[1] for v in ids)
    rows["overall"] = {"recall": sum(v[0] for v in ids) / n if n else 1.0, "n": n,
                       "precision": correct / total_pred if total_pred else 1.0,
                       "predicted": total_pred, "correct": correct}
    return rows


def run(name: str, docs: list[Doc], systems: dict[str, Predict]) -> dict[str, Any]:
    results: dict[str, Any] = {}
    chars = sum(len(d.text) for d in docs)
    for sys_name, fn in systems.items():
        started = time.perf_counter()
        preds = fn(docs)
        seconds = time.perf_counter() - started
        rows = score(docs, preds)
        rows["overall"]["kchars_per_s"] = chars / 1000 / seconds
        rows["halves"] = {h: score([d for d in docs if half(d.group) == h],
                                   [p for d, p in zip(docs, preds, strict=True) if half(d.group) == h])["overall"]
                          for h in HALVES}
        results[sys_name] = rows
    kinds = [k for k in results["ours"] if k not in ("overall", "halves")] + ["overall"]
    printable = [{"entity": k, "n": results["ours"][k]["n"],
                  **{f"{s} recall": results[s][k]["recall"] for s in systems}} for k in kinds]
    for s in systems:
        printable[-1][f"{s} precision"] = results[s]["overall"]["precision"]
        printable[-1][f"{s} kchars/s"] = results[s]["overall"]["kchars_per_s"]
    print(f"\n== {name}: {len(docs)} documents, {chars / 1000:.0f} kchars")
    print(table(printable, list(printable[-1].keys())))
    halves = [{"half": h, "documents": sum(half(d.group) == h for d in docs), "identifiers": results["ours"]["halves"][h]["n"],
               **{f"{s} {m}": results[s]["halves"][h][m] for s in systems for m in ("recall", "precision")}}
              for h in HALVES]
    print(table(halves, list(halves[0].keys())))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--limit", type=int, default=None, help="documents per set (all by default)")
    parser.add_argument("--sets", default="presidio_synth,physionet_deid,aci_bench,asr_style",
                        help="comma-separated subset of the sets")
    args = parser.parse_args()
    from presidio_analyzer import AnalyzerEngine, BatchAnalyzerEngine
    from presidio_analyzer.nlp_engine import NlpEngineProvider

    from scribe.config import Settings
    from scribe.engines.build import build_redactor
    from scribe.policies import load_policies
    from scribe.weights import profile_paths

    settings = Settings(models_dir=ROOT / "models", model_profile="test")
    policy = load_policies(ROOT / "policies").redaction
    ours = build_redactor(settings, policy.model_copy(update={"notes_model": False}))
    ours.warm_up()  # its helper processes start once per process, not per transcript
    # the same, with the notes model read on notes in capitals or shorthand (redaction.yaml: notes_model)
    with_notes = build_redactor(settings, policy.model_copy(update={"notes_model": True}))
    with_notes.warm_up()
    spacy_dir = profile_paths(settings.models_dir, "test").spacy
    vanilla = AnalyzerEngine(nlp_engine=NlpEngineProvider(nlp_configuration={
        "nlp_engine_name": "spacy", "models": [{"lang_code": "en", "model_name": str(spacy_dir)}]}).create_engine())
    batch_vanilla = BatchAnalyzerEngine(vanilla)

    def reader(redactor: Any) -> Predict:
        def run_ours(docs: list[Doc]) -> list[list[tuple[int, int]]]:
            # a transcript's segments share one chart: documents with the same known identifiers
            # go through the batch API together, as pseudonymize sends a whole transcript
            preds: list[list[tuple[int, int]]] = []
            for _, group in itertools.groupby(docs, key=lambda d: d.known):
                group_docs = list(group)
                preds += [[(s.start, s.end) for s in spans]
                          for spans in redactor.find_spans_batch([d.text for d in group_docs], group_docs[0].known)]
            return preds
        return run_ours

    def run_vanilla(docs: list[Doc]) -> list[list[tuple[int, int]]]:
        return [[(r.start, r.end) for r in results]
                for results in batch_vanilla.analyze_iterator([d.text for d in docs], language="en", batch_size=64)]

    systems: dict[str, Predict] = {"ours": reader(ours), "ours+notes": reader(with_notes), "vanilla": run_vanilla}
    report: dict[str, Any] = {}
    for name, loader in (("presidio_synth", presidio_synth), ("physionet_deid", physionet), ("aci_bench", aci),
                         ("asr_style", asr_style)):
        if name in args.sets.split(","):
            report[name] = run(name, loader(args.limit), systems)
    # precision over every span predicted in every set read, as one pool
    pooled = {s: sum(r[s]["overall"]["correct"] for r in report.values()) /
              max(1, sum(r[s]["overall"]["predicted"] for r in report.values())) for s in systems}
    report["pooled_precision"] = pooled
    print("\nprecision pooled over the sets: " + ", ".join(f"{s} {p:.3f}" for s, p in pooled.items()))
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "redaction.json").write_text(json.dumps(report, indent=2))
    print(f"\nwritten: {OUT / 'redaction.json'}")


if __name__ == "__main__":
    main()
