"""A session and what it produces before a note: participants and attendees, the recording and
its live chunks, the transcript and its segments, the pseudonymization. ``encounter_scope`` says
whose data key seals a session's artefacts."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import JSON, Column, UniqueConstraint
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Field, SQLModel

from scribe.db.sealing.columns import Sealed
from scribe.db.sealing.envelope import Scope, SealingError


def owner_of(encounter: Encounter) -> str:
    """Whose data keys seal a session's artefacts: its client's, or for a supervision
    meeting (no client) the supervisor's meetings'."""
    return f"client:{encounter.client_id}" if encounter.client_id else f"meetings:{encounter.clinician_id}"


def encounter_scope(session: OrmSession, encounter_id: int | None, kind: str) -> Scope:
    encounter = session.get(Encounter, encounter_id) if encounter_id else None
    if encounter is None:
        raise SealingError("sealed content must belong to a session")
    return Scope(owner_of(encounter), kind)


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
    # A long session's notes, part by part (scribe.domain.digest): the drafting model's reading
    # aid, never the evidence. Kept when the transcribe stage rewrites the transcript at the end.
    digests: list[dict[str, Any]] | None = Field(default=None, sa_column=Column(
        Sealed("transcripts.digests", is_json=True), nullable=True))

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
