"""Drafts (sections, sentences, the clinician's changes), notes and their signed versions,
co-signatures and licensure hours."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import JSON, Column, UniqueConstraint
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Field, SQLModel

from scribe.db.sealing.columns import Sealed
from scribe.db.sealing.envelope import Scope
from scribe.db.tables.sessions import encounter_scope


def draft_scope(session: OrmSession, draft_id: int) -> Scope:
    draft = session.get(Draft, draft_id)
    return encounter_scope(session, draft.encounter_id if draft else None, "draft")


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
