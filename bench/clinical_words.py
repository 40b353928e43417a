"""Build policies/vocabulary/clinical_seen.txt: clinical words seen written in lowercase in the
clinical text of at least two independent sources, so that the redactor reads them as no
one's name ('hematuria', 'nitroprusside').

Sources (../shared/eval, written by others), none of them a set a figure is reported on:
- PhysioNet deid notes, the `tune` half only (bench/redaction.py's split), less their gold
  identifiers;
- ACI-Bench `train` dialogues and notes (`valid` is where drafting is judged);
- MTS-Dialog's training set (its validation set is where the draft checks are judged).

A word is kept when it is seen in lowercase in two or more sources (a typo of one corpus, such
as 'hospiatal', is not), has five letters or more, and is in none of the general English
word lists zxcvbn ships (encyclopaedia, film dialogue and its list of common passwords, which
holds 'tennis' and 'player'), nor a
known first name or surname, nor a place the redactor knows: a word listed here is never redacted, so a
name must never land here.

    .venv/bin/python bench/clinical_words.py      # rewrites the file, prints what it holds
"""

from __future__ import annotations

import csv
import json
import re
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import EVAL, ROOT
from bench.redaction import half

TARGET = ROOT / "policies" / "vocabulary" / "clinical_seen.txt"
_WORD = re.compile(r"(?<![\w'’-])([a-z]{5,})(?![\w'’-])")
MIN_SOURCES = 2


def _physionet_tune() -> list[str]:
    texts = []
    with (EVAL / "physionet_deid" / "deid_gold_dev.jsonl").open() as f:
        for line in f:
            r = json.loads(line)
            if half(f"patient {r['patient']}") != "tune":
                continue
            text = list(r["text"])
            for s in r["spans"]:  # the gold identifiers blanked out
                text[s["start"]:s["end"]] = " " * (s["end"] - s["start"])
            texts.append("".join(text))
    return texts


def _aci_train() -> list[str]:
    rows = csv.DictReader((EVAL / "aci_bench" / "train.csv").open())
    return [t for r in rows for t in (r["dialogue"], r["note"])]


def _mts_train() -> list[str]:
    rows = csv.DictReader((EVAL / "mts_dialog" / "MTS-Dialog-TrainingSet.csv").open())
    return [t for r in rows for t in (r["section_text"], r["dialogue"])]


def main() -> None:
    from scribe.domain.places import COUNTRIES, US_STATES, place_words
    from scribe.engines.presidio import build_lexicon
    from scribe.policies import load_policies

    policy = load_policies(ROOT / "policies").redaction
    listed = policy.clinical_terms - _read_existing()
    lexicon = build_lexicon(policy.clinical_terms, policy.pattern_table, policy.grammar_words)
    seen: dict[str, set[str]] = defaultdict(set)
    for source, texts in (("physionet tune", _physionet_tune()), ("aci train", _aci_train()),
                          ("mts train", _mts_train())):
        for text in texts:
            for m in _WORD.finditer(text):
                seen[m.group(1)].add(source)
    from zxcvbn.frequency_lists import FREQUENCY_LISTS as lists

    # general English: every word of zxcvbn's lists, not only the everyday part the lexicon keeps
    # ('tennis', 'player' are no clinical words, and a name may follow them; zxcvbn keeps each word
    # in one list only, so the common password list holds many everyday words)
    general = frozenset(w for words in lists.values() for w in words)
    refuse = lexicon.names | lexicon.places | general | COUNTRIES | US_STATES | place_words() | listed
    words = sorted(w for w, sources in seen.items() if len(sources) >= MIN_SOURCES and w not in refuse)
    header = (
        "# Clinical words seen in lowercase in the clinical text of at least two independent sources\n"
        "# (PhysioNet deid notes, tune half; ACI-Bench train; MTS-Dialog training set), five letters or\n"
        "# more, none a general English word, a first name, a surname or a known place. Written by\n"
        "# bench/clinical_words.py: edit that, not this file.\n")
    lines = [" ".join(words[i:i + 12]) for i in range(0, len(words), 12)]
    TARGET.write_text(header + "\n".join(lines) + "\n")
    print(f"{len(words)} words written to {TARGET.relative_to(ROOT)} (seen in lowercase: {len(seen)} words)")


def _read_existing() -> frozenset[str]:
    """The words this script wrote last time (so a re-run does not find them 'listed already')."""
    if not TARGET.exists():
        return frozenset()
    return frozenset(w for line in TARGET.read_text().splitlines() for w in line.split("#", 1)[0].split())


if __name__ == "__main__":
    main()
