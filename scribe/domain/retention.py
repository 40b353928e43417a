"""What retention may purge, as a pure function. Each kind of record has its own rule and
its own clock: a therapy session's audio, transcript and draft from when its note became a
record (a supervisee's when it was co-signed); a supervision meeting's from when its note was
signed; a session never signed, from its last change; a recording left open, from its last
piece. Nothing is ever selected while it is under a legal hold, and signed notes and audit
rows are never selected at all: they are kept at least as long as the minimums, and scribe
never deletes them itself."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

PURGEABLE = ("audio", "transcript", "draft")


class Rule(StrEnum):
    AFTER_SIGNING = "after signing"  # a therapy session whose note is a record
    SUPERVISION = "supervision meeting"  # a supervision meeting whose note is signed
    UNSIGNED = "never signed"  # a session whose note was never signed (a voided one too)
    ABANDONED = "abandoned recording"  # a browser recording never finished


@dataclass(frozen=True)
class Candidate:
    encounter_id: int
    client_id: int | None  # None: a supervision meeting
    artefact: str  # audio | transcript | draft (signed_note, audit: never purgeable)
    record_since: datetime | None  # when the rule's clock started; None: not started (never due)
    legal_hold: bool
    rule: Rule = Rule.AFTER_SIGNING


Periods = Mapping[tuple[Rule, str], timedelta]


def due(candidate: Candidate, periods: Periods, now: datetime) -> bool:
    if candidate.artefact not in PURGEABLE or candidate.legal_hold or candidate.record_since is None:
        return False
    period = periods.get((candidate.rule, candidate.artefact))
    return period is not None and now - candidate.record_since >= period


def select_due(candidates: list[Candidate], periods: Periods, now: datetime) -> list[Candidate]:
    return [c for c in candidates if due(c, periods, now)]


def held_but_due(candidates: list[Candidate], periods: Periods, now: datetime) -> list[Candidate]:
    """What would be due but for a legal hold (the retention report shows these)."""
    from dataclasses import replace

    return [c for c in candidates if c.legal_hold and due(replace(c, legal_hold=False), periods, now)]
