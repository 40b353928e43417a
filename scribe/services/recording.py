"""Recording in the browser: the page sends the recording in chunks as it is made; each
chunk is fsync'ed before it is acknowledged, so a closed tab or a lost connection loses at
most the chunk in flight. Finishing joins the chunks (a WebM stream split by MediaRecorder
concatenates back into one file), checks the result like any upload, and queues it."""

from __future__ import annotations

import hashlib
import io
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, func, select

from scribe.db.queries import get_encounter_for_actor
from scribe.db.tables import Encounter, RecordingChunk, Transcript, TranscriptSegment, User, owner_of
from scribe.domain.errors import Conflict, InvalidInput, PermissionDenied
from scribe.domain.notes import EncounterStatus
from scribe.domain.transcript import Speaker
from scribe.engines.protocols import Decoder
from scribe.policies import Policies
from scribe.services import audit, live
from scribe.services.consent import require_step
from scribe.services.files import FileKey, recordings
from scribe.services.uploads import capture_target, check_voices, queue_stored, store_audio

MAX_CHUNK_BYTES = 4 << 20


def start(s: Session, key: bytes, policies: Policies, *, actor: User, client_id: int, note_type: str,
          now: datetime, part2: bool = False, voices: int = 2) -> Encounter:
    check_voices(voices)
    client, decision = capture_target(s, policies, actor=actor, client_id=client_id, note_type=note_type,
                                      step="record", now=now)
    encounter = Encounter(clinic_id=actor.clinic_id, client_id=client.id, clinician_id=actor.id or 0,
                          note_type=note_type, occurred_at=now, status=EncounterStatus.RECORDING,
                          created_at=now, updated_at=now, part2=part2 or client.part2_program,
                          service_start=now, place_of_service=policies.billing.recorded_place, voices=voices)
    s.add(encounter)
    s.flush()
    audit.record(s, key, now=now, actor_id=actor.id, action="recording.start", object_type="encounter",
                 object_id=encounter.id, reason=decision.reason + ("; Part 2 record" if encounter.part2 else ""))
    return encounter


def _recording(s: Session, actor: User, encounter_id: int) -> Encounter:
    encounter, _ = get_encounter_for_actor(s, actor, encounter_id)
    if encounter.clinician_id != actor.id:
        raise PermissionDenied("only the clinician recording the session adds to it")
    if encounter.status != EncounterStatus.RECORDING:
        raise Conflict(f"this recording is no longer open ({encounter.status.replace('_', ' ')}"
                       f"{': ' + encounter.status_reason if encounter.status_reason else ''})")
    return encounter


def add_chunk(s: Session, policies: Policies, *, actor: User, encounter_id: int, seq: int, data: bytes,
              recordings_dir: Path, now: datetime) -> RecordingChunk:
    """Store one chunk durably, then acknowledge. The client's consent to recording is checked
    for every chunk: after a withdrawal no further chunk is accepted."""
    encounter = _recording(s, actor, encounter_id)
    require_step(s, policies, client_id=encounter.client_id or 0, step="record", now=now)
    if not 0 <= seq < 100_000:
        raise InvalidInput("bad chunk number")
    if not data or len(data) > MAX_CHUNK_BYTES:
        raise InvalidInput(f"a chunk must hold 1 byte to {MAX_CHUNK_BYTES >> 20} MB")
    existing = s.exec(select(RecordingChunk).where(RecordingChunk.encounter_id == encounter.id,
                                                   RecordingChunk.seq == seq)).first()
    digest = hashlib.sha256(data).hexdigest()
    if existing is not None:  # a retried upload of a chunk already stored
        if existing.sha256 != digest:
            raise Conflict(f"chunk {seq} was already stored with different content")
        return existing
    rel = f"chunks/{encounter.id}/{seq:06d}.chunk"
    recordings(recordings_dir).write_bytes(FileKey.for_owner(s, owner_of(encounter), "audio", now), rel, data)
    chunk = RecordingChunk(encounter_id=encounter.id or 0, seq=seq, path=rel, bytes=len(data), sha256=digest,
                           received_at=now)
    s.add(chunk)
    encounter.updated_at = now
    s.add(encounter)
    try:
        s.flush()
    except IntegrityError:
        raise Conflict(f"chunk {seq} arrived twice at once; it is stored") from None
    if policies.pipeline.live_transcription:
        live.on_piece(s, policies, encounter, seq, now)
    return chunk


