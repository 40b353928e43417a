"""Apply policies/retention.yaml: every kind of record by its own rule (therapy sessions once
their note is a record, a supervisee's once co-signed; supervision meetings once signed;
sessions never signed; recordings left open), never anything under a legal hold, never a
signed note or an audit row. Each purge goes through the one purge primitive and leaves a
receipt; where a whole scope goes (every session of one kind of a client, or of a
supervisor's meetings) its data key is destroyed too. The report says, per rule, what is due,
what a hold keeps, and what was disposed, with the receipts."""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypedDict

from sqlmodel import Session, col, func, select

from scribe.db.queries import get_client_in_clinic
from scribe.db.sealing.columns import vault_for
from scribe.db.sealing.envelope import Scope
from scribe.db.tables import (
    Client,
    Cosignature,
    DeletionReceipt,
    Draft,
    Encounter,
    Note,
    NoteVersion,
    Pseudonymization,
    Recording,
    RecordingChunk,
    Transcript,
    User,
    owner_of,
)
from scribe.domain.errors import PermissionDenied
from scribe.domain.notes import CosignOutcome, EncounterKind, EncounterStatus, Role, content_sha256
from scribe.domain.retention import PURGEABLE, Candidate, Periods, Rule, held_but_due, select_due
from scribe.policies import Policies
from scribe.services import audit
from scribe.services.purge import purge_artefact, under_legal_hold

log = logging.getLogger("scribe.retention")


def periods(policies: Policies) -> Periods:
    r = policies.retention
    out: dict[tuple[Rule, str], timedelta] = {}
    for rule, days in ((Rule.AFTER_SIGNING, r.after_signing), (Rule.SUPERVISION, r.supervision_meetings)):
        out[(rule, "audio")] = timedelta(days=days.audio_days)
        out[(rule, "transcript")] = timedelta(days=days.transcript_days)
        out[(rule, "draft")] = timedelta(days=days.draft_days)
    for artefact in PURGEABLE:
        out[(Rule.UNSIGNED, artefact)] = timedelta(days=r.unsigned.days)
    out[(Rule.ABANDONED, "audio")] = timedelta(hours=r.abandoned_recording_hours)
    return out


def _became_record(s: Session) -> dict[int, datetime]:
    """When each session's note first became a record: a licensed signature at once, a
    supervisee's at its co-signature."""
    out: dict[int, datetime] = {}
    rows = s.exec(select(Note.encounter_id, NoteVersion, Cosignature)
                  .join(NoteVersion, col(NoteVersion.note_id) == Note.id)
                  .join(Cosignature, col(Cosignature.note_version_id) == NoteVersion.id, isouter=True)).all()
    for encounter_id, version, cosign in rows:
        if not version.requires_cosign:
            at = version.signed_at
        elif cosign is not None and cosign.outcome == CosignOutcome.COSIGNED:
            at = cosign.at
        else:
            continue
        out[encounter_id] = min(at, out.get(encounter_id, at))
    return out


def candidates(s: Session) -> list[Candidate]:
    """Every purgeable artefact still held, under the rule its session falls under now."""
    record = _became_record(s)
    noted = set(s.exec(select(Note.encounter_id)).all())
    has = {
        "audio": {r.encounter_id for r in s.exec(select(Recording).where(col(Recording.purged_at).is_(None)))}
        | set(s.exec(select(RecordingChunk.encounter_id)).all()),
        "transcript": {t.encounter_id for t in s.exec(select(Transcript))}
        | {p.encounter_id for p in s.exec(select(Pseudonymization))},
        "draft": {d.encounter_id for d in s.exec(select(Draft))},
    }
    last_piece = dict(s.exec(select(RecordingChunk.encounter_id, func.max(RecordingChunk.received_at))
                             .group_by(col(RecordingChunk.encounter_id))).all())
    out: list[Candidate] = []
    for e in s.exec(select(Encounter)):
        eid = e.id or 0
        held = under_legal_hold(s, eid)
        if e.status == EncounterStatus.RECORDING:
            rule, since = Rule.ABANDONED, last_piece.get(eid, e.updated_at)
        elif eid in record:
            rule, since = (Rule.SUPERVISION if e.kind == EncounterKind.SUPERVISION else Rule.AFTER_SIGNING), record[eid]
        elif eid in noted or e.status == EncounterStatus.PENDING_COSIGN:
            continue  # signed, awaiting the supervisor: not the author's to lose
        else:
            rule, since = Rule.UNSIGNED, e.updated_at
        for artefact, ids in has.items():
            if eid in ids:
                out.append(Candidate(eid, e.client_id, artefact, since, held, rule))
    return out


