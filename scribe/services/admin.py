"""The admin's screens: accounts and supervisor links, the transcription switches, consent
status reports, deletion receipts and usage counts. Nothing here reads clinical content:
no transcript, draft or note is loaded (a test checks the pages)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, col, func, select

from scribe.db.queries import get_clinician_in_clinic, get_receipt_for_actor
from scribe.db.tables import (
    Client,
    Clinic,
    Consent,
    DeletionReceipt,
    Encounter,
    Recording,
    TranscriptionSwitch,
    User,
)
from scribe.domain.consent import ConsentEntry, ConsentState, SwitchScope, state_of
from scribe.domain.errors import InvalidInput, NotFound, PermissionDenied
from scribe.domain.notes import CLINICAL_ROLES, Role
from scribe.policies import Policies
from scribe.services import audit
from scribe.services.consent import current_switch


def _admin(actor: User) -> None:
    if actor.role != Role.ADMIN or not actor.active:
        raise PermissionDenied("administration is for admins")


@dataclass
class SwitchRow:
    scope: SwitchScope
    label: str
    clinic_id: int | None
    user_id: int | None
    current: TranscriptionSwitch | None


@dataclass
class ConsentRow:
    client: Client
    clinician: str
    states: dict[str, ConsentState]


@dataclass
class Usage:
    user: User
    sessions: int
    audio_hours: float


@dataclass
class AdminView:
    users: list[User]
    supervisors: dict[int, str]
    switches: list[SwitchRow]
    consents: list[ConsentRow]
    receipts: list[DeletionReceipt]
    usage: list[Usage]
    month: str


def admin_view(s: Session, key: bytes, policies: Policies, *, actor: User, now: datetime) -> AdminView:
    _admin(actor)
    users = list(s.exec(select(User).where(User.clinic_id == actor.clinic_id).order_by(col(User.full_name))))
    names = {u.id: u.full_name for u in users}
    clinic = s.get(Clinic, actor.clinic_id)
    switches = [SwitchRow(SwitchScope.PRACTICE, "Whole practice", None, None, current_switch(s, SwitchScope.PRACTICE)),
                SwitchRow(SwitchScope.CLINIC, clinic.name if clinic else "This clinic", actor.clinic_id, None,
                          current_switch(s, SwitchScope.CLINIC, clinic_id=actor.clinic_id))]
    switches += [SwitchRow(SwitchScope.CLINICIAN, u.full_name, None, u.id,
                           current_switch(s, SwitchScope.CLINICIAN, user_id=u.id))
                 for u in users if u.role in CLINICAL_ROLES]
    clients = sorted(s.exec(select(Client).where(Client.clinic_id == actor.clinic_id)),
                     key=lambda c: (c.family_name.casefold(), c.given_name.casefold(), c.id))
    ledger: dict[int, list[ConsentEntry]] = {}
    for c in s.exec(select(Consent).where(col(Consent.client_id).in_([x.id for x in clients]))):
        ledger.setdefault(c.client_id, []).append(
            ConsentEntry(c.id or 0, c.function, c.granted, c.effective_from, c.expires_at, c.withdrawn_at))
    soon = timedelta(days=policies.consent.expiring_soon_days)
    consents = [ConsentRow(c, names.get(c.clinician_id, ""), {f: state_of(ledger.get(c.id or 0, []), f, now, soon=soon)
                                                              for f in policies.consent.functions}) for c in clients]
    receipts = list(s.exec(select(DeletionReceipt).where(col(DeletionReceipt.client_id).in_([x.id for x in clients]))
                           .order_by(col(DeletionReceipt.id).desc()).limit(100)))
    month_start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    counts = {uid: (n, secs or 0.0) for uid, n, secs in s.exec(
        select(Encounter.clinician_id, func.count(col(Encounter.id)), func.sum(Recording.duration_seconds))
        .join(Recording, col(Recording.encounter_id) == Encounter.id)
        .where(Encounter.clinic_id == actor.clinic_id, Encounter.created_at >= month_start)
        .group_by(col(Encounter.clinician_id)))}
    usage = [Usage(u, counts.get(u.id or 0, (0, 0.0))[0], round(counts.get(u.id or 0, (0, 0.0))[1] / 3600, 2))
             for u in users if u.role in CLINICAL_ROLES]
    audit.record(s, key, now=now, actor_id=actor.id, action="admin.read", object_type="clinic",
                 object_id=actor.clinic_id, reason="admin screen (no clinical content)")
    for client in clients:  # a name on the consent report, in that client's access report
        audit.record(s, key, now=now, actor_id=actor.id, action="consent.status.read", object_type="client",
                     object_id=client.id, reason="consent status report")
    return AdminView(users, {u.id or 0: names.get(u.supervisor_id, "") for u in users if u.supervisor_id},
                     switches, consents, receipts, usage, month_start.strftime("%B %Y"))


def set_switch(s: Session, key: bytes, policies: Policies, *, actor: User, scope: str, target_id: int | None,
               enabled: bool, note_types: list[str], now: datetime) -> TranscriptionSwitch:
    _admin(actor)
    try:
        level = SwitchScope(scope)
    except ValueError:
        raise InvalidInput("unknown switch level") from None
    unknown = [t for t in note_types if t not in policies.templates]
    if unknown:
        raise InvalidInput(f"unknown note type(s): {', '.join(unknown)}")
    row = TranscriptionSwitch(scope=level, enabled=enabled, note_types=sorted(set(note_types)), set_by=actor.id or 0,
                              set_at=now)
    if level == SwitchScope.CLINIC:
        if target_id != actor.clinic_id:
            raise NotFound("no such clinic")
        row.clinic_id = target_id
    elif level == SwitchScope.CLINICIAN:
        row.user_id = get_clinician_in_clinic(s, actor, target_id, active=False).id
    s.add(row)
    s.flush()
    audit.record(s, key, now=now, actor_id=actor.id, action="transcription.switch", object_type=level.value,
                 object_id=row.clinic_id or row.user_id, reason=f"{'on' if enabled else 'off'}"
                 f"{' for ' + ','.join(row.note_types) if row.note_types else ''}")
    return row


def receipt_for(s: Session, key: bytes, *, actor: User, receipt_id: int,
                now: datetime) -> tuple[DeletionReceipt, Client | None]:
    """A receipt, for the client's clinician, intake staff or an admin of the clinic (it holds
    no clinical text); a supervision meeting's, for its supervisor or an admin."""
    receipt, client, basis = get_receipt_for_actor(s, actor, receipt_id)
    audit.record(s, key, now=now, actor_id=actor.id, action="receipt.read", object_type="deletion_receipt",
                 object_id=receipt.id, reason=basis)
    return receipt, client
