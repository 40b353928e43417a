"""Draft quality on ACI-Bench's held-out dialogues: scribe's drafting path beside a plain single
prompt on the same weights, in the same run (issue 15's benchmark, part b).

Data: ACI-Bench valid (../shared/eval/aci_bench/valid.csv; 20 doctor-patient dialogues, each with
the clinical note written from it). Nothing in the drafting prompts was written against it.

- scribe: scribe.services.drafting.draft_and_check, the path `scribe draft` and the pipeline
  take: the dialogue pseudonymized by the real redactor, read in parts when long, the SOAP
  template's sections written one by one, every sentence checked, removed sentences left out,
  placeholders put back; the note rendered with its section headings.
- plain prompt: the same drafter's weights and decoding given the dialogue as it is and one
  instruction ("Write the clinical note ..."), up to 600 new tokens. Its sentences run through
  the same checks, for the pass share only; nothing is removed from its text.

Per note and averaged:
- ROUGE-1, ROUGE-2 and ROUGE-Lsum F1 (x100) against the reference note: lowercased words of
  letters and digits, no stemming, Lsum over sentences (the summary-level LCS), as in the
  rouge_score package's defaults, computed here;
- fact recall: the reference note's facts, taken as its noun phrases (the pinned spaCy model's
  noun chunks, headings and pronouns left out), found in the draft: the phrase's head word and at
  least half of its other content words among the draft's lemmas, numbers exactly;
- the share of draft sentences that pass every check (no flag, not removed), "Not discussed in
  session." left out of both counts;
- seconds per note (scribe: pseudonymizing, reading, drafting and checking; plain: generating).

    .venv/bin/python bench/draft_quality.py [--profile default] [--notes 20]

Writes bench/out/draft_quality.json."""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import EVAL, OUT, table
from bench.faithfulness import segments_of
from scribe.config import Settings
from scribe.domain.evidence import check_draft, split_sentences
from scribe.domain.redaction import reidentify
from scribe.engines.build import build_drafter, build_redactor, check_models
from scribe.engines.offline import force_offline
from scribe.engines.prompts import NOT_DISCUSSED
from scribe.policies import load_policies
from scribe.services.drafting import draft_and_check
from scribe.weights import profile_paths

PLAIN = ("Write the clinical note for this doctor-patient conversation, with the usual sections "
         "(chief complaint, history of present illness, review of systems, physical exam, results, "
         "assessment and plan).\n\nConversation:\n{dialogue}")
PLAIN_MAX_NEW = 600
GENERIC = {"patient", "doctor", "today", "time", "mr", "mrs", "ms", "dr", "thing", "lot", "bit"}


def words(text: str) -> list[str]:
    return re.sub(r"[^a-z0-9]+", " ", text.lower()).split()


def _ngrams(tokens: list[str], n: int) -> Counter[tuple[str, ...]]:
    return Counter(tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))


def _f1(hits: float, cand: int, ref: int) -> float:
    if not hits or not cand or not ref:
        return 0.0
    p, r = hits / cand, hits / ref
    return 2 * p * r / (p + r)


def rouge_n(candidate: str, reference: str, n: int) -> float:
    c, r = _ngrams(words(candidate), n), _ngrams(words(reference), n)
    return _f1(sum((c & r).values()), sum(c.values()), sum(r.values()))


def _lcs_positions(a: list[str], b: list[str]) -> set[int]:
    """Indices of ``a`` on one longest common subsequence with ``b``."""
    table_ = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(len(a)):
        for j in range(len(b)):
            table_[i + 1][j + 1] = table_[i][j] + 1 if a[i] == b[j] else max(table_[i][j + 1], table_[i + 1][j])
    out, i, j = set(), len(a), len(b)
    while i and j:
        if a[i - 1] == b[j - 1]:
            out.add(i - 1)
            i, j = i - 1, j - 1
        elif table_[i - 1][j] >= table_[i][j - 1]:
            i -= 1
        else:
            j -= 1
    return out


