"""Live transcription under concurrency, on SQLite and PostgreSQL: windows committed at once by
threads and by processes, and a window committed while the clinician presses Stop.

What must hold: a session's transcript is one window's work or another's, never two windows of
the same span side by side or interleaved; a window committed after the recording ended is
refused; whichever way a commit and a finish interleave, the transcribe stage that follows
starts exactly where the committed live transcript ends, and the final transcript has every
span once, in order."""

from __future__ import annotations

import multiprocessing
import threading
import time
from collections.abc import Callable
from multiprocessing.synchronize import Event
from pathlib import Path

from sqlmodel import select

from scribe.config import ROOT, Settings
from scribe.db.engine import session_scope
from scribe.db.tables import Encounter, Job, Transcript
from scribe.domain.notes import EncounterStatus, JobKind, JobStatus
from scribe.domain.transcript import Segment, Word
from scribe.engines.protocols import Engines
from scribe.runtime import Runtime, build_runtime
from scribe.services import live, recording
from tests.conftest import Clock, Practice, make_practice
from tests.helpers import reload, run_pipeline
from tests.services.test_live import TimedTranscriber, committed, send, start, webm_pieces


def window(tag: str, until: float, since: float = 0.0) -> live.Window:
    """A window that says which run made it, in the timed transcriber's shape."""
    segments: list[Segment] = []
    t = since
    while t + 3.5 <= until:
        segments.append(Segment(len(segments), t, t + 3.5, f"{tag} said at {round(t)}",
                                words=(Word(t, t + 1.5, tag), Word(t + 1.6, t + 3.5, f"at {round(t)}"))))
        t += 4.0
    return live.Window(tuple(segments), until, {})


def running_live_job(rt: Runtime, encounter_id: int) -> Job:
    with session_scope(rt.engine) as s:
        job = s.exec(select(Job).where(Job.encounter_id == encounter_id, Job.kind == JobKind.LIVE)).one()
        job.status, job.worker_id = JobStatus.RUNNING, "live-worker"
        s.add(job)
    with session_scope(rt.engine) as s:
        return s.exec(select(Job).where(Job.id == job.id)).one()


def recording_with_a_live_job(rt: Runtime, people: Practice, clock: Clock) -> tuple[Encounter, Job]:
    encounter = start(rt, people, clock)
    send(rt, people, clock, encounter, webm_pieces(30.0))
    return encounter, running_live_job(rt, encounter.id or 0)


def live_until(rt: Runtime, encounter_id: int | None) -> float:
    with session_scope(rt.engine) as s:
        t = s.exec(select(Transcript).where(Transcript.encounter_id == encounter_id)).first()
        return t.live_until if t and t.live_until else 0.0


