"""Object-level access: one fetch-with-access-check helper per resource, used by every
route. What the actor may not see is reported as not found (404), never as forbidden."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, col, select

from scribe.db.tables import (
    BreakGlassGrant,
    Client,
    DeletionReceipt,
    Encounter,
    EncounterParticipant,
    Job,
    Note,
    NoteVersion,
    User,
)
from scribe.domain.decision import Decision, Ground
from scribe.domain.errors import NotFound
from scribe.domain.notes import CLINICAL_ROLES, EncounterStatus, JobKind, JobStatus, Role


def by_emergency_grant(access: Decision) -> bool:
    """Was access allowed by a break-glass grant (signed records only, nothing else)?"""
    return access.ground is Ground.BREAK_GLASS


def supervisee_ids(session: Session, actor: User) -> list[int]:
    return [u.id for u in supervisees_for_actor(session, actor) if u.id]


def active_grant(session: Session, actor: User, client_id: int, now: datetime) -> BreakGlassGrant | None:
    return session.exec(select(BreakGlassGrant).where(BreakGlassGrant.user_id == actor.id,
                                                      BreakGlassGrant.client_id == client_id,
                                                      col(BreakGlassGrant.starts_at) <= now,
                                                      col(BreakGlassGrant.ends_at) > now)).first()


def encounter_access(session: Session, actor: User, encounter: Encounter, now: datetime | None = None) -> Decision:
    """Who may read a session, and why. ``now`` is given where break-glass applies (the
    session page and the export); Part 2 records stay with the treating team."""
    if actor.role not in CLINICAL_ROLES:
        return Decision.deny(f"{actor.role}s do not read clinical content")
    if encounter.clinic_id != actor.clinic_id:
        return Decision.deny("another clinic's session")
    if encounter.clinician_id == actor.id:
        return Decision.on(Ground.OWN)
    if encounter.clinician_id in supervisee_ids(session, actor):
        return Decision.on(Ground.SUPERVISEE)
    if session.exec(select(EncounterParticipant).where(EncounterParticipant.encounter_id == encounter.id,
                                                       EncounterParticipant.user_id == actor.id)).first():
        return Decision.on(Ground.PARTICIPANT)
    if now is not None and encounter.client_id and not encounter.part2:
        grant = active_grant(session, actor, encounter.client_id, now)
        if grant is not None:
            return Decision.on(Ground.BREAK_GLASS, f"#{grant.id}")
    return Decision.deny("not the actor's session or a supervisee's")


def get_encounter_for_actor(session: Session, actor: User, encounter_id: int,
                            now: datetime | None = None) -> tuple[Encounter, Decision]:
    encounter = session.get(Encounter, encounter_id)
    if encounter is None:
        raise NotFound("no such session")
    decision = encounter_access(session, actor, encounter, now)
    if not decision:
        raise NotFound("no such session")
    return encounter, decision


def encounters_for_actor(session: Session, actor: User) -> list[Encounter]:
    if actor.role not in CLINICAL_ROLES:
        return []
    ids = [actor.id, *supervisee_ids(session, actor)]
    met = select(EncounterParticipant.encounter_id).where(EncounterParticipant.user_id == actor.id)
    stmt = (select(Encounter).where(Encounter.clinic_id == actor.clinic_id)
            .where(col(Encounter.clinician_id).in_(ids) | col(Encounter.id).in_(met))
            .order_by(col(Encounter.id).desc()))
    return list(session.exec(stmt).all())


def queue_labels(session: Session, encounters: list[Encounter]) -> list[str]:
    """What the queue shows for each session: the client, or a meeting's participants."""
    client_ids = {e.client_id for e in encounters if e.client_id}
    clients = {c.id: c for c in session.exec(select(Client).where(col(Client.id).in_(client_ids)))}
    meetings = {e.id for e in encounters if e.client_id is None}
    people: dict[int, list[str]] = {}
    for part, user in session.exec(select(EncounterParticipant, User)
                                   .join(User, col(User.id) == EncounterParticipant.user_id)
                                   .where(col(EncounterParticipant.encounter_id).in_(meetings))):
        people.setdefault(part.encounter_id, []).append(user.full_name)
    return [clients[e.client_id].display_name if e.client_id in clients
            else "Supervision: " + ", ".join(people.get(e.id or 0, [])) for e in encounters]


def is_part2_client(session: Session, client_id: int) -> bool:
    """In a 42 CFR Part 2 program, or with any session tagged Part 2."""
    client = session.get(Client, client_id)
    if client is not None and client.part2_program:
        return True
    return session.exec(select(Encounter.id).where(Encounter.client_id == client_id,
                                                   col(Encounter.part2).is_(True))).first() is not None


def supervisees_for_actor(session: Session, actor: User) -> list[User]:
    if actor.role != Role.SUPERVISOR:
        return []
    return list(session.exec(select(User).where(User.supervisor_id == actor.id, User.clinic_id == actor.clinic_id)
                             .order_by(col(User.full_name))).all())


