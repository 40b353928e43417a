"""What retention may purge, as a pure function: an artefact is due only when its session's
note has been a record for longer than the policy's days, and never while its client is on
legal hold. Signed notes and audit rows are never selected: they are kept at least as long
as the minimums, and scribe never deletes them itself."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

PURGEABLE = ("audio", "transcript", "draft")


@dataclass(frozen=True)
class Candidate:
    encounter_id: int
    client_id: int
    artefact: str  # audio | transcript | draft | signed_note | audit
    record_since: datetime | None  # when the note became a record; None: not a record yet
    legal_hold: bool


def due(candidate: Candidate, days: dict[str, int], now: datetime) -> bool:
    if candidate.artefact not in PURGEABLE or candidate.legal_hold or candidate.record_since is None:
        return False
    return now - candidate.record_since >= timedelta(days=days[candidate.artefact])


def select_due(candidates: list[Candidate], days: dict[str, int], now: datetime) -> list[Candidate]:
    return [c for c in candidates if due(c, days, now)]
