"""Accept a recording: bounded, type-checked, durably stored, then a job row — and only
then acknowledged. Anything wrong gets a clear error and nothing half-stored remains."""

from __future__ import annotations

import io
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import BinaryIO

from sqlmodel import Session

from scribe.db.queries import get_client_for_actor, supervisee_ids
from scribe.db.tables import Client, Encounter, EncounterParticipant, Job, Recording, User
from scribe.domain.clients import ClientStatus
from scribe.domain.consent import transcription_decision
from scribe.domain.decision import Decision
from scribe.domain.errors import Conflict, ConsentMissing, InvalidInput, NotFound, PermissionDenied
from scribe.domain.notes import CLINICAL_ROLES, EncounterKind, EncounterStatus, JobKind, JobStatus, Role
from scribe.engines.protocols import Decoder
from scribe.policies import Policies
from scribe.services import audit
from scribe.services.consent import require_capture, switches_for
from scribe.services.files import FileKey, recordings

CHUNK = 1 << 20


def sniff_format(head: bytes) -> str | None:
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "wav"
    if head[:4] == b"OggS":
        return "ogg"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "webm"
    if head[4:8] == b"ftyp":
        return "m4a"
    if head[:3] == b"ID3" or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "mp3"
    return None


@dataclass(frozen=True)
class StoredAudio:
    path: Path
    fmt: str
    sha256: str
    size: int
    duration: float


class _Prefixed(io.RawIOBase):
    """A stream whose first bytes were already read (to sniff the type)."""

    def __init__(self, head: bytes, rest: BinaryIO) -> None:
        self._head, self._rest = head, rest

    def read(self, n: int = -1) -> bytes:
        if self._head:
            out, self._head = self._head, b""
            return out
        return self._rest.read(n)


def store_audio(policies: Policies, recordings_dir: Path, stream: BinaryIO, sealer: FileKey,
                decoder: Decoder) -> StoredAudio:
    """Check the type from the first bytes, then stream the upload, sealed (AES-GCM under
    the client's audio key), to a temporary file; check size, then decodability and length
    in the sandboxed decoder (decrypted in memory, the samples counted); fsync, rename into
    place and fsync the directory. Anything wrong: the file is removed, nothing else was
    written, and plaintext never touched the disk."""
    limits = policies.pipeline.upload
    head = stream.read(16)
    if not head:
        raise InvalidInput("the file is empty")
    fmt = sniff_format(head)
    if fmt is None or fmt not in limits.formats:
        raise InvalidInput(f"unsupported file type: upload {', '.join(x.upper() for x in limits.formats)} audio")
    store = recordings(recordings_dir)
    final = store.path(f"{uuid.uuid4().hex}.{fmt}")
    try:
        try:
            size, sha = store.write(sealer, final.name, _Prefixed(head, stream), limit=limits.max_bytes)  # type: ignore[arg-type]
        except OverflowError:
            raise InvalidInput(f"the file is larger than the {limits.max_bytes // (1 << 20)} MB limit") from None
        duration = decoder.probe(sealer.vault.read_file(final, context=store.context(final.name)),
                                 max_seconds=limits.max_seconds)
        if duration > limits.max_seconds:
            raise InvalidInput(f"the recording is longer than {limits.max_seconds / 3600:.1f} hours")
        if duration < limits.min_seconds:
            raise InvalidInput("the recording is too short or silent")
    except BaseException:
        final.unlink(missing_ok=True)
        raise
    return StoredAudio(final, fmt, sha, size, duration)


def queue_stored(session: Session, policies: Policies, encounter: Encounter, audio: StoredAudio, now: datetime) -> None:
    """The recording row and the first job, written with the encounter in one transaction."""
    session.add(encounter)
    session.flush()
    session.add(Recording(encounter_id=encounter.id or 0, path=audio.path.name, sha256=audio.sha256, format=audio.fmt,
                          bytes=audio.size, duration_seconds=round(audio.duration, 2), created_at=now))
    session.add(Job(encounter_id=encounter.id or 0, kind=JobKind.TRANSCRIBE, status=JobStatus.QUEUED,
                    max_attempts=policies.pipeline.max_attempts, run_after=now, created_at=now, updated_at=now))


