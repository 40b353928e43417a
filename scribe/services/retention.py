"""Apply policies/retention.yaml: purge audio, transcripts and drafts whose time is up
(never a client's on legal hold, never signed notes or audit rows), with receipts."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlmodel import Session, col, func, select

from scribe.db.tables import (
    Client,
    DeletionReceipt,
    Draft,
    Encounter,
    Note,
    NoteVersion,
    Pseudonymization,
    Recording,
    Transcript,
    User,
)
from scribe.domain.errors import NotFound, PermissionDenied
from scribe.domain.notes import Role, content_sha256
from scribe.domain.retention import Candidate, select_due
from scribe.policies import Policies
from scribe.services import audit
from scribe.services.purge import purge_artefact

log = logging.getLogger("scribe.retention")


def candidates(s: Session) -> list[Candidate]:
    """Every purgeable artefact still held, with when its note became a record."""
    first_signed = dict(s.exec(select(Note.encounter_id, func.min(NoteVersion.signed_at))
                               .join(NoteVersion, col(NoteVersion.note_id) == Note.id)
                               .where(col(NoteVersion.requires_cosign).is_(False))
                               .group_by(Note.encounter_id)).all())
    held = {c.id: c.legal_hold for c in s.exec(select(Client))}
    out: list[Candidate] = []
    has = {
        "audio": {r.encounter_id for r in s.exec(select(Recording).where(col(Recording.purged_at).is_(None)))},
        "transcript": {t.encounter_id for t in s.exec(select(Transcript))}
        | {p.encounter_id for p in s.exec(select(Pseudonymization))},
        "draft": {d.encounter_id for d in s.exec(select(Draft))},
    }
    for e in s.exec(select(Encounter).where(col(Encounter.client_id).is_not(None))):
        for artefact, ids in has.items():
            if e.id in ids:
                out.append(Candidate(e.id or 0, e.client_id or 0, artefact, first_signed.get(e.id),
                                     held.get(e.client_id, False)))
    return out


def run(s: Session, key: bytes, policies: Policies, *, now: datetime, dry_run: bool = False) -> dict[str, object]:
    rules = policies.retention.after_signing
    days = {"audio": rules.audio_days, "transcript": rules.transcript_days, "draft": rules.draft_days}
    due = select_due(candidates(s), days, now)
    receipts: list[int] = []
    if not dry_run:
        by_client: dict[int, list[Candidate]] = {}
        for c in due:
            by_client.setdefault(c.client_id, []).append(c)
        for client_id, items in sorted(by_client.items()):
            removed: list[dict[str, object]] = []
            for c in items:
                removed += purge_artefact(s, c.encounter_id, c.artefact, now)
            rule = "retention: " + ", ".join(sorted({f"{c.artefact} after {days[c.artefact]} days" for c in items}))
            receipt = DeletionReceipt(client_id=client_id, rule=rule, at=now, by=None, items=removed,
                                      receipt_sha256=content_sha256({"client_id": client_id, "rule": rule,
                                                                     "at": now.isoformat(), "items": removed}))
            s.add(receipt)
            s.flush()
            receipts.append(receipt.id or 0)
            audit.record(s, key, now=now, actor_id=None, action="retention.purge", object_type="client",
                         object_id=client_id, reason=rule, content_sha256=receipt.receipt_sha256)
    summary = {"due": len(due), "receipts": receipts, "dry_run": dry_run,
               "by_artefact": {a: sum(1 for c in due if c.artefact == a) for a in days}}
    log.info("retention due=%d receipts=%d dry_run=%s", len(due), len(receipts), dry_run)
    return summary


def set_legal_hold(s: Session, key: bytes, *, actor: User, client_id: int, hold: bool, reason: str,
                   now: datetime) -> Client:
    """An admin places or lifts a legal hold on a client: while it holds, nothing is purged."""
    if actor.role != Role.ADMIN:
        raise PermissionDenied("only an administrator places a legal hold")
    client = s.get(Client, client_id)
    if client is None or client.clinic_id != actor.clinic_id:
        raise NotFound("no such client")
    client.legal_hold, client.legal_hold_reason = hold, reason.strip()[:200] if hold else ""
    s.add(client)
    audit.record(s, key, now=now, actor_id=actor.id, action="legal_hold.place" if hold else "legal_hold.lift",
                 object_type="client", object_id=client.id)
    return client
