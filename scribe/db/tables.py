"""SQLModel tables. Clinical text (transcript segments, pseudonymizations and the
re-identification map, drafts, note versions, co-signature comments) is in ``Sealed``
columns: AES-GCM under the data key of the client it belongs to, bound to the row
(db/sealing/FORMAT.md). Each such table says whose key with ``seal_scope`` and which of
its columns identify the row with ``__seal_binding__``. Jobs, audit events and errors
carry ids and codes only."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, ClassVar

from sqlalchemy import JSON, BigInteger, Column, Text, UniqueConstraint, event
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Field, SQLModel

from scribe.db.sealing.columns import Sealed
from scribe.db.sealing.envelope import Scope, SealingError


class User(SQLModel, table=True):
    __tablename__ = "users"
    __seal_binding__: ClassVar[tuple[str, ...]] = ("id",)
    id: int | None = Field(default=None, primary_key=True)
    clinic_id: int = Field(foreign_key="clinics.id", index=True)
    username: str = Field(unique=True, index=True)
    full_name: str
    role: str  # domain.notes.Role
    credential: str = ""  # e.g. LCSW, LPC, PhD
    licence_number: str = ""
    licence_status: str = "licensed"  # domain.notes.LicenceStatus
    licence_type: str = ""  # e.g. LPC-Associate, for hour targets
    supervisor_id: int | None = Field(default=None, foreign_key="users.id")
    password_hash: str
    active: bool = True
    failed_logins: int = 0
    locked_until: datetime | None = None  # throttling after repeated failures
    totp_secret: str | None = Field(default=None, sa_column=Column(Sealed("users.totp_secret"), nullable=True))
    totp_enrolled_at: datetime | None = None  # the second factor is in force once confirmed
    totp_last_step: int = 0  # each TOTP code is accepted once
    password_changed_at: datetime | None = None
    created_at: datetime
    # The clinician's voice (a unit voice embedding from a short sample they recorded), so the
    # speaker turns know which voice is theirs. Biometric: sealed like the second factor.
    voice: list[float] | None = Field(default=None, sa_column=Column(Sealed("users.voice", is_json=True),
                                                                        nullable=True))
    voice_enrolled_at: datetime | None = None

    def seal_scope(self, session: OrmSession) -> Scope:
        if self.id is None:
            raise SealingError("save the account before enrolling a second factor or a voice")
        return Scope(f"user:{self.id}", "mfa")


class Clinic(SQLModel, table=True):
    __tablename__ = "clinics"
    id: int | None = Field(default=None, primary_key=True)
    name: str
    address: str = ""  # the practice header of exported notes
    phone: str = ""
    npi: str = ""  # the practice's (type 2) National Provider Identifier


def _identity(label: str, *, default: Any = None, listed: bool = False, **kw: Any) -> Any:
    """An identity column of the chart, sealed (nullable only for the moment between a new
    client's insert and its sealed values, inside ``add_client``'s transaction)."""
    column: Column[Any] = Column(Sealed(f"clients.{label}", is_json=listed, **kw), nullable=True)
    if listed:
        return Field(default_factory=list, sa_column=column)
    return Field(default=default, sa_column=column)


class Client(SQLModel, table=True):
    """The chart: every identifier the system already knows about a client. Identity fields
    are sealed under the client's own identity key; ``mrn_index`` and the client's rows in
    ``client_search_tokens`` are keyed hashes (a blind index) for finding them. A new client
    is saved with ``db.clients.add_client`` (its key needs its id)."""

    __tablename__ = "clients"
    __table_args__ = (UniqueConstraint("clinic_id", "mrn_index"),)
    __seal_binding__: ClassVar[tuple[str, ...]] = ("id",)
    id: int | None = Field(default=None, primary_key=True)
    clinic_id: int = Field(foreign_key="clinics.id", index=True)
    clinician_id: int = Field(foreign_key="users.id", index=True)
    given_name: str = _identity("given_name")
    family_name: str = _identity("family_name")
    preferred_name: str = _identity("preferred_name", default="")
    date_of_birth: date | None = _identity("date_of_birth", as_date=True)
    mrn: str = _identity("mrn", default="")
    address: str = _identity("address", default="")
    city: str = _identity("city", default="")
    phone: str = _identity("phone", default="")
    email: str = _identity("email", default="")
    employer: str = _identity("employer", default="")
    school: str = _identity("school", default="")
    contacts: list[dict[str, Any]] = _identity("contacts", listed=True)
    guardians: list[dict[str, Any]] = _identity("guardians", listed=True)  # domain.clients.Person, with authority
    diagnoses: list[dict[str, Any]] = _identity("diagnoses", listed=True)  # entered by the clinician only
    mrn_index: str | None = Field(default=None, index=True)
    status: str = "active"  # domain.clients.ClientStatus
    discharged_at: datetime | None = None
    part2_program: bool = False  # in a 42 CFR Part 2 program: every session is tagged Part 2
    legal_hold: bool = False  # retention never purges a client on hold
    legal_hold_reason: str = ""
    created_at: datetime
    updated_at: datetime | None = None

    def seal_scope(self, session: OrmSession) -> Scope:
        if self.id is None:
            raise SealingError("save the client with db.clients.add_client (its key needs its id)")
        return Scope(f"client:{self.id}", "identity")

    @property
    def display_name(self) -> str:
        return f"{self.preferred_name or self.given_name} {self.family_name}"


class ClientSearchToken(SQLModel, table=True):
    """One keyed hash of one word of a client's names (the blind index name search uses)."""

    __tablename__ = "client_search_tokens"
    __table_args__ = (UniqueConstraint("client_id", "token"),)
    id: int | None = Field(default=None, primary_key=True)
    client_id: int = Field(foreign_key="clients.id", index=True)
    token: str = Field(index=True)