def get_supervisee_for_actor(session: Session, actor: User, user_id: int) -> User:
    """A supervisee's own account, or their supervisor's view of it; anything else is 404."""
    user = session.get(User, user_id)
    if user is None or user.clinic_id != actor.clinic_id:
        raise NotFound("no such supervisee")
    if user.id == actor.id or (actor.role == Role.SUPERVISOR and user.supervisor_id == actor.id):
        return user
    raise NotFound("no such supervisee")


def client_access(actor: User, client: Client) -> Decision:
    """Who may open a client's chart: the assigned clinician (their caseload), and intake
    staff of the same clinic (who manage charts and consents but read no clinical text)."""
    if client.clinic_id != actor.clinic_id:
        return Decision.deny("another clinic's client")
    if actor.role == Role.INTAKE:
        return Decision.allow("intake staff of the clinic")
    if actor.role in CLINICAL_ROLES and client.clinician_id == actor.id:
        return Decision.allow("own caseload")
    return Decision.deny("not the actor's client")


def clients_for_actor(session: Session, actor: User) -> list[Client]:
    """A clinician's caseload, or every client of the clinic for intake staff; by name."""
    if actor.role == Role.INTAKE:
        stmt = select(Client).where(Client.clinic_id == actor.clinic_id)
    elif actor.role in CLINICAL_ROLES:
        stmt = select(Client).where(Client.clinician_id == actor.id, Client.clinic_id == actor.clinic_id)
    else:
        return []
    # Names are sealed: the order is made here, not by the database.
    return sorted(session.exec(stmt).all(), key=lambda c: (c.family_name.casefold(), c.given_name.casefold(), c.id))


def get_client_for_actor(session: Session, actor: User, client_id: int) -> Client:
    client = session.get(Client, client_id)
    if client is None or not client_access(actor, client):
        raise NotFound("no such client")
    return client


def transcription_progress(session: Session, encounter: Encounter) -> int | None:
    """Percent of the recording's audio transcribed, while its transcription runs (else None:
    the page shows no progress bar)."""
    if encounter.status != EncounterStatus.TRANSCRIBING:
        return None
    job = session.exec(select(Job).where(Job.encounter_id == encounter.id, Job.kind == JobKind.TRANSCRIBE,
                                         Job.status == JobStatus.RUNNING)).first()
    return None if job is None else round(job.progress * 100)


def get_version_for_actor(session: Session, actor: User, version_id: int) -> tuple[NoteVersion, Note, Encounter]:
    """A signed version, with its note and session, for whoever may read that session."""
    version = session.get(NoteVersion, version_id)
    if version is None:
        raise NotFound("no such note version")
    note = session.get_one(Note, version.note_id)
    encounter, _ = get_encounter_for_actor(session, actor, note.encounter_id)
    return version, note, encounter


def get_clinician_in_clinic(session: Session, actor: User, user_id: int | None, *, active: bool = True) -> User:
    """A clinician (or supervisor) of the actor's own clinic: whom a client is assigned or
    transferred to, whose capture a switch turns off. Anyone else is not found."""
    user = session.get(User, user_id) if user_id else None
    if user is None or user.clinic_id != actor.clinic_id or user.role not in CLINICAL_ROLES or (active and not user.active):
        raise NotFound("no such clinician")
    return user


def get_client_in_clinic(session: Session, actor: User, client_id: int) -> Client:
    """Any client of the actor's clinic, for the clinic-wide duties of an admin (a legal hold)."""
    client = session.get(Client, client_id)
    if client is None or client.clinic_id != actor.clinic_id:
        raise NotFound("no such client")
    return client


def get_own_grant(session: Session, actor: User, grant_id: int) -> BreakGlassGrant:
    """An emergency-access grant, for the person it was granted to only."""
    grant = session.get(BreakGlassGrant, grant_id)
    if grant is None or grant.user_id != actor.id:
        raise NotFound("no such emergency access")
    return grant


def get_receipt_for_actor(session: Session, actor: User, receipt_id: int) -> tuple[DeletionReceipt, Client | None, str]:
    """A deletion receipt (it holds no clinical text) and on what ground it may be read: a
    client's, by the client's clinician, intake staff or an admin of the clinic; a supervision
    meeting's, by its supervisor or an admin. Anyone else: not found."""
    receipt = session.get(DeletionReceipt, receipt_id)
    if receipt is None:
        raise NotFound("no such receipt")
    client = session.get(Client, receipt.client_id) if receipt.client_id else None
    if client is None:
        owner = session.get(User, int(receipt.owner.split(":", 1)[1])) if receipt.owner.startswith("meetings:") else None
        if owner is None or owner.clinic_id != actor.clinic_id or (actor.role != Role.ADMIN and owner.id != actor.id):
            raise NotFound("no such receipt")
        return receipt, None, "own meetings" if owner.id == actor.id else actor.role
    if client.clinic_id != actor.clinic_id:
        raise NotFound("no such receipt")
    if actor.role not in (Role.ADMIN, Role.INTAKE) and client.clinician_id != actor.id:
        raise NotFound("no such receipt")
    return receipt, client, "own client" if client.clinician_id == actor.id else actor.role