def _owner(s: Session, encounter_id: int) -> tuple[int | None, str]:
    e = s.get(Encounter, encounter_id)
    assert e is not None  # noqa: S101 - narrows the type; never a guard
    return e.client_id, owner_of(e)


class RetentionSummary(TypedDict):
    """What a retention run did (printed as JSON by ``scribe retention``)."""

    due: int  # artefacts past their period
    receipts: list[int]  # the deletion receipts written, one per client (or owner)
    dry_run: bool
    by_rule: dict[str, int]  # "<rule>: <artefact>" -> how many were due


def run(s: Session, key: bytes, policies: Policies, *, now: datetime, dry_run: bool = False) -> RetentionSummary:
    table = periods(policies)
    due = select_due(candidates(s), table, now)
    receipts: list[int] = []
    if not dry_run:
        by_owner: dict[tuple[int | None, str], list[Candidate]] = defaultdict(list)
        for c in due:
            by_owner[_owner(s, c.encounter_id)].append(c)
        for (client_id, owner), items in sorted(by_owner.items(), key=lambda kv: kv[0][1]):
            removed: list[dict[str, object]] = []
            for c in items:
                removed += [{**item, "rule": c.rule.value} for item in purge_artefact(s, c.encounter_id, c.artefact, now)]
                if c.rule == Rule.ABANDONED:
                    _stop_abandoned(s, c.encounter_id, now)
            removed += _shred_what_is_gone(s, client_id, owner, {c.artefact for c in items}, now)
            rule = "retention: " + ", ".join(sorted({f"{c.artefact} {c.rule.value} "
                                                     f"({_period_text(table[(c.rule, c.artefact)])})" for c in items}))
            receipt = DeletionReceipt(client_id=client_id, owner="" if client_id else owner, rule=rule, at=now, by=None,
                                      items=removed, receipt_sha256=content_sha256(
                                          {"client_id": client_id, "owner": owner, "rule": rule,
                                           "at": now.isoformat(), "items": removed}))
            s.add(receipt)
            s.flush()
            receipts.append(receipt.id or 0)
            audit.record(s, key, now=now, actor_id=None, action="retention.purge",
                         object_type="client" if client_id else "deletion_receipt",
                         object_id=client_id or receipt.id, reason=rule, content_sha256=receipt.receipt_sha256)
    summary = RetentionSummary(due=len(due), receipts=receipts, dry_run=dry_run,
                               by_rule={f"{r.value}: {a}": sum(1 for c in due if c.rule == r and c.artefact == a)
                                        for r, a in table})
    log.info("retention due=%d receipts=%d dry_run=%s", len(due), len(receipts), dry_run)
    return summary


def _period_text(period: timedelta) -> str:
    return f"{period.days} days" if period.days else f"{int(period.total_seconds() // 3600)} hours"


def _stop_abandoned(s: Session, encounter_id: int, now: datetime) -> None:
    e = s.get(Encounter, encounter_id)
    if e is not None and e.status == EncounterStatus.RECORDING:
        e.status, e.status_reason, e.updated_at = EncounterStatus.STOPPED, "recording abandoned: its pieces were " \
            "purged by the retention policy", now
        s.add(e)


def _live(s: Session, owner: str, artefact: str) -> bool:
    """Does anything of this kind remain for this owner (a client, or a supervisor's meetings)?"""
    encounters = [e.id for e in s.exec(select(Encounter)) if owner_of(e) == owner]
    if not encounters:
        return False
    if artefact == "audio":
        return (s.exec(select(Recording.id).where(col(Recording.encounter_id).in_(encounters),
                                                  col(Recording.purged_at).is_(None))).first() is not None
                or s.exec(select(RecordingChunk.id).where(col(RecordingChunk.encounter_id).in_(encounters))).first()
                is not None)
    if artefact == "transcript":
        return (s.exec(select(Transcript.id).where(col(Transcript.encounter_id).in_(encounters))).first() is not None
                or s.exec(select(Pseudonymization.id).where(col(Pseudonymization.encounter_id).in_(encounters)))
                .first() is not None)
    return s.exec(select(Draft.id).where(col(Draft.encounter_id).in_(encounters))).first() is not None


