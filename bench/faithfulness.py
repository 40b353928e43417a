"""The draft checks against errors injected into faithful notes: what they catch, what they
wrongly flag (issue 15's benchmark, part a).

Data: ACI-Bench's doctor-patient dialogues with the clinical note written from each
(../shared/eval/aci_bench). Its train split is what the check rules were tuned on; its valid
split was not looked at while writing them, and is reported beside it, with MTS-Dialog's
validation set (../shared/eval/mts_dialog: short dialogues, one note section each; another
source, never looked at).

For every note sentence the pipeline's own check (scribe.domain.evidence.check_draft, with the
whole dialogue as the transcript and the policies' medicines list) runs on the sentence as
written (faithful: a flag there is a wrong flag) and on the sentence with one error injected,
where it has something to inject into:

- number: a number changed (n -> n + 3);
- time: the time a quantity belongs to swapped ("this week" <-> "last week"), the number kept;
- opposite: a quality turned into its opposite ("better" -> "worse", "well" -> "poorly");
- negation: a statement's polarity flipped ("denies" <-> "endorses", "has not had" -> "has had",
  "No wheezes" -> "Wheezes", "is" -> "is not");
- speaker: the client's report given to the clinician ("He reports that ..." -> "The clinician
  observed that ...");
- medication: a medicine the sentence names replaced by one the dialogue never names;
- event: an event the dialogue never mentions added to the sentence ("... after a car accident");
- diagnosis: a diagnosis the clinician never said added ("..., consistent with panic disorder");
- risk_denial (per note, not per sentence): the dialogue gets a screening question and the
  client's denial (suicide, self-harm, harm to others, abuse), the note its denial sentence;
  the error drops that sentence. Caught: the note is flagged for not addressing that risk.
  Wrong: the note that keeps the sentence is flagged for that risk.

An injected sentence counts as caught when it gets a flag its faithful sentence did not have
(another kind, or the same kind for another reason: a second wrong number), or is removed. A
part of the sentence flagged as unsaid in both, reworded by the error, is not a new flag.
Wrong flags are counted two ways: any flag, and any flag but
"unsupported" (the shared-word check, which a reference note written in other words than the
dialogue trips often, and which an error leaves as it was).

    .venv/bin/python bench/faithfulness.py

Writes bench/out/faithfulness.json."""

from __future__ import annotations

import csv
import json
import random
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import EVAL, OUT, ROOT, table
from scribe.domain.evidence import check_draft, split_sentences
from scribe.domain.transcript import Segment, Speaker
from scribe.domain.words import content_words
from scribe.policies.loader import load_policies

KINDS = ["number", "time", "opposite", "negation", "speaker", "medication", "event", "diagnosis", "risk_denial"]
SWAPS = [("this week", "last week"), ("today", "yesterday"), ("now", "before"), ("currently", "previously")]
OPPOSITE = {"better": "worse", "worse": "better", "well": "poorly", "improved": "worsened", "worsened": "improved",
            "increased": "decreased", "decreased": "increased", "more": "less", "less": "more", "higher": "lower",
            "lower": "higher", "good": "bad", "able": "unable", "unable": "able"}
EVENTS = ["after a car accident", "following a fall down the stairs", "since losing his job", "after a recent "
          "hospital stay", "since her divorce", "after a house fire", "following a dog bite", "since the death of "
          "a close friend", "after a bicycle crash", "following a sports injury at school"]
DIAGNOSES = ["major depressive disorder", "generalized anxiety disorder", "panic disorder", "PTSD",
             "bipolar II disorder", "ADHD", "obsessive-compulsive disorder", "borderline personality disorder",
             "alcohol use disorder", "adjustment disorder"]
# Screening question, the client's denial, and the note's sentence, per risk.
SCREENS = {
    "suicidal ideation": (["have you had any thoughts of killing yourself ?", "any thoughts of suicide lately ?",
                           "do you ever wish you could go to sleep and not wake up ?"],
                          ["Denies suicidal ideation.", "The patient denies any thoughts of suicide."]),
    "self-harm": (["have you hurt yourself on purpose , like cutting ?", "any self-harm since we last met ?"],
                  ["Denies self-harm.", "The patient denies hurting herself on purpose."]),
    "homicidal ideation": (["any thoughts of hurting someone else ?", "have you thought about hurting other people ?"],
                           ["Denies homicidal ideation.", "Denies thoughts of hurting others."]),
    "abuse or neglect": (["does anyone at home hit you or hurt you ?", "has anyone ever abused you ?"],
                         ["Denies abuse at home.", "The patient denies any abuse."]),
}
DENIALS = ["no , never .", "no , nothing like that .", "nope .", "no ."]