def rouge_lsum(candidate: str, reference: str) -> float:
    """Summary-level ROUGE-L: for each reference sentence, the union of its words on an LCS with
    each candidate sentence, each word counted no more often than either side has it."""
    cands = [words(s) for s in _lines(candidate)]
    refs = [words(s) for s in _lines(reference)]
    c_left = Counter(w for s in cands for w in s)
    r_left = Counter(w for s in refs for w in s)
    c_total, r_total = sum(c_left.values()), sum(r_left.values())
    hits = 0
    for ref in refs:
        union: set[int] = set()
        for cand in cands:
            union |= _lcs_positions(ref, cand)
        for i in sorted(union):
            w = ref[i]
            if c_left[w] > 0 and r_left[w] > 0:
                hits += 1
                c_left[w] -= 1
                r_left[w] -= 1
    return _f1(hits, c_total, r_total)


def _lines(text: str) -> list[str]:
    return [s for line in text.splitlines() if line.strip() for s in split_sentences(line) or [line.strip()]]


def _is_heading(line: str) -> bool:
    letters = re.sub(r"[^A-Za-z]", "", line)
    return bool(letters) and letters.isupper() and len(line.split()) <= 6


def facts(nlp: Any, reference: str) -> list[tuple[str, frozenset[str]]]:
    """The reference's noun phrases as (head lemma, other content lemmas)."""
    body = "\n".join(line for line in reference.splitlines() if line.strip() and not _is_heading(line.strip()))
    out = []
    for chunk in nlp(body).noun_chunks:
        content = [t for t in chunk if (t.is_alpha or t.like_num) and not t.is_stop and t.pos_ != "PRON"
                   and t.lemma_.lower() not in GENERIC]
        if chunk.root not in content:
            continue
        others = frozenset(t.lemma_.lower() for t in content if t is not chunk.root)
        out.append((chunk.root.lemma_.lower(), others))
    return out


def fact_recall(nlp: Any, reference_facts: list[tuple[str, frozenset[str]]], draft: str) -> float:
    if not reference_facts:
        return 0.0
    have = {t.lemma_.lower() for t in nlp(draft)} | set(words(draft))
    found = 0
    for head, others in reference_facts:
        if head in have and (not others or len(others & have) * 2 >= len(others)):
            found += 1
    return found / len(reference_facts)


