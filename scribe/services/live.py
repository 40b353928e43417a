"""Live transcription: the recording is transcribed while it is made.

As the recorder's pieces arrive, a `live` job (one per session, queued again as more arrives)
decodes what is new, transcribes it from where the last window stopped, and commits every
segment that ends clear of the edge of what has arrived. Committed segments never change: the
page shows the transcript growing, and when the recording stops only the audio after the last
committed segment is left for the transcribe stage.

- Where a window starts: at the end of the last committed segment (or of the silence before
  it). Whisper's voice detection finds the speech in the window, and the last committed text is
  its prompt, so a sentence cut at a window's edge reads on.
- Decoding only what is new: the recording's first piece (its container header) followed by
  the pieces from a little before the committed point on; the container's own timestamps say
  where that stretch starts.
- Consent is checked when a window starts and again at its commit (with the session still being
  recorded, checked in the same transaction); a withdrawal stops the job at once.
- A crash loses nothing committed: the next run resumes at ``live_until``. A commit from a
  worker that lost its job, or after the recording ended, is refused.
- Speaker labels here are provisional (steady across windows through the running voices); the
  transcribe stage labels the whole recording again when it ends."""

from __future__ import annotations

import dataclasses
import logging
import time
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import func, update
from sqlmodel import Session, col, select

from scribe.db.engine import changed_rows, session_scope
from scribe.db.tables import Encounter, Job, RecordingChunk, Transcript, TranscriptSegment
from scribe.domain.errors import ConsentMissing, EngineError
from scribe.domain.notes import EncounterStatus, JobKind, JobStatus
from scribe.domain.transcript import Segment
from scribe.engines.protocols import Audio, Deadline
from scribe.services.consent import require_step_for
from scribe.services.files import recordings
from scribe.services.jobs import LeaseLost, hold_lease

if TYPE_CHECKING:
    from scribe.runtime import Runtime

log = logging.getLogger("scribe.live")

RATE = 16000
MIN_NEW_SECONDS = 20.0  # transcribe once this much new audio is in
GUARD_SECONDS = 2.0  # a segment ending this close to the edge of what arrived waits for the next window
MAX_OPEN_SECONDS = 90.0  # past this without a pause to cut at, commit what there is
PIECE_SECONDS = 2.0  # the recorder's timeslice: where to start decoding is guessed from it
LOOKBACK_SECONDS = 8.0
WINDOWS_PER_RUN = 4  # then the job goes back in the queue, so other sessions' stages interleave
QUEUE_EVERY = 10  # pieces (about 20 s) between live runs while recording


def on_piece(s: Session, policies: object, encounter: Encounter, seq: int, now: datetime) -> None:
    """A piece was stored: about every twenty seconds of audio, queue a live run unless one is
    waiting or running (which carries on while there is more)."""
    if (seq + 1) % QUEUE_EVERY:
        return
    job = s.exec(select(Job).where(Job.encounter_id == encounter.id, Job.kind == JobKind.LIVE)).first()
    if job is None:
        s.add(Job(encounter_id=encounter.id or 0, kind=JobKind.LIVE, status=JobStatus.QUEUED,
                  max_attempts=policies.pipeline.max_attempts,  # type: ignore[attr-defined]
                  run_after=now, created_at=now, updated_at=now))
    elif job.status == JobStatus.DONE:
        job.status, job.run_after, job.updated_at, job.lease_until = JobStatus.QUEUED, now, now, None
        s.add(job)


@dataclasses.dataclass(frozen=True)
class Window:
    """What one live step found, ready to commit."""

    segments: tuple[Segment, ...]
    until: float  # the new committed point
    voices: dict[str, object]


