"""Consent checks at the moment a step runs (a later issue adds the full ledger UI)."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, select

from scribe.db.tables import Consent, Encounter, EncounterParticipant
from scribe.domain.notes import EncounterKind
from scribe.domain.decision import Decision
from scribe.domain.errors import ConsentMissing
from scribe.policies import Policies


def consents_in_force(session: Session, client_id: int, *, now: datetime) -> set[str]:
    rows = session.exec(select(Consent).where(Consent.client_id == client_id)).all()
    return {
        c.function for c in rows
        if c.granted and c.withdrawn_at is None and c.effective_from <= now and (c.expires_at is None or c.expires_at > now)
    }


def check_step(session: Session, policies: Policies, *, client_id: int, step: str, now: datetime) -> Decision:
    needed = policies.consent.steps.get(step, [])  # type: ignore[call-overload]
    missing = [f for f in needed if f not in consents_in_force(session, client_id, now=now)]
    if missing:
        return Decision.deny(f"consent not in force for: {', '.join(missing)}")
    return Decision.allow(f"consents in force: {', '.join(needed) or 'none needed'}")


def require_step(session: Session, policies: Policies, *, client_id: int, step: str, now: datetime) -> Decision:
    decision = check_step(session, policies, client_id=client_id, step=step, now=now)
    if not decision:
        raise ConsentMissing(f"step '{step}' stopped: {decision.reason}")
    return decision


def require_step_for(session: Session, policies: Policies, encounter: Encounter, *, step: str,
                     now: datetime) -> Decision:
    """A therapy session needs its client's consents for the step; a supervision meeting has
    no client, and needs each participant's agreement to recording, taken at upload."""
    if encounter.kind == EncounterKind.SUPERVISION:
        agreed = session.exec(select(EncounterParticipant).where(
            EncounterParticipant.encounter_id == encounter.id)).all()
        if not agreed:
            raise ConsentMissing(f"step '{step}' stopped: no participant's agreement to recording is on file")
        return Decision.allow(f"{len(agreed)} participant(s) agreed to recording")
    return require_step(session, policies, client_id=encounter.client_id or 0, step=step, now=now)
