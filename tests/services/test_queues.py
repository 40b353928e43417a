"""The job-queue layer: output keys make a redelivered stage a no-op; a stage is dispatched by
Procrastinate only if the transaction that queued it commits; an orphaned stage is queued
again; workers take only the queues they serve. (The multi-host behaviour, kills and
partitions, is in tests/integration/test_multihost.py.)"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from scribe.config import Settings
from scribe.db.engine import session_scope
from scribe.db.tables import Draft, Encounter, Job
from scribe.domain.notes import EncounterStatus, JobStatus
from scribe.engines.protocols import Engines
from scribe.policies import Policies
from scribe.queues import ProcrastinateQueue
from scribe.runtime import Runtime, build_runtime
from scribe.services import jobs
from scribe.services.pipeline import run_job
from scribe.worker import Worker
from tests.conftest import Clock, Practice, make_practice, wav_bytes
from tests.helpers import TRANSCRIPT, reload, upload


def test_a_redelivered_stage_is_a_no_op_and_an_output_commits_once(either_db: Runtime, clock: Clock) -> None:
    rt = either_db
    people = make_practice(rt, clock)
    encounter = upload(rt, people.dr_ada, people.maya.id, wav_bytes(), transcript=TRANSCRIPT)
    Worker(rt).run_until_idle()
    assert reload(rt, encounter).status == EncounterStatus.IN_REVIEW
    with session_scope(rt.engine) as s:
        done = s.exec(select(Job).where(Job.kind == "draft")).one()
        draft_id = s.exec(select(Draft)).one().id
    # The queue delivers the finished stage again (at-least-once): nothing runs, nothing changes.
    assert jobs.start(rt.engine, rt.audit_key, done.id or 0, worker_id="late", now=clock()) is None
    with session_scope(rt.engine) as s:
        assert s.exec(select(Draft)).one().id == draft_id
        assert s.get_one(Job, done.id).worker_id == done.worker_id
    # And the database itself refuses a second commit of the same output.
    with pytest.raises(IntegrityError), session_scope(rt.engine) as s:
        s.add(Job(encounter_id=encounter.id or 0, kind="draft", status=JobStatus.DONE, output_key=done.output_key,
                  run_after=clock(), created_at=clock(), updated_at=clock()))
    assert done.output_key and done.output_key.startswith(f"{encounter.id}:draft:")


def test_the_output_key_is_the_hash_of_what_the_stage_read(
    runtime: Runtime, practice: Practice, wav: bytes, clock: Clock
) -> None:
    """Two sessions of the same audio with different transcripts (the fake transcriber reads
    them beside the audio): the same transcription input, then different inputs downstream."""
    first = upload(runtime, practice.dr_ada, practice.maya.id, wav, transcript=TRANSCRIPT)
    second = upload(runtime, practice.dr_ada, practice.maya.id, wav, transcript=TRANSCRIPT + "\nClient: One more line.")
    Worker(runtime).run_until_idle()
    with session_scope(runtime.engine) as s:
        keys = {(j.encounter_id, j.kind): (j.output_key or "").split(":", 2)[2] for j in s.exec(select(Job)).all()}
    one, two = first.id or 0, second.id or 0
    assert keys[(one, "transcribe")] == keys[(two, "transcribe")]  # the same recording
    assert keys[(one, "pseudonymize")] != keys[(two, "pseudonymize")]
    assert keys[(one, "draft")] != keys[(two, "draft")]


def test_a_stage_whose_attempts_are_spent_fails_its_session_when_delivered_again(runtime: Runtime, practice: Practice, wav: bytes,
                                                                                 clock: Clock) -> None:
    encounter = upload(runtime, practice.dr_ada, practice.maya.id, wav, transcript=TRANSCRIPT)
    with session_scope(runtime.engine) as s:
        job = s.exec(select(Job)).one()
        job_id = job.id or 0
    for attempt in range(runtime.policies.pipeline.max_attempts):  # each worker dies mid-stage
        assert jobs.start(runtime.engine, runtime.audit_key, job_id, worker_id=f"w{attempt}", now=clock()) is not None
    assert jobs.start(runtime.engine, runtime.audit_key, job_id, worker_id="next", now=clock()) is None
    after = reload(runtime, encounter)
    assert after.status == EncounterStatus.FAILED and "stopped" in after.status_reason
    with session_scope(runtime.engine) as s:
        assert s.get_one(Job, job_id).status == JobStatus.FAILED


def test_a_worker_takes_only_the_queues_it_serves(runtime: Runtime, practice: Practice, wav: bytes) -> None:
    encounter = upload(runtime, practice.dr_ada, practice.maya.id, wav, transcript=TRANSCRIPT)
    cpu = Worker(runtime, kinds=("pseudonymize", "evidence"))
    gpu = Worker(runtime, kinds=("transcribe", "draft"))
    assert cpu.run_until_idle() == 0  # nothing of its kinds yet
    assert gpu.run_until_idle() == 1  # transcribed
    assert cpu.run_until_idle() == 1  # redacted
    assert gpu.run_until_idle() == 1  # drafted
    assert cpu.run_until_idle() == 1  # checked
    assert reload(runtime, encounter).status == EncounterStatus.IN_REVIEW


def test_the_worker_command_refuses_an_unknown_queue(tmp_path: Path) -> None:
    env = {**os.environ, "SCRIBE_DATA_DIR": str(tmp_path / "var"), "SCRIBE_ENGINES": "fake"}
    done = subprocess.run([sys.executable, "-m", "scribe.cli", "worker", "--queues", "transcribe,gpu"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "unknown queue" in done.stderr and "gpu" in done.stderr


def test_keys_are_refused_inside_the_shared_storage(tmp_path: Path) -> None:
    storage = tmp_path / "shared"
    settings = Settings(data_dir=tmp_path / "var", storage_dir=storage, key_dir=storage / "keys")
    assert any("shared storage" in p for p in settings.key_placement_problems())
    assert Settings(data_dir=tmp_path / "var", storage_dir=storage, key_dir=tmp_path / "keys").key_placement_problems() == []


# -- Procrastinate, on PostgreSQL --------------------------------------------------------------

@pytest.fixture
def pq_runtime(settings: Settings, policies: Policies, engines: Engines, clock: Clock, pg_url: str) -> Iterator[Runtime]:
    settings = settings.model_copy(update={"database_url": pg_url, "queue_engine": "procrastinate"})
    rt = build_runtime(settings, policies=policies, engines=engines, clock=clock)
    yield rt
    rt.engine.dispose()


def queued(engine: Engine) -> list[tuple[str, int, str]]:
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT queue_name, (args->>'job_id')::int, lock FROM procrastinate_jobs "
                                 "WHERE status = 'todo' ORDER BY id")).all()
    return [tuple(r) for r in rows]


def test_a_stage_is_dispatched_with_the_transaction_that_queued_it(pq_runtime: Runtime, clock: Clock) -> None:
    rt = pq_runtime
    people = make_practice(rt, clock)
    encounter = upload(rt, people.dr_ada, people.maya.id, wav_bytes(), transcript=TRANSCRIPT)
    with session_scope(rt.engine) as s:
        job = s.exec(select(Job)).one()
    assert queued(rt.engine) == [("transcribe", job.id, f"session:{encounter.id}")]
    # A transaction that queues a stage and rolls back dispatches nothing.
    with pytest.raises(RuntimeError), session_scope(rt.engine) as s:
        s.add(Job(encounter_id=encounter.id or 0, kind="draft", status=JobStatus.QUEUED, run_after=clock(),
                  created_at=clock(), updated_at=clock()))
        s.flush()
        raise RuntimeError("the request failed")
    assert len(queued(rt.engine)) == 1
    # The stage run by hand (as a worker would) queues the next one in its commit.
    started = jobs.start(rt.engine, rt.audit_key, job.id or 0, worker_id="w1", now=clock())
    assert started is not None
    run_job(rt, started)
    with rt.engine.begin() as conn:
        conn.execute(text("DELETE FROM procrastinate_jobs WHERE (args->>'job_id')::int = :j"), {"j": job.id})
    with session_scope(rt.engine) as s:
        following = s.exec(select(Job).where(Job.kind == "pseudonymize")).one()
    assert queued(rt.engine) == [("pseudonymize", following.id, f"session:{encounter.id}")]


def test_a_queued_stage_with_no_queue_entry_is_queued_again(pq_runtime: Runtime, clock: Clock) -> None:
    rt = pq_runtime
    people = make_practice(rt, clock)
    upload(rt, people.dr_ada, people.maya.id, wav_bytes(), transcript=TRANSCRIPT)
    queue = rt.queue
    assert isinstance(queue, ProcrastinateQueue)
    assert queue.reconcile(rt.engine, clock() + timedelta(minutes=5)) == 0  # it has one
    with rt.engine.begin() as conn:
        conn.execute(text("DELETE FROM procrastinate_jobs"))
    assert queue.reconcile(rt.engine, clock()) == 0  # within the grace period: it may be committing
    assert queue.reconcile(rt.engine, clock() + timedelta(minutes=5)) == 1
    assert len(queued(rt.engine)) == 1
    assert queue.reconcile(rt.engine, clock() + timedelta(minutes=5)) == 0


def test_the_procrastinate_worker_runs_a_session_to_the_review_queue(pq_runtime: Runtime, clock: Clock) -> None:
    import threading

    rt = pq_runtime
    people = make_practice(rt, clock)
    encounter = upload(rt, people.dr_ada, people.maya.id, wav_bytes(), transcript=TRANSCRIPT)
    assert rt.queue is not None
    ran = 0
    for _ in range(4):  # each stage queues the next as it commits
        ran += rt.queue.run_worker(rt, queues=["transcribe", "pseudonymize", "draft", "evidence"],
                                   stop=threading.Event(), once=True)
    assert ran == 4
    assert reload(rt, encounter).status == EncounterStatus.IN_REVIEW
    with session_scope(rt.engine) as s:
        assert s.get_one(Encounter, encounter.id).status == EncounterStatus.IN_REVIEW
        assert {j.status for j in s.exec(select(Job)).all()} == {JobStatus.DONE}