def finish(s: Session, key: bytes, policies: Policies, *, actor: User, encounter_id: int, recordings_dir: Path,
           decoder: Decoder, now: datetime) -> Encounter:
    """Join the chunks received (in order, up to the first gap) and queue the recording."""
    encounter = _recording(s, actor, encounter_id)
    decision = require_step(s, policies, client_id=encounter.client_id or 0, step="upload", now=now)
    chunks = list(s.exec(select(RecordingChunk).where(RecordingChunk.encounter_id == encounter.id)
                         .order_by(col(RecordingChunk.seq))).all())
    contiguous = [c for i, c in enumerate(chunks) if c.seq == i]
    if not contiguous:
        raise InvalidInput("nothing was recorded")
    joined = io.BytesIO()
    for c in contiguous:
        joined.write(recordings(recordings_dir).read(s.get_bind(), c.path))  # type: ignore[arg-type]
    joined.seek(0)
    audio = store_audio(policies, recordings_dir, joined, FileKey.for_owner(s, owner_of(encounter), "audio", now),
                        decoder)
    queue_stored(s, policies, encounter, audio, now)
    for c in chunks:  # joined and stored: the pieces go (their files once this commits, by sweep_files)
        s.delete(c)
    encounter.status = EncounterStatus.UPLOADED
    encounter.service_end = (encounter.service_start or now) + timedelta(seconds=round(audio.duration))
    encounter.status_reason = "" if len(contiguous) == len(chunks) else f"{len(chunks) - len(contiguous)} late chunk(s) left out"
    encounter.updated_at = now
    s.add(encounter)
    audit.record(s, key, now=now, actor_id=actor.id, action="recording.finish", object_type="encounter",
                 object_id=encounter.id, reason=f"{len(contiguous)} chunk(s); {decision.reason}",
                 content_sha256=audio.sha256)
    return encounter


def chunk_count(s: Session, encounter_id: int) -> int:
    return int(s.exec(select(func.count()).select_from(RecordingChunk)
                      .where(RecordingChunk.encounter_id == encounter_id)).one())


def live_transcript(s: Session, key: bytes, *, actor: User, encounter_id: int, after: int,
                    now: datetime) -> dict[str, object]:
    """What live transcription has committed so far, from segment ``after`` on, for the
    clinician recording it (the page polls this; its first read is audited)."""
    encounter, _ = get_encounter_for_actor(s, actor, encounter_id)
    if encounter.clinician_id != actor.id:
        raise PermissionDenied("only the clinician recording the session follows its transcript")
    transcript = s.exec(select(Transcript).where(Transcript.encounter_id == encounter.id)).first()
    rows = [] if transcript is None else s.exec(
        select(TranscriptSegment).where(TranscriptSegment.transcript_id == transcript.id,
                                        col(TranscriptSegment.idx) >= max(0, after))
        .order_by(col(TranscriptSegment.idx)).limit(200)).all()
    if after == 0:
        audit.record(s, key, now=now, actor_id=actor.id, action="encounter.read", object_type="encounter",
                     object_id=encounter.id, reason="live transcript")
    return {"recording": encounter.status == EncounterStatus.RECORDING,
            "until": transcript.live_until if transcript is not None else 0.0,
            "segments": [{"i": r.idx, "start": round(r.start, 1), "speaker": Speaker(r.speaker).label.lower(),
                          "text": r.text} for r in rows]}
