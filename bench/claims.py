"""The draft checks against errors injected into faithful notes: what they catch, what they
wrongly flag. Data: ACI-Bench's doctor-patient dialogues with the clinical note written from
each (../shared/eval/aci_bench). Its train split is what the claim rules were tuned on; its valid
split was not looked at while writing them, and is reported beside it.

For every note sentence the pipeline's own check (scribe.domain.evidence.check_draft, with the
whole dialogue as the transcript) runs on:

- the sentence as written (faithful): a contradiction or number flag there is a wrong flag;
- the sentence with one error injected, where it has something to inject into:
  - time: the time a quantity belongs to swapped ("this week" <-> "last week", "today" <->
    "yesterday"), the number kept;
  - opposite: a quality turned into its opposite ("better" -> "worse", "well" -> "poorly");
  - number: a number changed (n -> n + 3).
  An injected sentence counts as caught when it gets a contradiction or number flag that the
  faithful sentence did not have.

    .venv/bin/python bench/claims.py

Writes bench/out/claims.json."""

from __future__ import annotations

import csv
import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import EVAL, OUT, table
from scribe.domain.evidence import FlagKind, check_draft, split_sentences
from scribe.domain.transcript import Segment, Speaker

CHECKED = {FlagKind.CONTRADICTION, FlagKind.NUMBER_MISMATCH}
SWAPS = [("this week", "last week"), ("today", "yesterday"), ("now", "before"), ("currently", "previously")]
OPPOSITE = {"better": "worse", "worse": "better", "well": "poorly", "improved": "worsened", "worsened": "improved",
            "increased": "decreased", "decreased": "increased", "more": "less", "less": "more", "higher": "lower",
            "lower": "higher", "good": "bad", "able": "unable", "unable": "able"}


def segments_of(dialogue: str) -> tuple[Segment, ...]:
    out = []
    for line in dialogue.splitlines():
        m = re.match(r"\s*\[(\w+)\]\s*(.*)", line)
        if not m or not m.group(2).strip():
            continue
        speaker = Speaker.CLINICIAN if m.group(1).lower() in ("doctor", "nurse", "clinician") else Speaker.CLIENT
        i = len(out)
        out.append(Segment(i, float(i), float(i + 1), m.group(2).strip(), speaker))
    return tuple(out)


def flagged(sentence: str, segments: tuple[Segment, ...]) -> set[str]:
    result = check_draft([("note", sentence)], segments)
    return {f.kind for s in result.sentences + result.removed for f in s.flags if f.kind in CHECKED}


def injections(sentence: str) -> dict[str, str]:
    out: dict[str, str] = {}
    low = sentence.lower()
    if re.search(r"\d", sentence):
        for a, b in SWAPS:
            for x, y in ((a, b), (b, a)):
                if re.search(rf"\b{x}\b", low):
                    out["time"] = re.sub(rf"\b{x}\b", y, sentence, count=1, flags=re.I)
                    break
            if "time" in out:
                break
        m = re.search(r"\b\d+\b", sentence)
        if m:
            out["number"] = sentence[: m.start()] + str(int(m.group(0)) + 3) + sentence[m.end():]
    for word, opposite in OPPOSITE.items():
        if re.search(rf"\b{word}\b", low):
            out["opposite"] = re.sub(rf"\b{word}\b", opposite, sentence, count=1, flags=re.I)
            break
    return out


def run(split: str) -> dict[str, object]:
    rows = list(csv.DictReader((EVAL / "aci_bench" / f"{split}.csv").open(encoding="utf-8")))
    faithful = wrong = 0
    wrong_by: dict[str, int] = {FlagKind.CONTRADICTION.value: 0, FlagKind.NUMBER_MISMATCH.value: 0}
    injected: dict[str, int] = {"time": 0, "opposite": 0, "number": 0}
    caught: dict[str, int] = {"time": 0, "opposite": 0, "number": 0}
    for row in rows:
        segments = segments_of(row["dialogue"])
        for sentence in split_sentences(row["note"]):
            if len(sentence) > 400:
                continue
            base = flagged(sentence, segments)
            faithful += 1
            wrong += bool(base)
            for kind in base:
                wrong_by[kind] += 1
            if base:
                continue  # an error injected into a flagged sentence tells nothing
            for kind, mutated in injections(sentence).items():
                injected[kind] += 1
                caught[kind] += bool(flagged(mutated, segments) - base)
    row_out: dict[str, object] = {"split": split, "notes": len(rows), "sentences": faithful, "wrongly_flagged": wrong,
                                  "wrong_rate": wrong / faithful if faithful else 0.0,
                                  "wrong_contradiction": wrong_by["contradiction"],
                                  "wrong_number": wrong_by["number_mismatch"]}
    for kind in injected:
        row_out[f"{kind}_caught"] = f"{caught[kind]}/{injected[kind]}"
        row_out[f"{kind}_recall"] = caught[kind] / injected[kind] if injected[kind] else None
    return row_out


def main() -> None:
    rows = [run("train"), run("valid")]
    print("ACI-Bench notes against their dialogues (train: the rules were tuned on it; valid: held out)")
    print(table(rows, ["split", "notes", "sentences", "wrongly_flagged", "wrong_contradiction", "wrong_number",
                       "wrong_rate", "time_caught", "time_recall",
                       "opposite_caught", "opposite_recall", "number_caught", "number_recall"]))
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "claims.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