def capture_target(session: Session, policies: Policies, *, actor: User, client_id: int, note_type: str, step: str,
                   now: datetime) -> tuple[Client, Decision]:
    """Who and what a recording or upload is for, refused unless this clinician may capture
    for this client and note type now (switches and consents)."""
    if actor.role not in CLINICAL_ROLES:
        raise PermissionDenied(f"{actor.role}s do not record or upload sessions")
    client = get_client_for_actor(session, actor, client_id)
    if client.status != ClientStatus.ACTIVE:
        raise Conflict("this client is discharged: take them back into care on their page to add a session")
    if policies.template(note_type).kind != "progress":
        raise InvalidInput("that note type is not a progress-note type")
    return client, require_capture(session, policies, actor=actor, client_id=client.id or 0, note_type=note_type,
                                   step=step, now=now)


MAX_VOICES = 5


def check_voices(voices: int) -> None:
    if not 1 <= voices <= MAX_VOICES:
        raise InvalidInput(f"a session has 1 to {MAX_VOICES} people speaking")


def accept_upload(
    session: Session,
    key: bytes,
    policies: Policies,
    *,
    recordings_dir: Path,
    decoder: Decoder,
    actor: User,
    client_id: int,
    note_type: str,
    filename: str,
    stream: BinaryIO,
    now: datetime,
    part2: bool = False,
    voices: int = 2,
) -> Encounter:
    check_voices(voices)
    client, decision = capture_target(session, policies, actor=actor, client_id=client_id, note_type=note_type,
                                      step="upload", now=now)
    audio = store_audio(policies, recordings_dir, stream,
                        FileKey.for_owner(session, f"client:{client.id}", "audio", now), decoder)
    encounter = Encounter(clinic_id=actor.clinic_id, client_id=client.id or 0, clinician_id=actor.id or 0,
                          note_type=note_type, occurred_at=now, status=EncounterStatus.UPLOADED,
                          created_at=now, updated_at=now, part2=part2 or client.part2_program,
                          # An upload arrives after the session: it ended at the latest now, and lasted
                          # as long as the recording. The clinician corrects both before signing.
                          service_start=now - timedelta(seconds=round(audio.duration)), service_end=now,
                          place_of_service=policies.billing.uploaded_place, voices=voices)
    queue_stored(session, policies, encounter, audio, now)
    audit.record(session, key, now=now, actor_id=actor.id, action="recording.upload", object_type="encounter",
                 object_id=encounter.id, reason=decision.reason + ("; Part 2 record" if encounter.part2 else ""),
                 content_sha256=audio.sha256)
    return encounter


def accept_supervision_upload(
    session: Session,
    key: bytes,
    policies: Policies,
    *,
    recordings_dir: Path,
    decoder: Decoder,
    actor: User,
    participant_ids: list[int],
    participants_agreed: bool,
    stream: BinaryIO,
    now: datetime,
) -> Encounter:
    """A supervisor's meeting with one supervisee (individual) or several (group). Every
    participant must be the supervisor's own supervisee and have agreed to the recording."""
    if actor.role != Role.SUPERVISOR:
        raise PermissionDenied("only supervisors record supervision meetings")
    mine = set(supervisee_ids(session, actor))
    chosen = sorted(set(participant_ids))
    if not chosen:
        raise InvalidInput("choose the supervisee(s) in this meeting")
    if any(i not in mine for i in chosen):
        raise NotFound("no such supervisee")
    if not participants_agreed:
        raise ConsentMissing("confirm that every participant agreed to this meeting being recorded")
    switched = transcription_decision(switches_for(session, actor), policies.supervision_note_type)
    if not switched:
        raise ConsentMissing(switched.reason)
    audio = store_audio(policies, recordings_dir, stream,
                        FileKey.for_owner(session, f"meetings:{actor.id}", "audio", now), decoder)
    encounter = Encounter(clinic_id=actor.clinic_id, kind=EncounterKind.SUPERVISION, client_id=None,
                          clinician_id=actor.id or 0, note_type=policies.supervision_note_type, occurred_at=now,
                          status=EncounterStatus.UPLOADED, created_at=now, updated_at=now)
    queue_stored(session, policies, encounter, audio, now)
    for user_id in chosen:
        session.add(EncounterParticipant(encounter_id=encounter.id or 0, user_id=user_id,
                                         consent_recorded_by=actor.id or 0, consent_recorded_at=now))
    audit.record(session, key, now=now, actor_id=actor.id, action="recording.upload", object_type="encounter",
                 object_id=encounter.id, reason=f"supervision meeting, {len(chosen)} participant(s) agreed",
                 content_sha256=audio.sha256)
    return encounter