def segments_of(dialogue: str) -> tuple[Segment, ...]:
    out = []
    for line in dialogue.splitlines():
        m = re.match(r"\s*\[(\w+)\]\s*(.*)", line) or re.match(r"\s*(Doctor|Patient|Guest_family|Guest_clinician)\s*:\s*(.*)",
                                                             line, re.I)
        if not m or not m.group(2).strip():
            continue
        speaker = Speaker.CLINICIAN if m.group(1).lower() in ("doctor", "nurse", "clinician") else Speaker.CLIENT
        i = len(out)
        out.append(Segment(i, float(i), float(i + 1), m.group(2).strip(), speaker))
    return tuple(out)


def flags_of(sentence: str, segments: tuple[Segment, ...], medicines: frozenset[str]) -> set[str]:
    """Each flag as (kind, reason): an error that adds a reason to a flagged sentence is caught."""
    result = check_draft([("note", sentence)], segments, medicines=medicines)
    kinds = {f"{f.kind.value}: {f.reason}" for s in result.sentences for f in s.flags}
    return kinds | ({"removed"} if result.removed else set())


_PART = re.compile(r"^unsupported: nothing in the transcript says '(.*)'$")


def new_flags(after: set[str], before: set[str]) -> set[str]:
    """The flags an error added. A part of the sentence flagged as unsaid before and after, in
    the error's words, is the same flag ("'has not had chest pain'" and "'has had chest pain'"):
    only a part sharing less than half its words with every part flagged before is new."""
    before_parts = [set(content_words(m.group(1))) for f in before if (m := _PART.match(f))]
    out = set()
    for flag in after - before:
        m = _PART.match(flag)
        if m:
            words = set(content_words(m.group(1)))
            if any(len(words & part) * 2 >= len(words) for part in before_parts):
                continue
        out.add(flag)
    return out


def _absent(candidates: list[str], said: str, rng: random.Random) -> str | None:
    fresh = [c for c in candidates if not any(w in said for w in re.findall(r"[a-z]{4,}", c.lower()))]
    return rng.choice(fresh) if fresh else None


def _flip_negation(sentence: str) -> str | None:
    rules = [
        (r"\bdenies\b", "endorses"), (r"\bendorses\b", "denies"), (r"\bdenied\b", "endorsed"),
        (r"\b(is|was|has|have|does|did|do|are|were|had|can|could|will|would) not\b", r"\1"),
        (r"\b(is|was|has|have|does|did|do|are|were|had|can|could|will|would)n't\b", r"\1"),
        (r"^No\s+(\w)", lambda m: m.group(1).upper()),
        (r"\b(is|was|has|are|were|had|can|will)\b", r"\1 not"),
    ]
    for pattern, repl in rules:
        if re.search(pattern, sentence):
            return re.sub(pattern, repl, sentence, count=1)  # type: ignore[arg-type]
    return None


_REPORT = re.compile(r"^(?:The patient|Patient|He|She|They)\s+(?:reports|states|says|notes|endorses|describes"
                     r"|explains|mentions|admits|indicates)\s+(?:that\s+)?")


def injections(sentence: str, said: str, medicines: frozenset[str], rng: random.Random) -> dict[str, str]:
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
    flipped = _flip_negation(sentence)
    if flipped:
        out["negation"] = flipped
    m = _REPORT.match(sentence)
    if m:
        out["speaker"] = "The clinician observed that " + sentence[m.end():]
    named = [w for w in re.findall(r"[A-Za-z][a-z-]+", sentence) if w.lower() in medicines]
    if named:
        other = _absent(sorted(medicines), said, rng)
        if other:
            out["medication"] = re.sub(rf"\b{re.escape(named[0])}\b", other.capitalize(), sentence, count=1)
    body = sentence.rstrip(".")
    if sentence.endswith(".") and len(body.split()) >= 4:
        event = _absent(EVENTS, said, rng)
        if event:
            out["event"] = f"{body} {event}."
        diagnosis = _absent(DIAGNOSES, said, rng)
        if diagnosis:
            out["diagnosis"] = f"{body}, consistent with {diagnosis}."
    return out


