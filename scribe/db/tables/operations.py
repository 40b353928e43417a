"""Jobs, the audit chain and its head, egress events and deletion receipts; the append-only
guard on signed versions, co-signatures and audit rows."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, UniqueConstraint, event
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Field, SQLModel

from scribe.db.tables.notes import Cosignature, NoteVersion


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


class AuditHead(SQLModel, table=True):
    """One row that every audit append updates first: the lock that serialises appends
    (a row lock on PostgreSQL, the database write lock on SQLite, both held to commit)."""

    __tablename__ = "audit_head"
    id: int | None = Field(default=None, primary_key=True)
    appends: int = Field(default=0, sa_type=BigInteger)


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