def pass_share(checked: Any) -> tuple[int, int]:
    kept = [c for c in checked.sentences if NOT_DISCUSSED.lower() not in c.text.lower()]
    passed = sum(1 for c in kept if not c.flags)
    return passed, len(kept) + len(checked.removed)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--profile", default="default")
    ap.add_argument("--notes", type=int, default=20, help="the first N dialogues of the split")
    ap.add_argument("--split", choices=("valid", "train"), default="valid",
                    help="valid: held out (report); train: what drafting changes are tried on")
    ap.add_argument("--templates", default="soap",
                    help="comma-separated note templates scribe drafts each dialogue with (policies/note_templates)")
    ap.add_argument("--skip-plain", action="store_true", help="scribe's drafts only (a change to scribe's path "
                    "against an earlier run's plain figures)")
    args = ap.parse_args()
    force_offline()
    settings = Settings(model_profile=args.profile)
    check_models(settings)
    policies = load_policies(settings.policies_dir)
    templates = [policies.template(key) for key in args.templates.split(",")]
    drafter = build_drafter(settings)
    redactor = build_redactor(settings, policies.redaction)
    import spacy

    nlp = spacy.load(profile_paths(settings.models_dir, args.profile).spacy)
    rows = list(csv.DictReader((EVAL / "aci_bench" / f"{args.split}.csv").open()))[: args.notes]
    systems = [f"scribe {t.key}" for t in templates] + ([] if args.skip_plain else ["plain"])
    per_note: list[dict[str, Any]] = []
    for row in rows:
        segments = segments_of(row["dialogue"])
        reference = row["note"]
        ref_facts = facts(nlp, reference)
        note: dict[str, Any] = {"encounter": row["encounter_id"]}
        for template in templates:
            drafted = draft_and_check(drafter, redactor, policies, template, segments)
            rev = drafted.pseudo.surrogates.reverse
            ours = "\n\n".join(
                f"{s.title.upper()}\n" + " ".join(reidentify(c.text, rev) for c in drafted.checked.sentences
                                                  if c.section == s.key)
                for s in template.sections)
            note[f"scribe {template.key}"] = measure(nlp, ref_facts, reference, ours, drafted.checked, drafted.seconds,
                                                     drafted.result.generated_tokens)
            note[f"scribe {template.key}"]["parts_noted"] = drafted.parts_noted
        if not args.skip_plain:
            started = time.perf_counter()
            messages = [{"role": "user", "content": PLAIN.format(dialogue=row["dialogue"].strip())}]
            # The drafter's own generation step, without scribe's prompts around it.
            plain, _, plain_generated = drafter._generate(messages, "", None, PLAIN_MAX_NEW)  # type: ignore[attr-defined]
            plain_seconds = time.perf_counter() - started
            plain_pairs = [("note", s) for s in _lines(plain) if not _is_heading(s)]
            plain_checked = check_draft(plain_pairs, segments, medicines=policies.pipeline.medicines)
            note["plain"] = measure(nlp, ref_facts, reference, plain, plain_checked, plain_seconds, plain_generated)
        per_note.append(note)
        print(f"{row['encounter_id']}: " + " | ".join(
            f"{name} R1 {note[name]['rouge1']:.1f} facts {note[name]['fact_recall']:.2f} {note[name]['seconds']:.0f}s"
            for name in systems), flush=True)
        summary = summarize(per_note, systems)
        OUT.mkdir(exist_ok=True)  # after every note: a stopped run keeps what it measured
        (OUT / f"draft_quality_{args.split}.json").write_text(json.dumps({
            "split": args.split, "profile": args.profile, "model": drafter.name, "summary": summary, "notes": per_note},
            indent=2))
    print(f"\nACI-Bench {args.split}, first {len(per_note)} dialogues, profile {args.profile} ({drafter.name})")
    print(table(summarize(per_note, systems), ["system", "ROUGE-1", "ROUGE-2", "ROUGE-Lsum", "fact recall",
                                               "pass every check", "s/note", "tokens/note"]))


def measure(nlp: Any, ref_facts: list[tuple[str, frozenset[str]]], reference: str, text: str, checked: Any,
            seconds: float, generated: int) -> dict[str, Any]:
    passed, total = pass_share(checked)
    return {"rouge1": 100 * rouge_n(text, reference, 1), "rouge2": 100 * rouge_n(text, reference, 2),
            "rougeLsum": 100 * rouge_lsum(text, reference), "fact_recall": fact_recall(nlp, ref_facts, text),
            "passed": passed, "sentences": total, "seconds": seconds, "generated_tokens": generated}


def summarize(per_note: list[dict[str, Any]], systems: list[str]) -> list[dict[str, object]]:
    summary: list[dict[str, object]] = []
    for name in systems:
        ns = [n[name] for n in per_note]
        summary.append({
            "system": name,
            "ROUGE-1": sum(n["rouge1"] for n in ns) / len(ns),
            "ROUGE-2": sum(n["rouge2"] for n in ns) / len(ns),
            "ROUGE-Lsum": sum(n["rougeLsum"] for n in ns) / len(ns),
            "fact recall": sum(n["fact_recall"] for n in ns) / len(ns),
            "pass every check": sum(n["passed"] for n in ns) / max(1, sum(n["sentences"] for n in ns)),
            "s/note": sum(n["seconds"] for n in ns) / len(ns),
            "tokens/note": sum(n["generated_tokens"] for n in ns) / len(ns),
        })
    return summary

if __name__ == "__main__":
    main()