def run(rt: Runtime, job: Job) -> None:
    """Transcribe what is waiting (a few windows), then leave the job done, or queued again if
    more is waiting. Errors are the job's own: the recording and the cold path are untouched."""
    more = False
    try:
        for _ in range(WINDOWS_PER_RUN):
            if not _step(rt, job):
                break
        else:
            more = True
        more = _note(rt, job) or more
        _finish_run(rt, job, JobStatus.QUEUED if more else JobStatus.DONE, "")
    except LeaseLost:
        log.warning("live job %s lease lost encounter=%s: window discarded", job.id, job.encounter_id)
    except ConsentMissing as exc:
        log.warning("live job %s stopped encounter=%s: consent", job.id, job.encounter_id)
        _finish_run(rt, job, JobStatus.STOPPED, exc.public_message)
    except Exception as exc:
        log.error("live job %s failed encounter=%s type=%s", job.id, job.encounter_id, exc.__class__.__name__)
        message = exc.public_message if isinstance(exc, EngineError) else f"live transcription stopped " \
            f"({exc.__class__.__name__}); the whole recording is transcribed when it ends"
        _finish_run(rt, job, JobStatus.FAILED if job.attempts >= job.max_attempts else JobStatus.DONE, message)


def _note(rt: Runtime, job: Job) -> bool:
    """The next whole part's notes for the drafting model (scribe.services.digests). A failure
    here is not live transcription's: what is not noted now is noted at the draft stage."""
    from scribe.services import digests

    try:
        return digests.live_step(rt, job)
    except LeaseLost:
        raise
    except Exception as exc:
        log.warning("live job %s notes skipped encounter=%s type=%s", job.id, job.encounter_id,
                    exc.__class__.__name__)
        return False


def _finish_run(rt: Runtime, job: Job, status: JobStatus, error: str) -> None:
    """Leave the job done, stopped or failed, or queued again (through the ORM, so a queue engine
    that dispatches queued rows, such as Procrastinate, is handed it again)."""
    now = rt.clock()
    with session_scope(rt.engine) as s:
        row = s.get(Job, job.id)
        if row is None or row.status != JobStatus.RUNNING or row.worker_id != job.worker_id:
            return  # no longer this worker's (stopped by a withdrawal, or taken over)
        row.status, row.error, row.lease_until, row.run_after, row.updated_at = status, error, None, now, now
        if status in (JobStatus.DONE, JobStatus.QUEUED) and not error:
            row.attempts = 0  # a window committed: the next run starts afresh
        s.add(row)


def _step(rt: Runtime, job: Job) -> bool:
    """One window: True when it committed one (more may be waiting)."""
    engines = rt.require_engines()
    transcriber = engines.transcriber
    name = getattr(transcriber, "name", "?")
    from scribe.services.transcription import voice_hints

    with session_scope(rt.engine) as s:
        encounter = s.get(Encounter, job.encounter_id)
        if encounter is None or encounter.status != EncounterStatus.RECORDING:
            return False  # the recording ended: the transcribe stage takes what is left
        require_step_for(s, rt.policies, encounter, step=JobKind.TRANSCRIBE.value, now=rt.clock())
        pieces = [c.path for i, c in enumerate(s.exec(select(RecordingChunk).where(
            RecordingChunk.encounter_id == encounter.id).order_by(col(RecordingChunk.seq))).all()) if c.seq == i]
        transcript = s.exec(select(Transcript).where(Transcript.encounter_id == encounter.id)).first()
        if transcript is not None and transcript.engine != name:
            return False  # begun by another transcriber: the cold path does the rest
        until = transcript.live_until if transcript is not None else 0.0
        voices = dict(transcript.live_voices or {}) if transcript is not None else {}
        done = _segments(s, transcript)
        hints = voice_hints(s, rt, encounter)
    if len(pieces) * PIECE_SECONDS - until < MIN_NEW_SECONDS:
        return False
    found = _decode_after(rt, pieces, until)
    if found is None:
        return False
    end = found.offset + found.seconds
    if end - until < MIN_NEW_SECONDS:
        return False
    window = found.samples[max(0, round((until - found.offset) * RATE)):]
    deadline = Deadline.after(rt.policies.pipeline.timeouts.transcribe_seconds, "live transcription")
    started = time.perf_counter()
    result = transcriber.transcribe(Audio(window, len(window) / RATE, offset=until), deadline,
                                    context=" ".join(x.text for x in done[-3:]))
    kept = cut(tuple(x.shifted(until) for x in result.segments), until=until, end=end)
    if kept is None:
        return False
    segments, new_until = kept
    if engines.voices is not None and segments:
        segments, voices = engines.voices.label_window(window, segments, hints, voices, until)
    _commit(rt, job, Window(segments, new_until, voices), name, known=len(done),
            seconds=time.perf_counter() - started)
    return True


