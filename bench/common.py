"""Shared helpers for the benchmarks (not tests): WER normalisation and table printing."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EVAL = ROOT.parent / "shared" / "eval"
OUT = ROOT / "bench" / "out"

FILLERS = {"um", "uh", "uhm", "umm", "hmm", "hm", "mm", "mhm", "mmhmm", "ah", "er", "erm", "eh", "oh", "uh-huh"}


def normalise(text: str) -> list[str]:
    """Lowercase, drop D:/P: speaker tags, [tags] and <tags>, punctuation and fillers."""
    text = re.sub(r"^\s*[A-Z]{1,10}\s*:", " ", text, flags=re.M)
    text = re.sub(r"\[[^\]]*\]|<[^>]*>|\([^)]*\)", " ", text)
    text = text.lower().replace("-", " ")
    text = re.sub(r"[^a-z0-9' ]+", " ", text)
    return [w.strip("'") for w in text.split() if w.strip("'") and w.strip("'") not in FILLERS]


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
