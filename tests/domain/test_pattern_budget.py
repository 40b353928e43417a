"""Every compiled pattern in the redaction modules against adversarial strings, under a
time budget (issue 17 item 7). "name " then 400 letters then "!" took 103 s in the
field-label pattern; a run of blanks took minutes in the same-line address pattern."""

from __future__ import annotations

import importlib
import re
import time

import pytest

from scribe.domain.redaction import MAX_PIECE, pieces
from tests.helpers import shipped_patterns

MODULES = ["scribe.domain.patterns", "scribe.domain.cues", "scribe.domain.spoken", "scribe.domain.proper_nouns",
           "scribe.domain.redaction", "scribe.domain.vocabulary", "scribe.domain.chart", "scribe.domain.egress",
           "scribe.domain.places", "scribe.domain.evidence", "scribe.engines.presidio"]
BUDGET_SECONDS = 0.5  # per pattern and string, at the longest piece any pattern is given


def compiled_patterns() -> list[tuple[str, re.Pattern[str]]]:
    out: list[tuple[str, re.Pattern[str]]] = []
    seen: set[int] = set()

    def walk(obj: object, where: str) -> None:
        if id(obj) in seen:
            return
        seen.add(id(obj))
        if isinstance(obj, re.Pattern):
            out.append((where, obj))
        elif isinstance(obj, dict):
            for k, v in obj.items():
                walk(v, f"{where}[{k!r}]")
        elif isinstance(obj, list | tuple | set | frozenset):
            for i, v in enumerate(obj):
                walk(v, f"{where}[{i}]")

    for name in MODULES:
        module = importlib.import_module(name)
        for attr, value in vars(module).items():
            walk(value, f"{name}.{attr}")
    # and the policy's pattern file, as the redactor runs it
    table = shipped_patterns()
    for n, rule in enumerate(table.rules):
        walk(rule.pattern, f"patterns.yaml[{n}]:{rule.entity}")
    walk(table.street_suffix, "patterns.yaml:STREET_SUFFIX")
    return out


def adversarial(n: int) -> list[str]:
    """Shapes that make backtracking patterns blow up: long runs with and without separators,
    label words followed by a run that never completes, repeated cue words."""
    return [
        "name " + "a" * n + "!", "name: " + "Ab " * (n // 3) + "!", "call me " + "x " * (n // 2) + "!",
        "a" * n, "A" * n, "1" * n, "1 " * (n // 2), " " * n, "\t" * n, "," * n, ", " * (n // 2),
        "Dr. " * (n // 4), "a-" * (n // 2), "a." * (n // 2), "mr " + "b'" * (n // 2), "at " * (n // 3),
        "one two " * (n // 8), "my sister " * (n // 10), "12 " + "Main " * (n // 5) + "!",
        "Pohl" + "a" * n + " 9!", "apt " * (n // 4), "(" * n, "-" * n, "0" + "-0" * (n // 2),
    ]


PATTERNS = compiled_patterns()


def test_the_scan_finds_the_patterns_it_must_cover() -> None:
    names = {where.split("[")[0] for where, _ in PATTERNS}
    assert len(PATTERNS) > 80
    assert {"scribe.domain.patterns._FIELD", "scribe.domain.patterns._SAME_LINE"} <= names
    assert sum(where.startswith("patterns.yaml[") for where, _ in PATTERNS) == len(shipped_patterns().rules)


@pytest.mark.parametrize(("where", "pattern"), PATTERNS, ids=[w for w, _ in PATTERNS])
def test_no_pattern_backtracks_on_adversarial_input(where: str, pattern: re.Pattern[str]) -> None:
    slow = []
    for text in adversarial(MAX_PIECE):
        started = time.perf_counter()
        for _ in pattern.finditer(text):
            pass
        seconds = time.perf_counter() - started
        if seconds > BUDGET_SECONDS:
            slow.append((text[:16], round(seconds, 2)))
    assert slow == []


def test_a_long_line_is_read_in_pieces_cut_at_spaces_and_put_back_in_place() -> None:
    text = "a short line\n" + ("word " * 1000) + "\n" + "x" * 5000 + "\nthe end"
    cut = pieces(text)
    assert all(len(p) <= MAX_PIECE for _, p in cut)
    assert "".join(p for _, p in cut) == text
    assert all(text[o:o + len(p)] == p for o, p in cut)
    assert cut[0] == (0, "a short line\n") and cut[1][1].endswith(" ")  # cut at a space where there is one
    assert cut[-1][1] == "the end"


def test_text_of_ordinary_lines_is_read_whole_however_long() -> None:
    text = "\n".join(["a line of a long note"] * 500)
    assert len(text) > 5 * MAX_PIECE and pieces(text) == [(0, text)]
    assert pieces("") == [(0, "")]
