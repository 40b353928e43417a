"""The transcribe stage: the whole recording, or after live transcription only what it left;
then speaker turns over the whole recording, with the session's voices."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from sqlalchemy import delete, update
from sqlmodel import Session, col, select

from scribe.db.engine import session_scope
from scribe.db.tables import Encounter, Job, Recording, Transcript, TranscriptSegment, User
from scribe.domain.errors import EngineError, InvalidInput
from scribe.domain.notes import EncounterKind, content_sha256
from scribe.domain.transcript import TranscriptResult
from scribe.engines.protocols import Deadline, VoiceHints
from scribe.services.files import recordings
from scribe.services.jobs import encounter_of
from scribe.services.pipeline import Output, load_segments, participants

if TYPE_CHECKING:
    from scribe.runtime import Runtime


def voice_hints(s: Session, rt: Runtime, encounter: Encounter) -> VoiceHints:
    """How many voices the session has and which is the clinician's: the count recorded with
    the session (a supervision meeting: the supervisor and each supervisee), the author's
    enrolled voice, and the practice's rule when none is enrolled."""
    author = s.get(User, encounter.clinician_id)
    voice = tuple(author.voice) if author is not None and author.voice else None
    speakers = encounter.voices
    if encounter.kind == EncounterKind.SUPERVISION:
        speakers = 1 + len(participants(s, encounter))
    return VoiceHints(speakers=max(1, speakers), clinician_voice=voice,
                      clinician_first=rt.policies.pipeline.clinician_is_first_speaker)


def transcribe_stage(rt: Runtime, job: Job) -> Output:
    """The whole recording, or (after live transcription) only what follows its last committed
    segment; then speaker turns over the whole recording."""
    engines = rt.require_engines()
    transcriber = engines.transcriber
    with session_scope(rt.engine) as s:
        recording = s.exec(select(Recording).where(Recording.encounter_id == job.encounter_id)).one()
        rel = recording.path
        claimed = recording.duration_seconds
        hints = voice_hints(s, rt, encounter_of(s, job))
        live = s.exec(select(Transcript).where(Transcript.encounter_id == job.encounter_id)).first()
        live_until = live.live_until if live is not None and live.engine == getattr(transcriber, "name", "?") else 0.0
        kept = load_segments(s, job.encounter_id) if live_until > 0 else ()
        made_from = content_sha256([recording.sha256, getattr(transcriber, "name", "?"),
                                    getattr(engines.voices, "name", "kept"), hints.speakers,
                                    list(hints.clinician_voice or ()), hints.clinician_first, live_until, len(kept)])
    limits = rt.policies.pipeline
    deadline = Deadline.after(limits.timeouts.transcribe_seconds + limits.timeouts.transcribe_per_audio_second * claimed,
                              "transcription")
    started = time.perf_counter()
    # Decrypted in memory only, and decoded in the sandboxed child (no keys, limits).
    try:
        store = recordings(rt.recordings_dir)
        audio = rt.decoder.pcm(store.read(rt.engine, rel), max_seconds=limits.upload.max_seconds,
                               source=str(store.path(rel)))
    except InvalidInput as exc:  # it decoded at upload; a second try would fail the same way
        raise EngineError(f"the recording could not be decoded: {exc.public_message}", retryable=False) from None
    deadline.check()
    report = _progress_reporter(rt, job, start=live_until / max(audio.seconds, 1e-6))
    if live_until > 0:  # live transcription did the rest while the session was recorded
        tail = audio.samples[int(live_until * 16000):]
        rest = transcriber.transcribe(dataclasses.replace(audio, samples=tail, seconds=len(tail) / 16000,
                                                          channels=None, offset=live_until), deadline,
                                      context=" ".join(x.text for x in kept[-3:]), progress=report)
        segments = tuple(kept) + tuple(x.shifted(live_until) for x in rest.segments)
        result = TranscriptResult(tuple(dataclasses.replace(x, index=i) for i, x in enumerate(segments)),
                                  audio.seconds, rest.language)
    else:
        result = transcriber.transcribe(audio, deadline, progress=report)
    if engines.voices is not None:  # speaker turns, per word (a stereo file: by its sides too)
        result = dataclasses.replace(result, segments=engines.voices.label(audio.samples, result.segments, hints,
                                                                           channels=audio.channels))
        deadline.check()
    seconds = time.perf_counter() - started

    def write(s: Session, encounter: Encounter) -> None:
        old = s.exec(select(Transcript).where(Transcript.encounter_id == encounter.id)).first()
        notes = old.digests if old is not None else None  # made from words that are kept: checked when read
        if old is not None:
            s.execute(delete(TranscriptSegment).where(col(TranscriptSegment.transcript_id) == old.id))
            s.delete(old)
            s.flush()
        t = Transcript(encounter_id=encounter.id or 0, engine=getattr(transcriber, "name", "?"),
                       language=result.language, duration_seconds=result.duration, seconds_taken=seconds,
                       created_at=rt.clock(), digests=notes)
        s.add(t)
        s.flush()
        for seg in result.segments:
            s.add(TranscriptSegment(transcript_id=t.id or 0, idx=seg.index, start=seg.start, end=seg.end,
                                    speaker=seg.speaker.value, text=seg.text,
                                    words=[[w.start, w.end, w.text, w.probability] for w in seg.words]))

    return Output(write, made_from)


def _progress_reporter(rt: Runtime, job: Job, *, start: float) -> Callable[[float], None]:
    """Writes how much of the recording is transcribed to the job (the page shows it)."""
    def report(done: float) -> None:
        share = min(1.0, start + (1.0 - start) * done)
        with session_scope(rt.engine) as s:
            s.execute(update(Job).where(col(Job.id) == job.id, col(Job.worker_id) == job.worker_id)
                      .values(progress=round(share, 3)))
    return report