class ClientAssignment(SQLModel, table=True):
    """Who a client was assigned to, from when, by whom and why (a transfer, or the first)."""

    __tablename__ = "client_assignments"
    id: int | None = Field(default=None, primary_key=True)
    client_id: int = Field(foreign_key="clients.id", index=True)
    clinician_id: int = Field(foreign_key="users.id")
    assigned_at: datetime
    assigned_by: int = Field(foreign_key="users.id")
    reason: str  # domain.clients.TransferReason, or "new client"


class Consent(SQLModel, table=True):
    """One ledger entry: a grant (with its dates) or a withdrawal (granted False). Entries
    are never edited; the latest in force decides (domain.consent)."""

    __tablename__ = "consents"
    __seal_binding__: ClassVar[tuple[str, ...]] = ("client_id", "function", "captured_at")
    id: int | None = Field(default=None, primary_key=True)
    client_id: int = Field(foreign_key="clients.id", index=True)
    function: str
    granted: bool = True
    captured_by: int = Field(foreign_key="users.id")
    captured_at: datetime
    form_version: str
    form_text: str = Field(sa_column=Column(Text, nullable=False))
    on_behalf_of: str = ""  # who consented for the client (guardian of a minor), and their relation
    effective_from: datetime
    expires_at: datetime | None = None
    withdrawn_at: datetime | None = None  # legacy; withdrawals are entries of their own
    scan_path: str = ""  # the signed form, scanned (relative to the forms directory)
    scan_sha256: str = ""
    # Sealed: who consented on the client's behalf (a guardian from the chart: name, relation,
    # authority, documents) and, for a 42 CFR Part 2 disclosure, the 2.31 elements (recipient,
    # purpose, how much and what kind, expiry, revocation shown, who signed and when).
    details: dict[str, Any] = Field(default_factory=dict, sa_column=Column(Sealed("consents.details", is_json=True),
                                                                          nullable=True))

    def seal_scope(self, session: OrmSession) -> Scope:
        return Scope(f"client:{self.client_id}", "form")