def _shred_what_is_gone(s: Session, client_id: int | None, owner: str, kinds: set[str],
                        now: datetime) -> list[dict[str, object]]:
    """Where every session's copy of a kind is gone, its data key goes too (crypto-shredding:
    the copies in old backups stop opening). A legal hold keeps the key."""
    if client_id is not None:
        client = s.get(Client, client_id)
        if client is not None and client.legal_hold:
            return []
    s.flush()
    vault = vault_for(s.get_bind())
    out: list[dict[str, object]] = []
    for kind in sorted(kinds):
        if not _live(s, owner, kind) and vault.shred(s, Scope(owner, kind), now):
            out.append({"artefact": f"{kind} encryption key", "session_id": None, "destroyed": True})
    return out


@dataclass(frozen=True)
class ReportRow:
    rule: str
    artefact: str
    period: str
    due: int  # would go at the next run
    held: int  # would be due, kept by a legal hold
    disposed: int  # sessions this rule has removed this kind of artefact from, so far


def report(s: Session, key: bytes, policies: Policies, *, actor: User, now: datetime
           ) -> tuple[list[ReportRow], list[DeletionReceipt]]:
    """Per rule and kind of artefact: due now, held, disposed so far; and the latest receipts.
    Counts and ids only."""
    if actor.role != Role.ADMIN:
        raise PermissionDenied("the retention report is for admins")
    table = periods(policies)
    cands = [c for c in candidates(s) if _in_clinic(s, c.encounter_id, actor.clinic_id)]
    due, held = select_due(cands, table, now), held_but_due(cands, table, now)
    receipts = [r for r in s.exec(select(DeletionReceipt).where(col(DeletionReceipt.rule).startswith("retention:"))
                                  .order_by(col(DeletionReceipt.id).desc()))
                if _receipt_in_clinic(s, r, actor.clinic_id)]
    disposed: dict[tuple[str, str], set[object]] = defaultdict(set)  # the sessions each rule disposed of
    names = {"audio": "audio", "audio chunk": "audio", "transcript": "transcript", "AI draft": "draft",
             "pseudonymized transcript and re-identification map": "transcript"}
    for r in receipts:
        for item in r.items:
            kind = names.get(str(item.get("artefact", "")))
            if kind and "rule" in item and "kept" not in item:
                disposed[(str(item["rule"]), kind)].add(item.get("session_id"))
    rows = [ReportRow(rule.value, artefact, _period_text(period),
                      sum(1 for c in due if c.rule == rule and c.artefact == artefact),
                      sum(1 for c in held if c.rule == rule and c.artefact == artefact),
                      len(disposed.get((rule.value, artefact), ()))) for (rule, artefact), period in table.items()]
    audit.record(s, key, now=now, actor_id=actor.id, action="compliance.read", object_type="clinic",
                 object_id=actor.clinic_id, reason="retention report")
    return rows, receipts[:200]


def _in_clinic(s: Session, encounter_id: int, clinic_id: int) -> bool:
    e = s.get(Encounter, encounter_id)
    return e is not None and e.clinic_id == clinic_id


def _receipt_in_clinic(s: Session, r: DeletionReceipt, clinic_id: int) -> bool:
    if r.client_id is not None:
        client = s.get(Client, r.client_id)
        return client is not None and client.clinic_id == clinic_id
    supervisor = s.get(User, int(r.owner.split(":", 1)[1])) if r.owner.startswith("meetings:") else None
    return supervisor is not None and supervisor.clinic_id == clinic_id


def set_legal_hold(s: Session, key: bytes, *, actor: User, client_id: int, hold: bool, reason: str,
                   now: datetime) -> Client:
    """An admin places or lifts a legal hold on a client: while it holds, nothing is purged."""
    if actor.role != Role.ADMIN:
        raise PermissionDenied("only an administrator places a legal hold")
    client = get_client_in_clinic(s, actor, client_id)
    client.legal_hold, client.legal_hold_reason = hold, reason.strip()[:200] if hold else ""
    s.add(client)
    audit.record(s, key, now=now, actor_id=actor.id, action="legal_hold.place" if hold else "legal_hold.lift",
                 object_type="client", object_id=client.id)
    return client
