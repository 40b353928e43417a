"""Shared helpers for the benchmarks (not tests): WER normalisation and table printing."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EVAL = ROOT.parent / "shared" / "eval"
OUT = ROOT / "bench" / "out"

FILLERS = {"um", "uh", "uhm", "umm", "hmm", "hm", "mm", "mhm", "mmhmm", "ah", "er", "erm", "eh", "oh", "uh-huh"}


# Spelling variants that are the same word (as Whisper's own English normaliser treats
# them); applied identically to the reference and to every system compared.
SPELLINGS = {"okay": "ok", "alright": "all right", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4",
             "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10", "eleven": "11",
             "twelve": "12", "mr": "mister", "mrs": "missus", "dr": "doctor"}


def normalise(text: str) -> list[str]:
    """Lowercase, drop D:/P: speaker tags, [tags] and <tags>, punctuation and fillers,
    and fold spelling variants (okay/ok, alright/all right, small numbers as digits)."""
    text = re.sub(r"^\s*[A-Z]{1,10}\s*:", " ", text, flags=re.M)
    text = re.sub(r"\[[^\]]*\]|<[^>]*>|\([^)]*\)", " ", text)
    text = text.lower().replace("-", " ")
    text = re.sub(r"[^a-z0-9' ]+", " ", text)
    words = [w.strip("'") for w in text.split() if w.strip("'") and w.strip("'") not in FILLERS]
    return " ".join(SPELLINGS.get(w, w) for w in words).split()


def table(rows: list[dict[str, object]], columns: list[str]) -> str:
    widths = {c: max(len(c), *(len(_fmt(r.get(c))) for r in rows)) for c in columns}
    lines = ["  ".join(c.ljust(widths[c]) for c in columns), "  ".join("-" * widths[c] for c in columns)]
    for r in rows:
        lines.append("  ".join(_fmt(r.get(c)).ljust(widths[c]) for c in columns))
    return "\n".join(lines)


def _fmt(v: object) -> str:
    if isinstance(v, float):
        return f"{v:.3f}"
    return "" if v is None else str(v)


def reference_turns(text: str) -> list[tuple[str, str]]:
    """A D:/P: reference transcript as (normalised word, "clinician" | "client") pairs."""
    out: list[tuple[str, str]] = []
    for line in text.splitlines():
        m = re.match(r"\s*([DP])\s*:(.*)", line)
        if m:
            who = "clinician" if m.group(1) == "D" else "client"
            out.extend((w, who) for w in normalise(m.group(2)))
    return out


def speaker_accuracy(hypothesis: list[tuple[str, str]], reference: list[tuple[str, str]]) -> tuple[int, int]:
    """Words on the right speaker: the hypothesis's (word, speaker) pairs aligned to the
    reference's by their words (the longest matching runs); returns (right, aligned)."""
    from difflib import SequenceMatcher

    hyp = [(w, who) for text, who in hypothesis for w in normalise(text)]
    matcher = SequenceMatcher(a=[w for w, _ in hyp], b=[w for w, _ in reference], autojunk=False)
    right = aligned = 0
    for a, b, size in matcher.get_matching_blocks():
        for k in range(size):
            aligned += 1
            right += hyp[a + k][1] == reference[b + k][1]
    return right, aligned
