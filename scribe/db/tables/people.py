"""Accounts, clinics, clients and what belongs to a client outside any session: search tokens,
assignments, consents, the transcription switch; sign-in sessions, invitations, the throttle;
data keys and emergency-access grants."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, ClassVar

from sqlalchemy import JSON, Column, Text, UniqueConstraint
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