def run_together(*calls: Callable[[], object]) -> list[BaseException]:
    """Start every call at the same moment on its own thread; what each raised."""
    barrier = threading.Barrier(len(calls))
    errors: list[BaseException] = []

    def go(call: Callable[[], object]) -> None:
        barrier.wait()
        try:
            call()
        except BaseException as exc:  # collected and asserted on by the caller
            errors.append(exc)

    threads = [threading.Thread(target=go, args=(c,)) for c in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return errors


def one_window_only(rt: Runtime, encounter: Encounter, tags: list[str]) -> str:
    """The transcript is exactly one of the windows, whole; returns which."""
    texts = [t for _, _, t in committed(rt, encounter)]
    owners = {t.split()[0] for t in texts}
    assert len(owners) == 1 and owners <= set(tags), texts
    tag = owners.pop()
    assert texts == [s.text for s in window(tag, 12.0).segments]
    assert live_until(rt, encounter.id) == 12.0
    return tag


def test_four_threads_committing_the_same_window_leave_one_window(either_db: Runtime, clock: Clock) -> None:
    rt = either_db
    people = make_practice(rt, clock)
    for _ in range(3):  # a few sessions, a few interleavings
        encounter, job = recording_with_a_live_job(rt, people, clock)
        tags = [f"run{i}" for i in range(4)]
        errors = run_together(*[
            (lambda tag=tag, job=job: live._commit(rt, job, window(tag, 12.0), "timed-transcriber", known=0, seconds=1.0))
            for tag in tags])
        assert errors == []
        one_window_only(rt, encounter, tags)
        # the next window goes on from there, once
        errors = run_together(*[
            (lambda tag=tag, job=job: live._commit(rt, job, window(tag, 20.0, since=12.0), "timed-transcriber",
                                                   known=3, seconds=1.0))
            for tag in ("next0", "next1")])
        assert errors == []
        texts = [t for _, _, t in committed(rt, encounter)]
        assert len(texts) == 5 and len({t.split()[0] for t in texts[3:]}) == 1, texts


def commit_in_a_process(data_dir: str, url: str, job_id: int, tag: str, ready: Event, go: Event) -> None:
    from scribe.policies import load_policies

    settings = Settings(data_dir=Path(data_dir), database_url=url or None, engines="fake", model_profile="test",
                        worker_in_process=False)
    rt = build_runtime(settings, policies=load_policies(ROOT / "policies"), migrate=False)
    with session_scope(rt.engine) as s:
        job = s.exec(select(Job).where(Job.id == job_id)).one()
    ready.set()
    go.wait(60)
    live._commit(rt, job, window(tag, 12.0), "timed-transcriber", known=0, seconds=1.0)
    rt.engine.dispose()


def test_two_processes_committing_the_same_window_leave_one_window(either_db: Runtime, clock: Clock) -> None:
    rt = either_db
    people = make_practice(rt, clock)
    encounter, job = recording_with_a_live_job(rt, people, clock)
    ctx = multiprocessing.get_context("spawn")
    go = ctx.Event()
    readies, procs = [], []
    for tag in ("procA", "procB"):
        ready = ctx.Event()
        p = ctx.Process(target=commit_in_a_process,
                        args=(str(rt.settings.data_dir), rt.settings.database_url or "", job.id, tag, ready, go))
        p.start()
        readies.append(ready)
        procs.append(p)
    for ready in readies:
        assert ready.wait(120)
    go.set()
    for p in procs:
        p.join(timeout=120)
        assert p.exitcode == 0
    one_window_only(rt, encounter, ["procA", "procB"])


def test_a_window_committed_as_the_recording_stops_is_whole_or_refused_and_the_tail_starts_where_it_ends(
        either_db: Runtime, clock: Clock) -> None:
    rt = either_db
    people = make_practice(rt, clock)
    timed = TimedTranscriber()
    base = rt.engines
    assert base is not None
    rt.engines = Engines(timed, base.redactor, base.drafter, base.voices)
    outcomes = set()
    for delay in (0.0, 0.0, 0.02, 1.5):  # at once, twice; then the commit a little and well after the stop
        encounter, job = recording_with_a_live_job(rt, people, clock)

        def stop(encounter_id: int = encounter.id or 0) -> None:
            with session_scope(rt.engine) as s:
                recording.finish(s, rt.audit_key, rt.policies, actor=people.dr_ada, encounter_id=encounter_id,
                                 recordings_dir=rt.settings.recordings_dir, decoder=rt.decoder, now=clock())

        def commit(job: Job = job, delay: float = delay) -> None:
            time.sleep(delay)
            live._commit(rt, job, window("said", 12.0), "timed-transcriber", known=0, seconds=1.0)

        errors = run_together(stop, commit)
        assert errors == []
        assert reload(rt, encounter).status != EncounterStatus.RECORDING
        until = live_until(rt, encounter.id)
        kept = committed(rt, encounter)
        assert (until, len(kept)) in ((0.0, 0), (12.0, 3))  # the whole window, or none of it
        outcomes.add(until)
        with session_scope(rt.engine) as s:  # the live job is over either way
            s.exec(select(Job).where(Job.id == job.id)).one().status = JobStatus.DONE
        calls = len(timed.calls)
        run_pipeline(rt)
        assert reload(rt, encounter).status == EncounterStatus.IN_REVIEW
        tail_offset = timed.calls[calls][0]
        assert abs(tail_offset - until) < 0.05  # the tail starts exactly where the live transcript ends
        final = committed(rt, encounter)
        assert final[:len(kept)] == kept
        starts = [s for _, s, _ in final]
        assert starts == sorted(starts) and len(set(starts)) == len(starts)  # every span once, in order
        assert final[-1][1] > 20.0
    print("outcomes (live_until after the race):", sorted(outcomes))
    assert outcomes == {0.0, 12.0}  # both ways were taken: kept whole, and refused
