"""The admin's audit report: who touched which client's records, when and why (the
permission decision's reason), from the audit chain. Ids, names and actions, never
clinical text; exportable as CSV."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from scribe.db.tables import AuditEvent, Client, Encounter, NoteVersion, Note, User
from scribe.domain.errors import PermissionDenied
from scribe.domain.notes import Role
from scribe.services import audit


@dataclass(frozen=True)
class AccessRow:
    at: datetime
    user: str
    action: str
    client: str
    object: str
    reason: str


def access_report(s: Session, key: bytes, *, actor: User, now: datetime, mrn: str = "",
                  limit: int = 500) -> list[AccessRow]:
    if actor.role != Role.ADMIN:
        raise PermissionDenied("only an administrator reads the audit report")
    users = {u.id: u for u in s.exec(select(User).where(User.clinic_id == actor.clinic_id))}
    clients = {c.id: c for c in s.exec(select(Client).where(Client.clinic_id == actor.clinic_id))}
    enc_client = {e.id: e.client_id for e in s.exec(select(Encounter).where(Encounter.clinic_id == actor.clinic_id))}
    version_enc = dict(s.exec(select(NoteVersion.id, Note.encounter_id).join(Note, col(Note.id) == NoteVersion.note_id)).all())
    rows: list[AccessRow] = []
    events = s.exec(select(AuditEvent).where(col(AuditEvent.object_type).in_(("client", "encounter", "note_version")))
                    .order_by(col(AuditEvent.id).desc()))
    for e in events:
        client_id = {"client": e.object_id, "encounter": enc_client.get(e.object_id),
                     "note_version": enc_client.get(version_enc.get(e.object_id))}.get(e.object_type)
        if client_id not in clients:
            continue  # not a client's record, or another practice's
        client = clients[client_id]
        if mrn and client.mrn != mrn.strip():
            continue
        who = users.get(e.actor_id)
        rows.append(AccessRow(e.at, who.full_name if who else "system", e.action,
                              f"{client.display_name} ({client.mrn})", f"{e.object_type} #{e.object_id}", e.reason))
        if len(rows) >= limit:
            break
    audit.record(s, key, now=now, actor_id=actor.id, action="audit.report.read", object_type="clinic",
                 object_id=actor.clinic_id, reason=f"filter mrn={'yes' if mrn else 'no'}")
    return rows


def report_csv(rows: list[AccessRow]) -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["at_utc", "user", "action", "client", "object", "reason"])
    for r in rows:
        w.writerow([r.at.strftime("%Y-%m-%dT%H:%M:%SZ")] + [_cell(x) for x in (r.user, r.action, r.client, r.object, r.reason)])
    return out.getvalue()


def _cell(value: str) -> str:
    return "'" + value if value[:1] in ("=", "+", "-", "@") else value