def risk_cases(row: dict[str, str], number: int, medicines: frozenset[str]) -> list[tuple[bool, bool]]:
    """(faithful note flagged, note with the denial dropped flagged) for two risks."""
    segments = segments_of(row["dialogue"])
    sentences = [("note", s) for s in split_sentences(row["note"]) if len(s) <= 400]
    out = []
    names = sorted(SCREENS)
    for k in range(2):
        category = names[(number + 2 * k) % len(names)]
        questions, notes = SCREENS[category]
        q = questions[(number + k) % len(questions)]
        a = DENIALS[(number + k) % len(DENIALS)]
        n = len(segments)
        asked = (*segments, Segment(n, float(n), float(n + 1), q, Speaker.CLINICIAN),
                 Segment(n + 1, float(n + 1), float(n + 2), a, Speaker.CLIENT))
        denial = ("note", notes[(number + k) % len(notes)])

        def flagged(draft: list[tuple[str, str]], category: str = category,
                    asked: tuple[Segment, ...] = asked) -> bool:
            result = check_draft(draft, asked, medicines=medicines)
            return any(f.category == category for f in result.draft_flags)
        out.append((flagged([*sentences, denial]), flagged(sentences)))
    return out


def load(split: str) -> list[dict[str, str]]:
    if split == "mts-valid":  # MTS-Dialog's validation set: one note section per dialogue
        path = EVAL / "mts_dialog" / "MTS-Dialog-ValidationSet.csv"
        return [{"encounter_id": r["ID"], "dialogue": r["dialogue"], "note": r["section_text"]}
                for r in csv.DictReader(path.open(encoding="utf-8"))]
    return list(csv.DictReader((EVAL / "aci_bench" / f"{split}.csv").open(encoding="utf-8")))


def run(split: str, medicines: frozenset[str]) -> dict[str, object]:
    rows = load(split)
    faithful = wrong_any = wrong_error = 0
    wrong_by: dict[str, int] = {}
    injected = dict.fromkeys(KINDS, 0)
    caught = dict.fromkeys(KINDS, 0)
    risk_wrong = 0
    for number, row in enumerate(rows):
        segments = segments_of(row["dialogue"])
        said = row["dialogue"].lower()
        rng = random.Random(f"{split}:{row['encounter_id']}")
        for sentence in split_sentences(row["note"]):
            if len(sentence) > 400:
                continue
            base = flags_of(sentence, segments, medicines)
            faithful += 1
            kinds = {flag.split(":", 1)[0] for flag in base}
            wrong_any += bool(kinds)
            wrong_error += bool(kinds - {"unsupported"})
            for kind in kinds:
                wrong_by[kind] = wrong_by.get(kind, 0) + 1
            if "removed" in base:
                continue  # a removed sentence cannot be flagged further
            for kind, mutated in injections(sentence, said, medicines, rng).items():
                injected[kind] += 1
                caught[kind] += bool(new_flags(flags_of(mutated, segments, medicines), base))
        for kept, dropped in risk_cases(row, number, medicines):
            injected["risk_denial"] += 1
            caught["risk_denial"] += dropped
            risk_wrong += kept
    out: dict[str, object] = {"split": split, "notes": len(rows), "sentences": faithful,
                              "wrong_any": wrong_any / faithful, "wrong_error": wrong_error / faithful,
                              "wrong_by_kind": wrong_by, "risk_notes_wrong": f"{risk_wrong}/{injected['risk_denial']}"}
    for kind in KINDS:
        out[f"{kind}_caught"] = f"{caught[kind]}/{injected[kind]}"
        out[f"{kind}_recall"] = caught[kind] / injected[kind] if injected[kind] else None
    return out


def main() -> None:
    medicines = load_policies(ROOT / "policies").pipeline.medicines
    rows = [run("train", medicines), run("valid", medicines), run("mts-valid", medicines)]
    print("Notes against their dialogues (ACI-Bench train: the rules were tuned on it; ACI-Bench valid and "
          "MTS-Dialog's validation set: held out)")
    print(table(rows, ["split", "notes", "sentences", "wrong_any", "wrong_error", "risk_notes_wrong"]))
    print()
    recall = [{"kind": k, **{str(r["split"]): f"{r[f'{k}_caught']} = {r[f'{k}_recall'] or 0:.3f}" for r in rows}}
              for k in KINDS]
    print(table(recall, ["kind", "train", "valid", "mts-valid"]))
    print()
    for r in rows:
        print(f"{r['split']}: wrong flags by kind {r['wrong_by_kind']}")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "faithfulness.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
