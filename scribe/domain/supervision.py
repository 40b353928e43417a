"""Supervision arithmetic: the AI-draft diff a supervisor reviews, edit distance and share
kept, licensure hours and progress against targets. Pure functions."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from difflib import SequenceMatcher
from enum import StrEnum


class HoursCategory(StrEnum):
    DIRECT_CONTACT = "direct_contact"
    INDIVIDUAL_SUPERVISION = "individual_supervision"
    GROUP_SUPERVISION = "group_supervision"


HOURS_LABELS = {
    HoursCategory.DIRECT_CONTACT: "Direct client contact",
    HoursCategory.INDIVIDUAL_SUPERVISION: "Individual supervision",
    HoursCategory.GROUP_SUPERVISION: "Group supervision",
}


def supervision_category(participants: int) -> HoursCategory:
    return HoursCategory.INDIVIDUAL_SUPERVISION if participants == 1 else HoursCategory.GROUP_SUPERVISION


def hours(seconds: float) -> float:
    return round(max(seconds, 0.0) / 3600.0, 4)


@dataclass(frozen=True)
class Progress:
    category: HoursCategory
    label: str
    done: float
    target: float

    @property
    def percent(self) -> int:
        return 100 if self.target <= 0 else min(100, int(100 * self.done / self.target))


def progress(done: Mapping[str, float], targets: Mapping[str, float]) -> list[Progress]:
    return [Progress(c, HOURS_LABELS[c], round(done.get(c, 0.0), 4), float(targets.get(c, 0.0)))
            for c in HoursCategory]


_TOKEN = re.compile(r"\s+|[^\s]+")


def word_diff(before: str, after: str) -> list[tuple[str, str]]:
    """(op, text) runs with op in equal/delete/insert, over words and the spaces between."""
    a, b = _TOKEN.findall(before), _TOKEN.findall(after)
    runs: list[tuple[str, str]] = []
    for op, i1, i2, j1, j2 in SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if op == "equal":
            runs.append(("equal", "".join(a[i1:i2])))
        else:
            if i2 > i1:
                runs.append(("delete", "".join(a[i1:i2])))
            if j2 > j1:
                runs.append(("insert", "".join(b[j1:j2])))
    return runs


def edit_distance(before: str, after: str) -> int:
    """Characters deleted plus characters inserted to turn the AI text into the signed text."""
    distance = 0
    for op, i1, i2, j1, j2 in SequenceMatcher(None, before, after, autojunk=False).get_opcodes():
        if op != "equal":
            distance += (i2 - i1) + (j2 - j1)
    return distance


def share_kept(before: str, after: str) -> float:
    """Share of the AI draft's characters that survive into the signed text."""
    if not before:
        return 0.0
    kept = sum(b.size for b in SequenceMatcher(None, before, after, autojunk=False).get_matching_blocks())
    return round(kept / len(before), 3)


@dataclass(frozen=True)
class NoteQuality:
    ai_kept: float
    edit_distance: int
    zero_edit: bool
    flags_confirmed: int


@dataclass(frozen=True)
class QualitySummary:
    notes: int
    mean_ai_kept: float
    mean_edit_distance: float
    zero_edit_notes: int
    flags_confirmed: int


def summarise(rows: Iterable[NoteQuality]) -> QualitySummary:
    rows = list(rows)
    if not rows:
        return QualitySummary(0, 0.0, 0.0, 0, 0)
    return QualitySummary(
        notes=len(rows),
        mean_ai_kept=round(sum(r.ai_kept for r in rows) / len(rows), 3),
        mean_edit_distance=round(sum(r.edit_distance for r in rows) / len(rows), 1),
        zero_edit_notes=sum(1 for r in rows if r.zero_edit),
        flags_confirmed=sum(r.flags_confirmed for r in rows),
    )