class TranscriptionSwitch(SQLModel, table=True):
    """An admin's setting at one level; the newest row per level is in effect, older rows
    are the history."""

    __tablename__ = "transcription_switches"
    id: int | None = Field(default=None, primary_key=True)
    scope: str  # domain.consent.SwitchScope
    clinic_id: int | None = Field(default=None, foreign_key="clinics.id", index=True)
    user_id: int | None = Field(default=None, foreign_key="users.id", index=True)
    enabled: bool
    note_types: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))  # empty: all
    set_by: int = Field(foreign_key="users.id")
    set_at: datetime


class RecordingChunk(SQLModel, table=True):
    """A piece of a recording made in the browser, acknowledged once fsync'ed."""

    __tablename__ = "recording_chunks"
    __table_args__ = (UniqueConstraint("encounter_id", "seq"),)
    id: int | None = Field(default=None, primary_key=True)
    encounter_id: int = Field(foreign_key="encounters.id", index=True)
    seq: int
    path: str
    bytes: int
    sha256: str
    received_at: datetime


class EgressEvent(SQLModel, table=True):
    """The egress ledger: every send the gateway made or refused. Ids, hashes and counts."""

    __tablename__ = "egress_events"
    id: int | None = Field(default=None, primary_key=True)
    at: datetime
    destination: str
    host: str
    payload_sha256: str
    payload_bytes: int
    surrogates: int
    gateway_found: int
    policy_version: int
    allowed: bool
    reason: str


class DeletionReceipt(SQLModel, table=True):
    """What a purge removed, when, by which rule, with content hashes. No clinical text."""

    __tablename__ = "deletion_receipts"
    id: int | None = Field(default=None, primary_key=True)
    client_id: int | None = Field(default=None, foreign_key="clients.id", index=True)  # None: supervision meetings
    owner: str = ""  # whose material when no client's: "meetings:<supervisor id>"
    rule: str  # e.g. "consent withdrawn: transcribe"
    function: str = ""
    at: datetime
    by: int | None = Field(default=None, foreign_key="users.id")
    items: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    receipt_sha256: str


class Encounter(SQLModel, table=True):
    """A session (called an encounter here to avoid clashing with database sessions)."""

    __tablename__ = "encounters"
    id: int | None = Field(default=None, primary_key=True)
    clinic_id: int = Field(foreign_key="clinics.id", index=True)
    kind: str = "therapy"  # domain.notes.EncounterKind
    part2: bool = False  # a 42 CFR Part 2 substance-use-disorder record; follows every artefact
    client_id: int | None = Field(default=None, foreign_key="clients.id", index=True)  # None for supervision
    clinician_id: int = Field(foreign_key="users.id", index=True)  # the author: clinician, or supervisor
    note_type: str
    occurred_at: datetime
    status: str  # domain.notes.EncounterStatus
    status_reason: str = ""  # safe to show: codes and plain reasons, never clinical text
    created_at: datetime
    updated_at: datetime
    # The billable service: set from the recording, editable (and the code confirmed) before signing.
    service_start: datetime | None = None
    service_end: datetime | None = None
    place_of_service: str = ""  # a code of policies/billing.yaml places_of_service ("11" office, "02" telehealth)
    service_type: str = "individual"  # domain.billing.ServiceType
    service_code: str = ""  # confirmed by the clinician; "" until then (the suggestion is never stored as chosen)
    service_confirmed_by: int | None = Field(default=None, foreign_key="users.id")
    service_confirmed_at: datetime | None = None
    voices: int = 2  # people speaking (clinician included): speaker turns find that many voices


class EncounterParticipant(SQLModel, table=True):
    """The supervisees in a supervision meeting (one: individual supervision; more: group)."""

    __tablename__ = "encounter_participants"
    __table_args__ = (UniqueConstraint("encounter_id", "user_id"),)
    id: int | None = Field(default=None, primary_key=True)
    encounter_id: int = Field(foreign_key="encounters.id", index=True)
    user_id: int = Field(foreign_key="users.id", index=True)
    consent_recorded_by: int = Field(foreign_key="users.id")
    consent_recorded_at: datetime


