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


@dataclass(frozen=True)
class Part2Terms:
    """What a 42 CFR 2.31 consent to disclose must say, besides the patient's name and the
    program (the practice) making the disclosure."""

    recipient: str  # the name of the recipient (a person, an organisation, or an egress destination)
    purpose: str
    information: str  # how much and what kind of information may be disclosed
    expiry: str  # the date, event or condition on which the consent expires
    signed_by: str  # the client, or the guardian who signs for them
    signed_on: str  # YYYY-MM-DD
    revocation_explained: bool  # the right to revoke was explained and is on the form

    def problems(self) -> list[str]:
        missing = [name.replace("_", " ") for name in ("recipient", "purpose", "information", "expiry", "signed_by",
                                                       "signed_on") if not str(getattr(self, name)).strip()]
        if not self.revocation_explained:
            missing.append("that the client was told they may revoke it")
        return missing

    def to_json(self) -> dict[str, object]:
        return {"recipient": self.recipient.strip(), "purpose": self.purpose.strip(),
                "information": self.information.strip(), "expiry": self.expiry.strip(),
                "signed_by": self.signed_by.strip(), "signed_on": self.signed_on.strip(),
                "revocation_explained": self.revocation_explained}


def names_recipient(terms: dict[str, object] | None, recipient: str) -> bool:
    """Does a Part 2 consent's recipient name this destination (case and spacing aside)?"""
    if not terms:
        return False
    named = " ".join(str(terms.get("recipient", "")).lower().split())
    return bool(named) and named == " ".join(recipient.lower().split())


def part2_summary(terms: dict[str, object], *, with_signer: bool) -> str:
    """A copy of the consent's terms to travel with a Part 2 disclosure (2.31, 2.32). Without
    the signer's name where it goes to a destination that receives no identifiers."""
    signed = f"signed by {terms.get('signed_by')} on {terms.get('signed_on')}" if with_signer else \
        f"signed on {terms.get('signed_on')}"
    return (f"Patient consent on file (42 CFR 2.31): recipient {terms.get('recipient')}; purpose "
            f"{terms.get('purpose')}; information {terms.get('information')}; expires {terms.get('expiry')}; "
            f"revocable at any time except where already acted on; {signed}.")
