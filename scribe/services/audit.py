"""Append to and verify the audit chain. Called inside the action's own transaction."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, col, select

from scribe.db.tables import AuditEvent
from scribe.domain.audit import GENESIS, AuditFields, chain_hash, verify_chain


def record(
    session: Session,
    key: bytes,
    *,
    now: datetime,
    actor_id: int | None,
    action: str,
    object_type: str,
    object_id: int | None = None,
    reason: str = "",
    content_sha256: str = "",
) -> AuditEvent:
    last = session.exec(select(AuditEvent).order_by(col(AuditEvent.id).desc()).limit(1)).first()
    prev = last.hash if last else GENESIS
    fields = AuditFields(now, actor_id, action, object_type, object_id, reason, content_sha256)
    event = AuditEvent(at=now, actor_id=actor_id, action=action, object_type=object_type, object_id=object_id,
                       reason=reason, content_sha256=content_sha256, prev_hash=prev, hash=chain_hash(key, fields, prev))
    session.add(event)
    session.flush()
    return event


def record_refusal(session: Session, key: bytes, **fields: object) -> None:
    """Audit a refused action in its own transaction, so that rolling back the refused
    work does not roll back the record of the refusal."""
    with Session(session.get_bind()) as own:
        record(own, key, **fields)  # type: ignore[arg-type]
        own.commit()


def verify(session: Session, key: bytes) -> list[str]:
    rows = session.exec(select(AuditEvent).order_by(col(AuditEvent.id))).all()
    return verify_chain(key, [
        (e.id or 0, AuditFields(e.at, e.actor_id, e.action, e.object_type, e.object_id, e.reason, e.content_sha256),
         e.prev_hash, e.hash)
        for e in rows
    ])