class EncounterAttendee(SQLModel, table=True):
    """Someone besides the client in a couples, family or group session (their name is sealed)."""

    __tablename__ = "encounter_attendees"
    __table_args__ = (UniqueConstraint("encounter_id", "idx"),)
    __seal_binding__: ClassVar[tuple[str, ...]] = ("encounter_id", "idx")
    id: int | None = Field(default=None, primary_key=True)
    encounter_id: int = Field(foreign_key="encounters.id", index=True)
    idx: int
    name: str = Field(sa_column=Column(Sealed("encounter_attendees.name"), nullable=False))
    relation: str

    def seal_scope(self, session: OrmSession) -> Scope:
        return encounter_scope(session, self.encounter_id, "identity")


class Recording(SQLModel, table=True):
    __tablename__ = "recordings"
    id: int | None = Field(default=None, primary_key=True)
    encounter_id: int = Field(foreign_key="encounters.id", index=True, unique=True)
    path: str  # relative to the recordings directory
    sha256: str
    format: str
    bytes: int
    duration_seconds: float
    created_at: datetime
    purged_at: datetime | None = None


class Transcript(SQLModel, table=True):
    __tablename__ = "transcripts"
    __seal_binding__: ClassVar[tuple[str, ...]] = ("encounter_id",)
    id: int | None = Field(default=None, primary_key=True)
    encounter_id: int = Field(foreign_key="encounters.id", index=True, unique=True)
    engine: str
    language: str
    duration_seconds: float
    seconds_taken: float
    created_at: datetime
    # Live transcription (while the session is recorded): the audio up to here is transcribed and
    # its segments committed (they never change); only what follows is left when it ends. The
    # running voices (centroids of each speaker's voice so far) keep labels steady across windows.
    live_until: float = 0.0
    live_voices: dict[str, Any] | None = Field(default=None, sa_column=Column(
        Sealed("transcripts.live_voices", is_json=True), nullable=True))

    def seal_scope(self, session: OrmSession) -> Scope:
        return encounter_scope(session, self.encounter_id, "transcript")


class TranscriptSegment(SQLModel, table=True):
    __tablename__ = "transcript_segments"
    __seal_binding__: ClassVar[tuple[str, ...]] = ("transcript_id", "idx")
    __table_args__ = (UniqueConstraint("transcript_id", "idx"),)
    id: int | None = Field(default=None, primary_key=True)
    transcript_id: int = Field(foreign_key="transcripts.id", index=True)
    idx: int
    start: float
    end: float
    speaker: str
    text: str = Field(sa_column=Column(Sealed("transcript_segments.text"), nullable=False))
    words: list[list[Any]] = Field(default_factory=list,
                                   sa_column=Column(Sealed("transcript_segments.words", is_json=True), nullable=False))

    def seal_scope(self, session: OrmSession) -> Scope:
        transcript = session.get(Transcript, self.transcript_id)
        return encounter_scope(session, transcript.encounter_id if transcript else None, "transcript")


class Pseudonymization(SQLModel, table=True):
    """What the drafting model saw, and the re-identification map (host only)."""

    __tablename__ = "pseudonymizations"
    __seal_binding__: ClassVar[tuple[str, ...]] = ("encounter_id",)
    id: int | None = Field(default=None, primary_key=True)
    encounter_id: int = Field(foreign_key="encounters.id", index=True, unique=True)
    engine: str
    lines: list[str] = Field(default_factory=list,
                             sa_column=Column(Sealed("pseudonymizations.lines", is_json=True), nullable=False))
    segment_texts: list[str] = Field(default_factory=list, sa_column=Column(
        Sealed("pseudonymizations.segment_texts", is_json=True), nullable=False))
    surrogates: dict[str, Any] = Field(default_factory=dict, sa_column=Column(
        Sealed("pseudonymizations.surrogates", is_json=True), nullable=False))  # the re-identification map
    entity_counts: dict[str, int] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime

    def seal_scope(self, session: OrmSession) -> Scope:
        return encounter_scope(session, self.encounter_id, "transcript")


