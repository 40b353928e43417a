"""kill -9 at stage boundaries: a real worker process dies mid-pipeline; the next worker
resumes once the lease runs out. Nothing is lost, nothing is duplicated."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlmodel import select

from scribe.config import ROOT, Settings
from scribe.db.engine import session_scope
from scribe.db.tables import Draft, DraftSection, Job, Pseudonymization, Transcript
from scribe.domain.notes import EncounterStatus
from scribe.policies import load_policies
from scribe.runtime import Runtime, build_runtime
from tests.conftest import Clock, Practice, make_practice, wav_bytes
from tests.helpers import TRANSCRIPT, reload, upload

LEASE = 10


World = tuple[Runtime, Practice, dict[str, str]]


@pytest.fixture
def world(tmp_path: Path) -> World:
    policies_dir = tmp_path / "policies"
    shutil.copytree(ROOT / "policies", policies_dir)
    pipeline = policies_dir / "pipeline.yaml"
    pipeline.write_text(pipeline.read_text().replace("lease_seconds: 120", f"lease_seconds: {LEASE}"))
    settings = Settings(data_dir=tmp_path / "var", engines="fake", policies_dir=policies_dir, worker_in_process=False)
    runtime = build_runtime(settings, policies=load_policies(policies_dir))
    people = make_practice(runtime, Clock())
    env = {**os.environ, "SCRIBE_DATA_DIR": str(settings.data_dir), "SCRIBE_ENGINES": "fake",
           "SCRIBE_POLICIES_DIR": str(policies_dir)}
    return runtime, people, env


def worker(env: dict[str, str], crash_at: str | None = None) -> subprocess.CompletedProcess[str]:
    extra = {"SCRIBE_CRASH_AT": crash_at, "SCRIBE_CRASH_HARD": "1"} if crash_at else {}
    return subprocess.run([sys.executable, "-m", "scribe.cli", "worker", "--once"], env={**env, **extra},
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("point", ["start:transcribe", "before-commit:pseudonymize", "before-commit:draft",
                                   "after-commit:evidence"])
def test_a_killed_worker_loses_nothing_and_the_work_resumes(world: World, point: str) -> None:
    runtime, people, env = world
    encounter = upload(runtime, people.dr_ada, people.maya.id, wav_bytes(), transcript=TRANSCRIPT)
    died = worker(env, crash_at=point)
    assert died.returncode == 137, died.stderr[-2000:]
    if not point.startswith("after-commit"):
        assert json.loads(worker(env).stdout)["jobs_run"] == 0  # the dead worker's lease still holds
        time.sleep(LEASE + 1)
    resumed = worker(env)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert reload(runtime, encounter).status == EncounterStatus.IN_REVIEW
    with session_scope(runtime.engine) as s:
        assert len(s.exec(select(Transcript)).all()) == 1
        assert len(s.exec(select(Pseudonymization)).all()) == 1
        assert len(s.exec(select(Draft)).all()) == 1
        assert len(s.exec(select(DraftSection)).all()) == len(runtime.policies.template("soap").sections)
        assert {j.status for j in s.exec(select(Job)).all()} == {"done"}
    assert (runtime.settings.recordings_dir).exists() and any(runtime.settings.recordings_dir.glob("*.wav"))
    with runtime.engine.connect() as conn:
        assert conn.execute(text("PRAGMA integrity_check")).scalar() == "ok"


# -- S11: SIGKILL at each of 8 stage boundaries, 20 times each (160 crashes) -------------

BOUNDARIES = [f"{when}:{stage}" for stage in ("transcribe", "pseudonymize", "draft", "evidence")
              for when in ("before-commit", "after-commit")]
SESSIONS = 20


def forked_worker(runtime: Runtime, crash_at: str | None, offset: float, *, once: bool) -> int:
    """A worker in a forked child (a real process, killed for real by os._exit(137) at the
    boundary, as by SIGKILL: no cleanup runs). Its clock runs ``offset`` seconds ahead, so
    each later worker sees the earlier dead workers' leases as expired without waiting."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 1
        try:
            from datetime import UTC, datetime, timedelta

            from scribe.engines.fakes import FakeDrafter, FakeRedactor, FakeTranscriber
            from scribe.engines.protocols import Engines
            from scribe.worker import Worker

            os.environ["SCRIBE_CRASH_HARD"] = "1"
            child = build_runtime(runtime.settings, policies=runtime.policies, migrate=False,
                                  engines=Engines(FakeTranscriber(), FakeRedactor(), FakeDrafter()),
                                  clock=lambda: datetime.now(UTC) + timedelta(seconds=offset))
            worker = Worker(child, crash_at=crash_at)
            worker.run_once() if once else worker.run_until_idle()
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


@pytest.mark.parametrize("point", BOUNDARIES)
def test_twenty_kills_at_each_boundary_lose_nothing_and_duplicate_nothing(world: World, point: str) -> None:
    runtime, people, _ = world
    runtime.engine.dispose()  # no pooled connection crosses a fork
    encounters = [upload(runtime, people.dr_ada, people.maya.id, wav_bytes(), transcript=TRANSCRIPT)
                  for _ in range(SESSIONS)]
    acknowledged = {e.id or 0 for e in encounters}  # each upload answered: it must survive every crash
    offset, crashes = 0.0, 0
    while crashes < SESSIONS:
        code = forked_worker(runtime, point, offset, once=False)
        offset += LEASE + 1
        if code != 137:
            break
        crashes += 1
        if point.startswith("before-commit"):  # after a commit there is nothing to resume
            assert forked_worker(runtime, None, offset, once=True) == 0  # resume the dead worker's stage
            offset += 1
    assert forked_worker(runtime, None, offset + LEASE + 1, once=False) == 0
    assert crashes == SESSIONS
    runtime.engine.dispose()
    with session_scope(runtime.engine) as s:
        assert {reload(runtime, e).status for e in encounters} == {EncounterStatus.IN_REVIEW}
        for table in (Transcript, Pseudonymization, Draft):
            ids = [int(r.encounter_id) for r in s.exec(select(table)).all()]  # type: ignore[attr-defined]
            assert sorted(ids) == sorted(acknowledged), table.__name__  # one each
        assert {j.status for j in s.exec(select(Job)).all()} == {"done"}
    assert len(list(runtime.settings.recordings_dir.glob("*.wav"))) == SESSIONS
    with runtime.engine.connect() as conn:
        assert conn.execute(text("PRAGMA integrity_check")).scalar() == "ok"
