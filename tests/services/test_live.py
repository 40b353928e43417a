"""Live transcription: a browser recording is transcribed while it is made, window by window;
what is committed never changes; when it stops only the rest is transcribed; consent is
checked for every window; a crash resumes from the last committed window."""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pytest
from sqlmodel import select

from scribe.db.engine import session_scope
from scribe.db.tables import Encounter, Job, Transcript, TranscriptSegment
from scribe.domain.notes import EncounterStatus, JobKind, JobStatus
from scribe.domain.transcript import Segment, TranscriptResult, Word
from scribe.engines.protocols import Audio, Deadline, Engines
from scribe.runtime import Runtime
from scribe.services import live, recording
from scribe.services.pipeline import load_segments
from tests.conftest import Clock, Practice
from tests.helpers import reload, run_pipeline

PIECE = 2.0


def webm_pieces(seconds: float, piece: float = PIECE) -> list[bytes]:
    """A WebM/Opus recording (as MediaRecorder makes) cut into pieces of about ``piece`` seconds
    of audio each, at arbitrary byte boundaries, as the recorder sends them."""
    import av

    rate = 48000
    t = np.arange(int(seconds * rate)) / rate
    # a voice-like tone that pauses for half a second every four seconds
    signal = (0.3 * np.sin(2 * np.pi * 220 * t) * ((t % 4.0) < 3.5)).astype(np.float32)
    out = io.BytesIO()
    with av.open(out, "w", format="webm") as container:
        stream = container.add_stream("libopus", rate=rate)
        stream.layout = "mono"
        stream.bit_rate = 32000
        for i in range(0, len(signal), 960):
            frame = av.AudioFrame.from_ndarray(signal[i:i + 960].reshape(1, -1), format="flt", layout="mono")
            frame.rate = rate
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    data = out.getvalue()
    n = max(1, round(seconds / piece))
    size = -(-len(data) // n)
    return [data[i:i + size] for i in range(0, len(data), size)]


@dataclass
class TimedTranscriber:
    """Says what time it is: one segment per four seconds of the audio it is given, named by
    the recording's own time (the window's offset plus its position in the window)."""

    name: str = "timed-transcriber"
    calls: list[tuple[float, float]] = field(default_factory=list)

    def transcribe(self, audio: Audio, deadline: Deadline | None = None, *, context: str = "",
                   progress: Callable[[float], None] | None = None) -> TranscriptResult:
        self.calls.append((audio.offset, audio.seconds))
        segments: list[Segment] = []
        t = 0.0
        while t + 3.5 <= audio.seconds:
            segments.append(self.segment(len(segments), t, round(audio.offset + t)))
            t += 4.0
        return TranscriptResult(tuple(segments), audio.seconds)

    def segment(self, index: int, t: float, at: int) -> Segment:
        """The segment ``t`` seconds into the window, ``at`` seconds into the recording."""
        return Segment(index, t, t + 3.5, f"said at {at}",
                       words=(Word(t, t + 1.5, "said"), Word(t + 1.6, t + 3.5, f"at {at}")))


@pytest.fixture
def timed(runtime: Runtime, engines: Engines) -> TimedTranscriber:
    transcriber = TimedTranscriber()
    runtime.engines = Engines(transcriber, engines.redactor, engines.drafter, engines.voices)
    return transcriber


def start(runtime: Runtime, practice: Practice, clock: Clock) -> Encounter:
    with session_scope(runtime.engine) as s:
        return recording.start(s, runtime.audit_key, runtime.policies, actor=practice.dr_ada,
                               client_id=practice.maya.id or 0, note_type="soap", now=clock())


def send(runtime: Runtime, practice: Practice, clock: Clock, encounter: Encounter, pieces: Sequence[bytes],
         first: int = 0) -> None:
    for seq, piece in enumerate(pieces, start=first):
        with session_scope(runtime.engine) as s:
            recording.add_chunk(s, runtime.policies, actor=practice.dr_ada, encounter_id=encounter.id or 0, seq=seq,
                                data=piece, recordings_dir=runtime.settings.recordings_dir, now=clock())
        clock.advance(seconds=PIECE)


def committed(runtime: Runtime, encounter: Encounter) -> list[tuple[int, float, str]]:
    with session_scope(runtime.engine) as s:
        return [(x.index, round(x.start, 2), x.text) for x in load_segments(s, encounter.id or 0)]


def claimed_live_job(runtime: Runtime, encounter: Encounter) -> Job:
    """The session's live job, as a worker called "me" holds it."""
    with session_scope(runtime.engine) as s:
        job = s.exec(select(Job).where(Job.encounter_id == encounter.id, Job.kind == JobKind.LIVE)).one()
        job.status, job.worker_id = JobStatus.RUNNING, "me"
        s.add(job)
    with session_scope(runtime.engine) as s:
        return s.exec(select(Job).where(Job.encounter_id == encounter.id, Job.kind == JobKind.LIVE)).one()


def live_until(runtime: Runtime, encounter: Encounter) -> float:
    with session_scope(runtime.engine) as s:
        t = s.exec(select(Transcript).where(Transcript.encounter_id == encounter.id)).first()
        return t.live_until if t else 0.0


def test_a_recording_is_transcribed_as_it_is_made_and_only_the_rest_at_the_end(runtime: Runtime, practice: Practice, clock: Clock,
                                                                              timed: TimedTranscriber) -> None:
    pieces = webm_pieces(90.0)
    encounter = start(runtime, practice, clock)
    send(runtime, practice, clock, encounter, pieces[:25])  # 50 s in
    run_pipeline(runtime)
    first = committed(runtime, encounter)
    assert first and live_until(runtime, encounter) >= 25.0
    assert reload(runtime, encounter).status == EncounterStatus.RECORDING  # live work leaves the status alone
    # every committed segment is where the recording says it is, once, in order
    assert [int(t.split()[-1]) for _, _, t in first] == [round(s) for _, s, _ in first]
    send(runtime, practice, clock, encounter, pieces[25:], first=25)
    run_pipeline(runtime)
    second = committed(runtime, encounter)
    assert second[:len(first)] == first and len(second) > len(first)  # what was shown never changes
    until = live_until(runtime, encounter)
    windows = len(timed.calls)
    with session_scope(runtime.engine) as s:
        recording.finish(s, runtime.audit_key, runtime.policies, actor=practice.dr_ada, encounter_id=encounter.id or 0,
                         recordings_dir=runtime.settings.recordings_dir, decoder=runtime.decoder, now=clock())
    run_pipeline(runtime)
    assert reload(runtime, encounter).status == EncounterStatus.IN_REVIEW
    tail_offset, tail_seconds = timed.calls[windows]
    assert tail_offset == pytest.approx(until) and tail_seconds < 90.0 - 40  # only the rest
    final = committed(runtime, encounter)
    assert [t for _, _, t in final][:len(second)] == [t for _, _, t in second]
    starts = [s for _, s, _ in final]
    assert starts == sorted(starts) and len({t for _, _, t in final}) == len(final)  # no window twice
    assert final[-1][1] > 80.0  # the end of the recording is in


def test_live_windows_stop_at_a_withdrawal_and_what_was_made_is_purged(
    runtime: Runtime, practice: Practice, clock: Clock, timed: TimedTranscriber
) -> None:
    from scribe.services import purge
    from tests.helpers import media

    encounter = start(runtime, practice, clock)
    send(runtime, practice, clock, encounter, webm_pieces(50.0))
    run_pipeline(runtime)
    assert committed(runtime, encounter)
    with session_scope(runtime.engine) as s:
        purge.withdraw(s, runtime.audit_key, runtime.policies, actor=practice.dr_ada, client_id=practice.maya.id or 0,
                         function="transcribe", tools=media(runtime), now=clock())
    calls = len(timed.calls)
    run_pipeline(runtime)
    assert len(timed.calls) == calls  # nothing more is transcribed
    assert committed(runtime, encounter) == []  # on_withdrawal: transcribe purges the transcript
    assert reload(runtime, encounter).status == EncounterStatus.STOPPED
    with session_scope(runtime.engine) as s:
        job = s.exec(select(Job).where(Job.encounter_id == encounter.id, Job.kind == JobKind.LIVE)).one()
        assert job.status == JobStatus.STOPPED


def test_a_window_committed_after_the_recording_ended_or_by_a_worker_that_lost_it_is_refused(
        runtime: Runtime, practice: Practice, clock: Clock, timed: TimedTranscriber) -> None:
    from scribe.services.jobs import LeaseLost

    encounter = start(runtime, practice, clock)
    send(runtime, practice, clock, encounter, webm_pieces(30.0))
    clock.advance(seconds=30)
    job = claimed_live_job(runtime, encounter)
    window = live.Window((Segment(0, 0.0, 3.0, "late", words=(Word(0.0, 3.0, "late"),)),), 3.0, {})
    stale = job.model_copy(update={"worker_id": "someone-else"})
    with pytest.raises(LeaseLost):
        live._commit(runtime, stale, window, "timed-transcriber", known=0, seconds=1.0)
    with session_scope(runtime.engine) as s:
        recording.finish(s, runtime.audit_key, runtime.policies, actor=practice.dr_ada, encounter_id=encounter.id or 0,
                         recordings_dir=runtime.settings.recordings_dir, decoder=runtime.decoder, now=clock())
    live._commit(runtime, job, window, "timed-transcriber", known=0, seconds=1.0)  # the recording ended
    with session_scope(runtime.engine) as s:
        assert s.exec(select(TranscriptSegment)).all() == []


def test_a_crash_mid_window_resumes_from_the_last_committed_window(
    runtime: Runtime, practice: Practice, clock: Clock, timed: TimedTranscriber, monkeypatch: pytest.MonkeyPatch
) -> None:
    encounter = start(runtime, practice, clock)
    pieces = webm_pieces(70.0)
    send(runtime, practice, clock, encounter, pieces[:15])
    run_pipeline(runtime)
    before = committed(runtime, encounter)
    assert before
    send(runtime, practice, clock, encounter, pieces[15:], first=15)
    real_commit = live._commit
    monkeypatch.setattr(live, "_commit", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("killed")))
    run_pipeline(runtime)  # the window is transcribed, then the worker "dies" before its commit
    assert committed(runtime, encounter) == before
    monkeypatch.setattr(live, "_commit", real_commit)
    with session_scope(runtime.engine) as s:  # the next piece queues it again
        job = s.exec(select(Job).where(Job.encounter_id == encounter.id, Job.kind == JobKind.LIVE)).one()
        job.status, job.run_after = JobStatus.QUEUED, clock()
        s.add(job)
    run_pipeline(runtime)
    after = committed(runtime, encounter)
    assert after[:len(before)] == before and len(after) > len(before)
    assert [t for _, _, t in after] == sorted({t for _, _, t in after}, key=lambda t: int(t.split()[-1]))


def must(cut: tuple[tuple[Segment, ...], float] | None) -> tuple[tuple[Segment, ...], float]:
    assert cut is not None
    return cut


def test_the_cut_keeps_a_segment_still_being_spoken_for_the_next_window() -> None:
    segs = (Segment(0, 10.0, 14.0, "a"), Segment(1, 15.0, 19.5, "b"), Segment(2, 20.0, 29.5, "c"))
    kept, until = must(live.cut(segs, until=10.0, end=30.0))
    assert [x.text for x in kept] == ["a", "b"] and until == 19.5
    assert live.cut((), until=10.0, end=30.0) == ((), 28.0)  # silence: committed as such
    assert live.cut((Segment(0, 12.0, 29.9, "long"),), until=10.0, end=30.0) is None  # wait for a pause
    kept, until = must(live.cut((Segment(0, 12.0, 109.9, "long"),), until=10.0, end=110.0))
    assert [x.text for x in kept] == ["long"]  # no pause in ninety seconds: committed anyway