class Draft(SQLModel, table=True):
    __tablename__ = "drafts"
    __seal_binding__: ClassVar[tuple[str, ...]] = ("encounter_id",)
    id: int | None = Field(default=None, primary_key=True)
    encounter_id: int = Field(foreign_key="encounters.id", index=True, unique=True)
    note_type: str
    template_version: int
    model: str
    status: str = "drafting"  # domain.notes.DraftStatus
    ai_sections: dict[str, str] = Field(default_factory=dict, sa_column=Column(
        Sealed("drafts.ai_sections", is_json=True), nullable=False))  # pseudonymized
    prompt_tokens: int = 0
    generated_tokens: int = 0
    seconds_taken: float = 0.0
    draft_flags: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(
        Sealed("drafts.draft_flags", is_json=True), nullable=False))
    removed: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(
        Sealed("drafts.removed", is_json=True), nullable=False))
    lock_version: int = 1
    created_at: datetime
    updated_at: datetime

    def seal_scope(self, session: OrmSession) -> Scope:
        return encounter_scope(session, self.encounter_id, "draft")


class DraftSection(SQLModel, table=True):
    __tablename__ = "draft_sections"
    __seal_binding__: ClassVar[tuple[str, ...]] = ("draft_id", "key")
    __table_args__ = (UniqueConstraint("draft_id", "key"),)
    id: int | None = Field(default=None, primary_key=True)
    draft_id: int = Field(foreign_key="drafts.id", index=True)
    key: str
    title: str
    position: int
    ai_text: str = Field(sa_column=Column(Sealed("draft_sections.ai_text"), nullable=False))  # re-identified AI text
    text: str = Field(sa_column=Column(Sealed("draft_sections.text"), nullable=False))  # current (clinician-edited)
    edited: bool = False
    reviewed: bool = False

    def seal_scope(self, session: OrmSession) -> Scope:
        return draft_scope(session, self.draft_id)


class DraftSentence(SQLModel, table=True):
    __tablename__ = "draft_sentences"
    __seal_binding__: ClassVar[tuple[str, ...]] = ("draft_id", "section_key", "idx")
    id: int | None = Field(default=None, primary_key=True)
    draft_id: int = Field(foreign_key="drafts.id", index=True)
    section_key: str
    idx: int
    text: str = Field(sa_column=Column(Sealed("draft_sentences.text"), nullable=False))  # re-identified
    evidence: list[int] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    support: float = 0.0
    flags: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(
        Sealed("draft_sentences.flags", is_json=True), nullable=False))  # they quote what was found
    resolution: str = ""  # "" while open, else domain.notes.Resolution
    resolution_reason: str = Field(default="", sa_column=Column(Sealed("draft_sentences.resolution_reason"),
                                                                nullable=False))
    resolved_by: int | None = Field(default=None, foreign_key="users.id")
    resolved_at: datetime | None = None

    def seal_scope(self, session: OrmSession) -> Scope:
        return draft_scope(session, self.draft_id)


class Note(SQLModel, table=True):
    __tablename__ = "notes"
    id: int | None = Field(default=None, primary_key=True)
    encounter_id: int = Field(foreign_key="encounters.id", index=True, unique=True)
    clinician_id: int = Field(foreign_key="users.id", index=True)
    created_at: datetime


class NoteVersion(SQLModel, table=True):
    """An immutable signed version (database triggers refuse UPDATE and DELETE)."""

    __tablename__ = "note_versions"
    __seal_binding__: ClassVar[tuple[str, ...]] = ("note_id", "version")
    __table_args__ = (UniqueConstraint("note_id", "version"),)
    id: int | None = Field(default=None, primary_key=True)
    note_id: int = Field(foreign_key="notes.id", index=True)
    version: int
    kind: str  # domain.notes.VersionKind
    supersedes_id: int | None = Field(default=None, foreign_key="note_versions.id")
    note_type: str
    content: dict[str, Any] = Field(sa_column=Column(Sealed("note_versions.content", is_json=True),
                                                     nullable=False))  # canonical signed content
    content_sha256: str
    signer_id: int = Field(foreign_key="users.id")
    signer_name: str
    signer_credential: str
    signer_licence_number: str
    signed_at: datetime
    meaning: str
    zero_edit: bool = False
    ai_chars_kept: float = 0.0
    edit_distance: int = 0  # characters changed from the AI draft (originals and revisions)
    flags_confirmed: int = 0  # flags resolved by confirming rather than editing
    requires_cosign: bool = False  # signed by a pre-licensure clinician: a record only once co-signed

    def seal_scope(self, session: OrmSession) -> Scope:
        note = session.get(Note, self.note_id)
        return encounter_scope(session, note.encounter_id if note else None, "record")