def cut(segments: tuple[Segment, ...], *, until: float, end: float) -> tuple[tuple[Segment, ...], float] | None:
    """Which of a window's segments to commit, and the new committed point: those that end clear
    of the edge (a segment still being spoken at the edge waits for the next window). No speech:
    the window up to the guard is committed as silence. A segment that never ends (no pause for
    a minute and a half) is committed as it is, so the window cannot grow without bound."""
    edge = end - GUARD_SECONDS
    kept = tuple(x for x in segments if x.end <= edge and x.end > until)
    if kept:
        return kept, kept[-1].end
    if not segments:
        return (), edge
    if end - until > MAX_OPEN_SECONDS:
        return tuple(x for x in segments if x.end > until), max(x.end for x in segments)
    return None


def _segments(s: Session, transcript: Transcript | None) -> list[TranscriptSegment]:
    if transcript is None:
        return []
    return list(s.exec(select(TranscriptSegment).where(TranscriptSegment.transcript_id == transcript.id)
                       .order_by(col(TranscriptSegment.idx))).all())


def _decode_after(rt: Runtime, pieces: list[str], until: float) -> Audio | None:
    """The audio from a little before ``until`` to the end of what has arrived."""
    store = recordings(rt.recordings_dir)

    def read(rel: str) -> bytes:
        return store.read(rt.engine, rel)

    head = read(pieces[0])
    limit = rt.policies.pipeline.upload.max_seconds
    first = max(1, int((until - LOOKBACK_SECONDS) / PIECE_SECONDS))
    found = rt.decoder.pcm_after(head, b"".join(read(p) for p in pieces[first:]), max_seconds=limit)
    if found.offset > until and first > 1:  # the guess began too late (a pause): from the start
        found = rt.decoder.pcm_after(head, b"".join(read(p) for p in pieces[1:]), max_seconds=limit)
    return found if found.offset <= until + 0.05 else None


def _commit(rt: Runtime, job: Job, window: Window, engine_name: str, *, known: int, seconds: float) -> None:
    now = rt.clock()
    with session_scope(rt.engine) as s:
        hold_lease(s, job, now)
        still_recording = changed_rows(s, update(Encounter).where(col(Encounter.id) == job.encounter_id,
                                                                  col(Encounter.status) == EncounterStatus.RECORDING)
                                          .values(updated_at=now))
        if still_recording != 1:
            return  # finished meanwhile: the transcribe stage reads what was committed before
        encounter = s.get(Encounter, job.encounter_id)
        assert encounter is not None  # noqa: S101 - narrows the type; never a guard
        require_step_for(s, rt.policies, encounter, step=JobKind.TRANSCRIBE.value, now=now)
        transcript = s.exec(select(Transcript).where(Transcript.encounter_id == job.encounter_id)).first()
        if transcript is None:
            transcript = Transcript(encounter_id=job.encounter_id, engine=engine_name, language="en",
                                    duration_seconds=0.0, seconds_taken=0.0, created_at=now)
            s.add(transcript)
            s.flush()
        count = s.exec(select(func.count()).select_from(TranscriptSegment)
                       .where(TranscriptSegment.transcript_id == transcript.id)).one()
        if int(count) != known:
            return  # another run committed meanwhile: this window is theirs now
        for i, seg in enumerate(window.segments):
            s.add(TranscriptSegment(transcript_id=transcript.id or 0, idx=known + i, start=seg.start, end=seg.end,
                                    speaker=seg.speaker.value, text=seg.text,
                                    words=[[w.start, w.end, w.text, w.probability] for w in seg.words]))
        transcript.live_until, transcript.live_voices = window.until, window.voices
        transcript.duration_seconds = window.until
        transcript.seconds_taken += seconds
        s.add(transcript)
        s.execute(update(Job).where(col(Job.id) == job.id)
                  .values(output_key=f"{job.encounter_id}:live:{window.until:.2f}", updated_at=now))
    log.info("live job %s window committed encounter=%s segments=%s until=%.1f", job.id, job.encounter_id,
             len(window.segments), window.until)
