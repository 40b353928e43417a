"""Consent as a ledger, and where transcription is switched on. Pure functions.

A client's consent for one function is whatever the latest entry in force says: a grant
(with its effective and expiry dates) or a withdrawal. Entries are never edited; a new
entry supersedes. Transcription is on for a session only if it is on at every level that
has a say (the practice, the clinic, the clinician) and the note type is allowed at each."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from scribe.domain.decision import Decision


@dataclass(frozen=True)
class ConsentEntry:
    id: int
    function: str
    granted: bool  # False: a withdrawal
    effective_from: datetime
    expires_at: datetime | None = None
    withdrawn_at: datetime | None = None  # legacy rows: a grant later marked withdrawn


def latest(entries: Iterable[ConsentEntry], function: str, now: datetime) -> ConsentEntry | None:
    mine = [e for e in entries if e.function == function and e.effective_from <= now]
    return max(mine, key=lambda e: (e.effective_from, e.id), default=None)


def in_force(entries: Sequence[ConsentEntry], function: str, now: datetime) -> bool:
    e = latest(entries, function, now)
    return bool(e and e.granted and (e.expires_at is None or e.expires_at > now)
                and (e.withdrawn_at is None or e.withdrawn_at > now))


def functions_in_force(entries: Sequence[ConsentEntry], functions: Iterable[str], now: datetime) -> set[str]:
    return {f for f in functions if in_force(entries, f, now)}


class ConsentState(StrEnum):
    IN_FORCE = "in force"
    EXPIRING = "expiring soon"
    EXPIRED = "expired"
    WITHDRAWN = "withdrawn"
    NONE = "not given"


def state_of(entries: Sequence[ConsentEntry], function: str, now: datetime, *, soon: timedelta) -> ConsentState:
    e = latest(entries, function, now)
    if e is None:
        return ConsentState.NONE
    if not e.granted or (e.withdrawn_at is not None and e.withdrawn_at <= now):
        return ConsentState.WITHDRAWN
    if e.expires_at is not None and e.expires_at <= now:
        return ConsentState.EXPIRED
    if e.expires_at is not None and e.expires_at <= now + soon:
        return ConsentState.EXPIRING
    return ConsentState.IN_FORCE


def step_decision(needed: Sequence[str], in_force_now: set[str], step: str) -> Decision:
    missing = [f for f in needed if f not in in_force_now]
    if missing:
        return Decision.deny(f"step '{step}': consent not in force for {', '.join(missing)}")
    return Decision.allow(f"consents in force: {', '.join(needed) or 'none needed'}")


class SwitchScope(StrEnum):
    PRACTICE = "practice"
    CLINIC = "clinic"
    CLINICIAN = "clinician"


@dataclass(frozen=True)
class Switch:
    scope: SwitchScope
    enabled: bool
    note_types: tuple[str, ...] = ()  # empty: every note type


def transcription_decision(switches: Sequence[Switch | None], note_type: str | None = None) -> Decision:
    """``switches`` holds the current setting at each level (None: never set, which is on).
    With ``note_type`` None the question is whether transcription is on at all."""
    for sw in switches:
        if sw is None:
            continue
        if not sw.enabled:
            return Decision.deny(f"transcription is switched off for this {sw.scope.value}")
        if note_type is not None and sw.note_types and note_type not in sw.note_types:
            return Decision.deny(f"transcription for {note_type.upper()} notes is off for this {sw.scope.value}")
    return Decision.allow("transcription is on")


def allowed_note_types(switches: Sequence[Switch | None], note_types: Sequence[str]) -> list[str]:
    return [t for t in note_types if transcription_decision(switches, t)]