class Cosignature(SQLModel, table=True):
    """A supervisor's decision on a supervisee's signed version: co-signed, or returned with
    comments. Append-only like the versions it refers to."""

    __tablename__ = "cosignatures"
    __seal_binding__: ClassVar[tuple[str, ...]] = ("note_version_id",)
    id: int | None = Field(default=None, primary_key=True)
    note_version_id: int = Field(foreign_key="note_versions.id", index=True, unique=True)
    outcome: str  # domain.notes.CosignOutcome
    supervisor_id: int = Field(foreign_key="users.id")
    signer_name: str
    signer_credential: str
    signer_licence_number: str
    at: datetime
    meaning: str
    comment: str = Field(default="", sa_column=Column(Sealed("cosignatures.comment"), nullable=False))
    content_sha256: str  # over the version's hash, the outcome, the co-signer and the time

    def seal_scope(self, session: OrmSession) -> Scope:
        version = session.get(NoteVersion, self.note_version_id)
        return version.seal_scope(session) if version else encounter_scope(session, None, "record")


class DraftChange(SQLModel, table=True):
    """What each draft version changed, so a stale save can say what happened meanwhile."""

    __tablename__ = "draft_changes"
    id: int | None = Field(default=None, primary_key=True)
    draft_id: int = Field(foreign_key="drafts.id", index=True)
    version: int  # the draft's lock_version after this change
    actor_id: int = Field(foreign_key="users.id")
    summary: str  # e.g. "edited Assessment": section titles and actions, no clinical text
    at: datetime


class HoursEntry(SQLModel, table=True):
    """One line of a supervisee's licensure-hours ledger, fed by signed records."""

    __tablename__ = "hours_entries"
    __table_args__ = (UniqueConstraint("user_id", "encounter_id", "category"),)
    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", index=True)
    category: str  # domain.supervision.HoursCategory
    hours: float
    encounter_id: int = Field(foreign_key="encounters.id", index=True)
    note_version_id: int = Field(foreign_key="note_versions.id")
    occurred_at: datetime
    recorded_at: datetime


class Job(SQLModel, table=True):
    """A durable pipeline step. Written before the work; outcome recorded after."""

    __tablename__ = "jobs"
    __table_args__ = (UniqueConstraint("encounter_id", "kind"),)
    id: int | None = Field(default=None, primary_key=True)
    encounter_id: int = Field(foreign_key="encounters.id", index=True)
    kind: str  # domain.notes.JobKind
    status: str = Field(index=True)  # domain.notes.JobStatus
    attempts: int = 0
    max_attempts: int = 3
    run_after: datetime
    lease_until: datetime | None = None
    worker_id: str = ""
    error: str = ""  # public message only
    seconds_taken: float = 0.0
    # (session, stage, hash of the stage's input), set in the transaction that records the
    # stage done: unique, so an output is committed once however often its job is delivered.
    output_key: str | None = Field(default=None, unique=True)
    progress: float = 0.0  # share of the recording's audio a running transcription has done (0..1)
    created_at: datetime
    updated_at: datetime


class LoginSession(SQLModel, table=True):
    __tablename__ = "login_sessions"
    id: int | None = Field(default=None, primary_key=True)
    token_sha256: str = Field(unique=True, index=True)
    user_id: int = Field(foreign_key="users.id", index=True)
    csrf_token: str
    created_at: datetime
    last_seen_at: datetime
    ended_at: datetime | None = None
    mfa_passed: bool = False  # False: the session may only enrol or enter a second factor
    end_reason: str = ""


