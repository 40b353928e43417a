"""Consent checks at the moment a step runs (a later issue adds the full ledger UI)."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, select

from scribe.db.tables import Consent
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
