"""Client charts: created and edited by a clinician (for their caseload) or intake staff,
transferred with an audited reason, discharged and reactivated, found by name or MRN through
the blind index, and shown as one page in date order (consents, sessions, signed notes,
addenda, transfers). Identity fields are sealed at rest; intake staff never see diagnoses
or any clinical text."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlmodel import Session, col, func, select

from scribe.db.clients import add_client, find_by_mrn, matching_ids, reindex
from scribe.db.queries import clients_for_actor, get_client_for_actor, get_clinician_in_clinic
from scribe.db.tables import (
    Client,
    ClientAssignment,
    Consent,
    DeletionReceipt,
    Encounter,
    Note,
    NoteVersion,
    User,
)
from scribe.domain.clients import ChartInput, ClientStatus, TransferReason, check_chart, normal_mrn
from scribe.domain.errors import Conflict, InvalidInput, PermissionDenied
from scribe.domain.notes import CLINICAL_ROLES, Role
from scribe.services import audit

CHART_FIELDS = ("given_name", "family_name", "preferred_name", "date_of_birth", "mrn", "address", "city", "phone",
                "email", "employer", "school", "contacts", "guardians", "part2_program")


def _may_manage(actor: User) -> None:
    if actor.role not in (*CLINICAL_ROLES, Role.INTAKE) or not actor.active:
        raise PermissionDenied("client charts are kept by clinicians and intake staff")


def _clinician(s: Session, actor: User, clinician_id: int | None) -> User:
    """Whom a client is assigned to: a clinician creating a client takes them on; intake
    staff choose an active clinician of the clinic."""
    if actor.role in CLINICAL_ROLES and clinician_id in (None, actor.id):
        return actor
    if actor.role in CLINICAL_ROLES:
        raise PermissionDenied("clinicians add clients to their own caseload; intake staff assign them")
    return get_clinician_in_clinic(s, actor, clinician_id)


def _mrn_free(s: Session, clinic_id: int, mrn: str, client_id: int | None = None) -> None:
    """Checked before anything is written (two clients racing for one MRN still meet the
    database's unique index, and the second gets a 409)."""
    if not mrn:
        return
    with s.no_autoflush:
        taken = find_by_mrn(s, clinic_id, mrn)
    if taken is not None and taken.id != client_id:
        raise Conflict("another client of this practice has that MRN")


def _apply(client: Client, chart: ChartInput, *, diagnoses: bool) -> list[str]:
    """Copy the chart onto the row; the names of the fields that changed (never their values)."""
    changed = []
    values = {
        "given_name": chart.given_name, "family_name": chart.family_name, "preferred_name": chart.preferred_name,
        "date_of_birth": chart.date_of_birth, "mrn": chart.mrn or client.mrn, "address": chart.address,
        "city": chart.city, "phone": chart.phone, "email": chart.email, "employer": chart.employer,
        "school": chart.school, "contacts": [p.to_json() for p in chart.contacts],
        "guardians": [p.to_json() for p in chart.guardians], "part2_program": chart.part2_program,
    }
    if diagnoses:
        values["diagnoses"] = [d.to_json() for d in chart.diagnoses]
    for name, value in values.items():
        if getattr(client, name) != value:
            setattr(client, name, value)
            changed.append(name)
    return changed


def create_client(s: Session, key: bytes, *, actor: User, chart: ChartInput, clinician_id: int | None,
                  now: datetime) -> Client:
    _may_manage(actor)
    chart = check_chart(chart, today=now.date())
    owner = _clinician(s, actor, clinician_id)
    _mrn_free(s, actor.clinic_id, chart.mrn)
    client = Client(clinic_id=actor.clinic_id, clinician_id=owner.id or 0, created_at=now, updated_at=now,
                    given_name="", family_name="")
    _apply(client, chart, diagnoses=actor.role in CLINICAL_ROLES)
    add_client(s, client, by=actor.id)
    audit.record(s, key, now=now, actor_id=actor.id, action="client.create", object_type="client",
                 object_id=client.id, reason=f"assigned to user #{owner.id}")
    return client


def update_client(s: Session, key: bytes, *, actor: User, client_id: int, chart: ChartInput, now: datetime) -> Client:
    """Edit the chart. Intake staff never change (or see) the clinician's diagnoses."""
    _may_manage(actor)
    client = get_client_for_actor(s, actor, client_id)
    chart = check_chart(chart, today=now.date())
    if chart.mrn and normal_mrn(chart.mrn) != normal_mrn(client.mrn):
        _mrn_free(s, client.clinic_id, chart.mrn, client.id)
    changed = _apply(client, chart, diagnoses=actor.role in CLINICAL_ROLES)
    if not changed:
        return client
    if {"given_name", "family_name", "preferred_name", "mrn"} & set(changed):
        reindex(s, client)
    client.updated_at = now
    s.add(client)
    audit.record(s, key, now=now, actor_id=actor.id, action="client.update", object_type="client",
                 object_id=client.id, reason="changed: " + ", ".join(changed))
    return client


def transfer_client(s: Session, key: bytes, *, actor: User, client_id: int, to_clinician_id: int, reason: str,
                    now: datetime) -> Client:
    """Assign the client to another clinician of the clinic. Past sessions stay with the
    clinician who held them; the new clinician takes the chart, consents and new sessions."""
    _may_manage(actor)
    client = get_client_for_actor(s, actor, client_id)
    try:
        why = TransferReason(reason)
    except ValueError:
        raise InvalidInput("choose the reason for the transfer") from None
    target = get_clinician_in_clinic(s, actor, to_clinician_id)
    if target.id == client.clinician_id:
        raise InvalidInput("the client is already assigned to that clinician")
    previous = client.clinician_id
    client.clinician_id, client.updated_at = target.id or 0, now
    s.add(client)
    s.add(ClientAssignment(client_id=client.id or 0, clinician_id=target.id or 0, assigned_at=now,
                           assigned_by=actor.id or 0, reason=why.value))
    audit.record(s, key, now=now, actor_id=actor.id, action="client.transfer", object_type="client",
                 object_id=client.id, reason=f"{why.value}: from user #{previous} to user #{target.id}")
    return client


def set_status(s: Session, key: bytes, *, actor: User, client_id: int, status: str, now: datetime) -> Client:
    """Discharge a client (no new sessions; everything kept) or take them back into care."""
    _may_manage(actor)
    client = get_client_for_actor(s, actor, client_id)
    try:
        wanted = ClientStatus(status)
    except ValueError:
        raise InvalidInput("a client is active or discharged") from None
    if wanted == client.status:
        return client
    client.status = wanted
    client.discharged_at = now if wanted == ClientStatus.DISCHARGED else None
    client.updated_at = now
    s.add(client)
    audit.record(
        s,
        key,
        now=now,
        actor_id=actor.id,
        action=f"client.{'discharge' if wanted == ClientStatus.DISCHARGED else 'reactivate'}",
        object_type="client",
        object_id=client.id,
    )
    return client


@dataclass
class ClientList:
    clients: list[Client]
    total: int
    page: int
    pages: int
    clinicians: dict[int, str]


def list_clients(s: Session, key: bytes, *, actor: User, query: str = "", status: str = "", page: int = 1,
                 per_page: int = 25, now: datetime) -> ClientList:
    """The caseload (a clinician's) or the clinic's clients (intake), searched by name words
    or MRN through the blind index, filtered by status, a page at a time."""
    _may_manage(actor)
    clients = clients_for_actor(s, actor)
    if query.strip():
        wanted = matching_ids(s, actor.clinic_id, query[:100])
        clients = [c for c in clients if c.id in wanted]
    if status:
        clients = [c for c in clients if c.status == status]
    pages = max(1, -(-len(clients) // per_page))
    page = min(max(1, page), pages)
    shown = clients[(page - 1) * per_page: page * per_page]
    names = {u.id or 0: u.full_name for u in s.exec(select(User).where(User.clinic_id == actor.clinic_id))}
    for client in shown:  # each client whose name was shown, in their own access report
        audit.record(s, key, now=now, actor_id=actor.id, action="client.list", object_type="client",
                     object_id=client.id, reason=f"{'search' if query.strip() else 'list'}, page {page}")
    return ClientList(shown, len(clients), page, pages, names)


@dataclass(frozen=True)
class TimelineItem:
    at: datetime
    kind: str  # consent | session | note | transfer | receipt
    text: str  # what happened, no clinical text: "SOAP note signed by ...", "consent given: transcribe"
    link: str = ""


@dataclass
class ClientPage:
    client: Client
    clinician: str
    timeline: list[TimelineItem]
    show_diagnoses: bool
    may_open_sessions: bool
    assignments: list[tuple[ClientAssignment, str]] = field(default_factory=list)

    @property
    def in_care(self) -> bool:
        """Active, not discharged: new sessions may be opened and the chart offers discharge."""
        return self.client.status == ClientStatus.ACTIVE

    @property
    def can_start_session(self) -> bool:
        return self.may_open_sessions and self.in_care


def client_page(s: Session, key: bytes, *, actor: User, client_id: int, now: datetime) -> ClientPage:
    """Everything about a client in date order, newest first: consents, sessions, signed
    versions (original, addenda, amendments), transfers and deletion receipts. Titles and
    dates only, never a transcript, draft or note's text."""
    client = get_client_for_actor(s, actor, client_id)
    names = {u.id or 0: u.full_name for u in s.exec(select(User).where(User.clinic_id == client.clinic_id))}
    items: list[TimelineItem] = []
    for c in s.exec(select(Consent).where(Consent.client_id == client.id)):
        items.append(TimelineItem(c.captured_at, "consent", f"consent {'given' if c.granted else 'withdrawn'}: "
                                  f"{c.function.replace('_', ' ')} (recorded by {names.get(c.captured_by, 'someone')})",
                                  f"/clients/{client.id}/consents"))
    clinical = actor.role in CLINICAL_ROLES
    encounters = s.exec(select(Encounter).where(Encounter.client_id == client.id)).all()
    for e in encounters:
        when = e.service_start or e.occurred_at
        code = f", {e.service_code}" if e.service_code else ""
        items.append(TimelineItem(when, "session", f"{e.note_type.upper()} session with "
                                  f"{names.get(e.clinician_id, 'a clinician')}{code}: {e.status.replace('_', ' ')}",
                                  f"/sessions/{e.id}" if clinical and e.clinician_id == actor.id else ""))
    versions = s.exec(select(NoteVersion, Note).join(Note, col(Note.id) == NoteVersion.note_id)
                      .where(col(Note.encounter_id).in_([e.id for e in encounters]))).all()
    for v, n in versions:
        items.append(TimelineItem(v.signed_at, "note", f"{v.kind} v{v.version} signed by {v.signer_name}"
                                  f"{', awaiting co-signature' if v.requires_cosign else ''}",
                                  f"/sessions/{n.encounter_id}#note" if clinical and n.clinician_id == actor.id else ""))
    assignments = list(s.exec(select(ClientAssignment).where(ClientAssignment.client_id == client.id)
                              .order_by(col(ClientAssignment.assigned_at))))
    for a in assignments:
        items.append(TimelineItem(a.assigned_at, "transfer", f"assigned to {names.get(a.clinician_id, '?')} "
                                  f"({a.reason}) by {names.get(a.assigned_by, 'someone')}"))
    for r in s.exec(select(DeletionReceipt).where(DeletionReceipt.client_id == client.id)):
        items.append(TimelineItem(r.at, "receipt", f"deletion receipt: {r.rule}", f"/receipts/{r.id}"))
    items.sort(key=lambda i: i.at, reverse=True)
    audit.record(s, key, now=now, actor_id=actor.id, action="client.read", object_type="client", object_id=client.id,
                 reason="own caseload" if client.clinician_id == actor.id else actor.role)
    return ClientPage(client, names.get(client.clinician_id, ""), items, show_diagnoses=clinical,
                      may_open_sessions=clinical, assignments=[(a, names.get(a.clinician_id, "")) for a in assignments])


def clinicians_of(s: Session, actor: User) -> list[User]:
    """Whom a client may be assigned to: the clinic's active clinicians and supervisors."""
    users = s.exec(select(User).where(User.clinic_id == actor.clinic_id, col(User.role).in_(list(CLINICAL_ROLES)),
                                      col(User.active).is_(True))).all()
    return sorted(users, key=lambda u: u.full_name)


def count_active(s: Session, clinic_id: int) -> int:
    return int(s.exec(select(func.count()).select_from(Client).where(Client.clinic_id == clinic_id,
                                                                     Client.status == ClientStatus.ACTIVE)).one())