class AuditEvent(SQLModel, table=True):
    """Append-only, HMAC-chained. Ids, actions and hashes only, never clinical text."""

    __tablename__ = "audit_events"
    id: int | None = Field(default=None, primary_key=True)
    at: datetime
    actor_id: int | None = None
    action: str
    object_type: str
    object_id: int | None = None
    reason: str = ""
    content_sha256: str = ""
    prev_hash: str
    hash: str = Field(unique=True)


class Invitation(SQLModel, table=True):
    """A single-use, expiring link with which a person sets their own password (migration 0009)."""

    __tablename__ = "invitations"
    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", index=True)
    token_sha256: str = Field(unique=True)
    purpose: str  # new account | password reset | second factor reset
    created_by: int = Field(foreign_key="users.id")
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None = None


class LoginThrottle(SQLModel, table=True):
    """Failed log-ins from one client address (migration 0007); the lock expires by itself."""

    __tablename__ = "login_throttle"
    address: str = Field(primary_key=True)
    failures: int = 0
    locked_until: datetime | None = None
    updated_at: datetime


class AuditHead(SQLModel, table=True):
    """One row that every audit append updates first: the lock that serialises appends
    (a row lock on PostgreSQL, the database write lock on SQLite, both held to commit)."""

    __tablename__ = "audit_head"
    id: int | None = Field(default=None, primary_key=True)
    appends: int = Field(default=0, sa_type=BigInteger)


# Signed versions, co-signatures and audit rows are append-only. The database refuses
# UPDATE and DELETE with triggers (migrations 0001, 0002); this guard refuses it earlier,
# in the app, for any ORM path, with an error the web layer shows as a 409.
APPEND_ONLY: tuple[type[SQLModel], ...] = (NoteVersion, Cosignature, AuditEvent, EgressEvent)


@event.listens_for(OrmSession, "before_flush")
def _refuse_changes_to_records(session: OrmSession, _context: Any, _instances: Any) -> None:
    from scribe.domain.errors import ImmutableRecord

    for obj in session.deleted:
        if isinstance(obj, APPEND_ONLY):
            raise ImmutableRecord(f"{obj.__tablename__} are append-only: signed records are never deleted")
    for obj in session.dirty:
        if isinstance(obj, APPEND_ONLY) and session.is_modified(obj):
            raise ImmutableRecord(f"{obj.__tablename__} are append-only: correct a note with an addendum or amendment")


def owner_of(encounter: Encounter) -> str:
    """Whose data keys seal a session's artefacts: its client's, or for a supervision
    meeting (no client) the supervisor's meetings'."""
    return f"client:{encounter.client_id}" if encounter.client_id else f"meetings:{encounter.clinician_id}"


def encounter_scope(session: OrmSession, encounter_id: int | None, kind: str) -> Scope:
    encounter = session.get(Encounter, encounter_id) if encounter_id else None
    if encounter is None:
        raise SealingError("sealed content must belong to a session")
    return Scope(owner_of(encounter), kind)


def draft_scope(session: OrmSession, draft_id: int) -> Scope:
    draft = session.get(Draft, draft_id)
    return encounter_scope(session, draft.encounter_id if draft else None, "draft")


class DataKey(SQLModel, table=True):
    """A data key, wrapped (AES-GCM) by the master key kept outside the database. A
    destroyed key keeps its row (what existed, when it went) but not its material."""

    __tablename__ = "data_keys"
    id: int | None = Field(default=None, primary_key=True)
    owner: str = Field(index=True)  # "client:12", "meetings:3", "user:5"
    kind: str  # audio | transcript | draft | record | form | mfa
    wrapped: str
    created_at: datetime
    destroyed_at: datetime | None = None


class BreakGlassGrant(SQLModel, table=True):
    """Emergency access to one client's records outside the actor's caseload: time-boxed,
    with a required reason, every use audited, listed for an admin's review."""

    __tablename__ = "break_glass_grants"
    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", index=True)
    client_id: int = Field(foreign_key="clients.id", index=True)
    reason: str
    starts_at: datetime
    ends_at: datetime
    reviewed_by: int | None = Field(default=None, foreign_key="users.id")
    reviewed_at: datetime | None = None
    review_note: str = ""
