"""Append to and verify the audit chain. Called inside the action's own transaction.

Appends are serialised: each first updates the single ``audit_head`` row, which takes a
row lock on PostgreSQL and the database write lock on SQLite, held until the action
commits, so no two appends can read the same last event. ``prev_hash`` is unique
besides (migration 0006), so a fork cannot be stored by any path."""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path

from sqlalchemy import update
from sqlmodel import Session, col, select

from scribe.db.engine import changed_rows
from scribe.db.tables import AuditEvent, AuditHead
from scribe.domain.audit import GENESIS, Anchor, AuditFields, chain_hash, verify_anchors, verify_chain
from scribe.domain.audit_actions import known


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
    if not known(action):
        raise ValueError(f"audit action {action!r} is not in the catalogue (scribe/domain/audit_actions.py)")
    locked = changed_rows(session, update(AuditHead).where(col(AuditHead.id) == 1)
                                   .values(appends=AuditHead.appends + 1))
    if locked != 1:
        raise RuntimeError("the audit_head row is missing: the database was not migrated")
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


def verify(session: Session, key: bytes, anchors_dir: Path | None = None) -> list[str]:
    """Problems with the chain (keyed hashes, links) and with the anchors written outside
    the database (a deleted, truncated or rewritten tail)."""
    rows = session.exec(select(AuditEvent).order_by(col(AuditEvent.id))).all()
    problems = verify_chain(key, [
        (e.id or 0, AuditFields(e.at, e.actor_id, e.action, e.object_type, e.object_id, e.reason, e.content_sha256),
         e.prev_hash, e.hash)
        for e in rows
    ])
    if anchors_dir is not None:
        problems += verify_anchors(key, {e.id or 0: e.hash for e in rows}, read_anchors(anchors_dir))
    return problems


ANCHOR_FILE = "audit-anchors.jsonl"


def anchor(session: Session, key: bytes, anchors_dir: Path, now: datetime) -> Anchor | None:
    """Append the chain's head to the anchor file (fsync'ed) if it moved since the last."""
    head = session.exec(select(AuditEvent).order_by(col(AuditEvent.id).desc()).limit(1)).first()
    if head is None:
        return None
    known = read_anchors(anchors_dir)
    if known and known[-1][0].event_id == head.id:
        return None
    mark = Anchor(head.id or 0, head.hash, now.strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
    anchors_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    line = json.dumps({"id": mark.event_id, "hash": mark.event_hash, "at": mark.at, "mac": mark.mac(key)})
    with (anchors_dir / ANCHOR_FILE).open("a", encoding="utf-8") as f:
        f.write(line + "\n")
        f.flush()
        os.fsync(f.fileno())
    return mark


def read_anchors(anchors_dir: Path) -> list[tuple[Anchor, str]]:
    path = anchors_dir / ANCHOR_FILE
    if not path.exists():
        return []
    out = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        if raw.strip():
            d = json.loads(raw)
            out.append((Anchor(int(d["id"]), str(d["hash"]), str(d["at"])), str(d["mac"])))
    return out
