"""SQLModel tables, by concern: people (accounts, clinics, clients, consents, keys), sessions
(recordings, transcripts, pseudonymizations), notes (drafts, signed versions, co-signatures,
hours) and operations (jobs, the audit chain, egress, deletion receipts). Clinical text
(transcript segments, pseudonymizations and the re-identification map, drafts, note versions,
co-signature comments) is in ``Sealed`` columns: AES-GCM under the data key of the client it
belongs to, bound to the row (db/sealing/FORMAT.md). Each such table says whose key with
``seal_scope`` and which of its columns identify the row with ``__seal_binding__``. Jobs, audit
events and errors carry ids and codes only. Importing this package registers every table on
the metadata (and the append-only guard)."""

from scribe.db.tables.notes import (
    Cosignature,
    Draft,
    DraftChange,
    DraftSection,
    DraftSentence,
    HoursEntry,
    Note,
    NoteVersion,
    draft_scope,
)
from scribe.db.tables.operations import (
    APPEND_ONLY,
    AuditEvent,
    AuditHead,
    DeletionReceipt,
    EgressEvent,
    Job,
)
from scribe.db.tables.people import (
    BreakGlassGrant,
    Client,
    ClientAssignment,
    ClientSearchToken,
    Clinic,
    Consent,
    DataKey,
    Invitation,
    LoginSession,
    LoginThrottle,
    TranscriptionSwitch,
    User,
)
from scribe.db.tables.sessions import (
    Encounter,
    EncounterAttendee,
    EncounterParticipant,
    Pseudonymization,
    Recording,
    RecordingChunk,
    Transcript,
    TranscriptSegment,
    encounter_scope,
    owner_of,
)

__all__ = [
    "APPEND_ONLY",
    "AuditEvent",
    "AuditHead",
    "BreakGlassGrant",
    "Client",
    "ClientAssignment",
    "ClientSearchToken",
    "Clinic",
    "Consent",
    "Cosignature",
    "DataKey",
    "DeletionReceipt",
    "Draft",
    "DraftChange",
    "DraftSection",
    "DraftSentence",
    "EgressEvent",
    "Encounter",
    "EncounterAttendee",
    "EncounterParticipant",
    "HoursEntry",
    "Invitation",
    "Job",
    "LoginSession",
    "LoginThrottle",
    "Note",
    "NoteVersion",
    "Pseudonymization",
    "Recording",
    "RecordingChunk",
    "Transcript",
    "TranscriptSegment",
    "TranscriptionSwitch",
    "User",
    "draft_scope",
    "encounter_scope",
    "owner_of",
]
