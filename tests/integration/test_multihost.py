"""Many hosts on one PostgreSQL: workers are separate processes, each in its own network
namespace (loopback and one veth, no route anywhere else), reaching only the database
(Procrastinate's broker is that database) through a forwarder on the host side of its veth.
A kill is a real SIGKILL; a partition is the veth taken down.

What must hold: every stage's output is committed exactly once (its output key is unique),
a stage another host takes over is never also committed by the host that lost it, and every
upload reaches the review queue."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlmodel import select

from scribe.config import ROOT, Settings
from scribe.db.engine import session_scope
from scribe.db.tables import Draft, DraftSection, Encounter, Job, Pseudonymization, Recording, Transcript
from scribe.domain.notes import EncounterStatus
from scribe.policies import load_policies
from scribe.runtime import Runtime, build_runtime
from tests.conftest import Clock, make_practice, wav_bytes
from tests.helpers import TRANSCRIPT, upload

pytestmark = [pytest.mark.slow, pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root")]

HEARTBEAT, STALLED = 1.0, 4.0


def sh(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True, timeout=30)


@dataclass
class Host:
    """A worker host: a network namespace with a veth to the database's forwarder."""

    ns: str
    index: int
    forwarder: subprocess.Popen[bytes] | None = None
    worker: subprocess.Popen[str] | None = None
    log: Path | None = None

    @property
    def gateway(self) -> str:
        return f"10.77.{self.index}.1"

    def up(self) -> None:
        veth, peer = f"sv{self.ns[-6:]}h", f"sv{self.ns[-6:]}n"
        sh("ip", "netns", "add", self.ns)
        sh("ip", "link", "add", veth, "type", "veth", "peer", "name", peer)
        sh("ip", "link", "set", peer, "netns", self.ns)
        sh("ip", "addr", "add", f"{self.gateway}/30", "dev", veth)
        sh("ip", "link", "set", veth, "up")
        sh("ip", "netns", "exec", self.ns, "ip", "addr", "add", f"10.77.{self.index}.2/30", "dev", peer)
        sh("ip", "netns", "exec", self.ns, "ip", "link", "set", peer, "up")
        sh("ip", "netns", "exec", self.ns, "ip", "link", "set", "lo", "up")
        self.veth = veth
        # The database, as this host sees it: the gateway's 5432, forwarded to the real server.
        self.forwarder = subprocess.Popen(
            ["socat", f"TCP-LISTEN:5432,bind={self.gateway},fork,reuseaddr", "TCP:127.0.0.1:5432"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.2)

    def partition(self, cut: bool) -> None:
        sh("ip", "link", "set", self.veth, "down" if cut else "up")

    def start(self, env: dict[str, str], *, queues: str = "", crash_at: str | None = None) -> None:
        assert self.log is not None
        extra = {"SCRIBE_CRASH_AT": crash_at, "SCRIBE_CRASH_HARD": "1"} if crash_at else {}
        env = {**env, **extra, "SCRIBE_DATABASE_URL": env["SCRIBE_DATABASE_URL"].replace("127.0.0.1", self.gateway),
               "SCRIBE_DATA_DIR": env["SCRIBE_DATA_DIR"] + f"-{self.ns}"}  # the host's own disk
        argv = ["ip", "netns", "exec", self.ns, sys.executable, "-m", "scribe.cli", "worker"]
        with self.log.open("a") as out:  # the worker writes to its own copy of the descriptor
            self.worker = subprocess.Popen(argv + (["--queues", queues] if queues else []), env=env,
                                           stdout=out, stderr=subprocess.STDOUT, text=True)

    @property
    def worker_id_prefix(self) -> str:
        assert self.worker is not None
        return f":{self.worker.pid}:"  # ip netns exec execs the worker: the pid is its own

    def kill(self) -> None:
        if self.worker is not None and self.worker.poll() is None:
            self.worker.send_signal(signal.SIGKILL)
            self.worker.wait(timeout=10)

    def down(self) -> None:
        if self.worker is not None and self.worker.poll() is None:
            self.worker.terminate()
            try:
                self.worker.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()
        if self.forwarder is not None:
            self.forwarder.kill()
            self.forwarder.wait(timeout=10)
        subprocess.run(["ip", "netns", "del", self.ns], capture_output=True, timeout=30)
        subprocess.run(["ip", "link", "del", getattr(self, "veth", "none")], capture_output=True, timeout=30)


@dataclass
class Cluster:
    runtime: Runtime
    env: dict[str, str]
    clock: Clock  # the runtime's, as the test drives it
    hosts: list[Host] = field(default_factory=list)

    def host(self, tmp: Path) -> Host:
        index = len(self.hosts) + 1
        h = Host(ns=f"scr{uuid.uuid4().hex[:6]}", index=index, log=tmp / f"host{index}.log")
        h.up()
        self.hosts.append(h)
        return h

    def wait_for(self, what: Callable[[], bool], *, timeout: float, message: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if what():
                return
            time.sleep(0.2)
        logs = "\n".join(h.log.read_text()[-1500:] for h in self.hosts if h.log and h.log.exists())
        raise AssertionError(f"{message} (after {timeout}s)\n{logs}")

    def errors(self, *, besides: tuple[Host, ...] = ()) -> list[str]:
        """Error lines the workers logged (a cut-off host may log its lost connection)."""
        return [line for h in self.hosts if h not in besides and h.log and h.log.exists()
                for line in h.log.read_text().splitlines() if " ERROR " in line or "Traceback" in line]

    def running(self, kind: str, host: Host) -> bool:
        with session_scope(self.runtime.engine) as s:
            job = s.exec(select(Job).where(Job.kind == kind, Job.status == "running")).first()
            return job is not None and host.worker_id_prefix in job.worker_id

    def statuses(self) -> dict[int, str]:
        with session_scope(self.runtime.engine) as s:
            return {e.id or 0: e.status for e in s.exec(select(Encounter)).all()}


@pytest.fixture
def cluster(pg_url: str, tmp_path: Path) -> Iterator[Cluster]:
    if shutil.which("socat") is None:
        pytest.fail("socat is needed for the multi-host tests (apt-get install socat)")
    policies_dir = tmp_path / "policies"
    shutil.copytree(ROOT / "policies", policies_dir)
    storage = tmp_path / "shared-storage"  # one shared filesystem, mounted on every host
    keys = tmp_path / "served-keys"  # served to each host by the deployment, apart from the data
    settings = Settings(data_dir=tmp_path / "web-host", database_url=pg_url, engines="fake",
                        policies_dir=policies_dir, worker_in_process=False, queue_engine="procrastinate",
                        storage_dir=storage, key_dir=keys, anchor_dir=tmp_path / "anchors",
                        queue_heartbeat_seconds=HEARTBEAT, queue_stalled_seconds=STALLED)
    clock = Clock()
    runtime = build_runtime(settings, policies=load_policies(policies_dir), clock=clock)
    env = {**os.environ, "SCRIBE_DATABASE_URL": pg_url, "SCRIBE_ENGINES": "fake", "SCRIBE_QUEUE_ENGINE": "procrastinate",
           "SCRIBE_DATA_DIR": str(tmp_path / "worker"), "SCRIBE_STORAGE_DIR": str(storage), "SCRIBE_KEY_DIR": str(keys),
           "SCRIBE_ANCHOR_DIR": str(tmp_path / "anchors"), "SCRIBE_POLICIES_DIR": str(policies_dir),
           "SCRIBE_QUEUE_HEARTBEAT_SECONDS": str(HEARTBEAT), "SCRIBE_QUEUE_STALLED_SECONDS": str(STALLED),
           "PYTHONPATH": str(ROOT)}
    c = Cluster(runtime, env, clock)
    try:
        yield c
    finally:
        for h in c.hosts:
            h.down()
        runtime.engine.dispose()


def exactly_once(runtime: Runtime, encounters: list[int]) -> None:
    """One transcript, pseudonymized copy and draft per session; every stage done once, with a
    distinct output key; every recording in the shared storage."""
    with session_scope(runtime.engine) as s:
        for model in (Transcript, Pseudonymization, Draft):
            ids = [row.encounter_id for row in s.exec(select(model)).all()]  # type: ignore[attr-defined]
            assert sorted(ids) == sorted(encounters), model.__name__
        sections = len(runtime.policies.template("soap").sections)
        assert len(s.exec(select(DraftSection)).all()) == sections * len(encounters)
        jobs = s.exec(select(Job)).all()
        assert {j.status for j in jobs} == {"done"}
        assert len(jobs) == 4 * len(encounters)
        keys = [j.output_key for j in jobs]
        assert None not in keys and len(set(keys)) == len(keys)
        for rec in s.exec(select(Recording)).all():
            assert (runtime.settings.recordings_dir / rec.path).is_file()
    with runtime.engine.connect() as conn:
        left = conn.execute(text("SELECT count(*) FROM procrastinate_jobs WHERE status IN ('todo', 'doing')")).scalar()
    assert left == 0


@pytest.mark.parametrize("when", ["mid-transcription", "mid-draft", "mid-commit"])
def test_a_host_killed_mid_stage_is_taken_over_and_the_stage_lands_once(cluster: Cluster, tmp_path: Path,
                                                                         when: str) -> None:
    rt = cluster.runtime
    people = make_practice(rt, cluster.clock)
    encounter = upload(rt, people.dr_ada, people.maya.id, wav_bytes(), transcript=TRANSCRIPT)
    a, b = cluster.host(tmp_path), cluster.host(tmp_path)
    env = {**cluster.env, "SCRIBE_FAKE_COST_SECONDS": "3"}
    kind = {"mid-transcription": "transcribe", "mid-draft": "draft", "mid-commit": "draft"}[when]
    if when == "mid-commit":
        a.start(env, crash_at="in-commit:draft")  # dies with the draft written, not yet committed
        cluster.wait_for(lambda: a.worker is not None and a.worker.poll() is not None, timeout=90,
                         message="host A never reached the draft's commit")
        assert a.worker is not None and a.worker.returncode == 137
    else:
        a.start(env)
        cluster.wait_for(lambda: cluster.running(kind, a), timeout=90, message=f"host A never ran {kind}")
        time.sleep(1)
        a.kill()
    with session_scope(rt.engine) as s:
        assert s.exec(select(Draft)).first() is None  # A committed no draft
    b.start(env)
    cluster.wait_for(lambda: cluster.statuses()[encounter.id or 0] == EncounterStatus.IN_REVIEW, timeout=120,
                     message="host B never finished the session")
    exactly_once(rt, [encounter.id or 0])
    with session_scope(rt.engine) as s:
        taken = s.exec(select(Job).where(Job.kind == kind)).one()
        assert taken.attempts == 2 and b.worker_id_prefix in taken.worker_id
    assert cluster.errors(besides=(a,)) == []


def test_a_partitioned_host_is_taken_over_and_its_late_commit_is_refused(cluster: Cluster, tmp_path: Path) -> None:
    rt = cluster.runtime
    people = make_practice(rt, cluster.clock)
    encounter = upload(rt, people.dr_ada, people.maya.id, wav_bytes(), transcript=TRANSCRIPT)
    a, b = cluster.host(tmp_path), cluster.host(tmp_path)
    a.start({**cluster.env, "SCRIBE_FAKE_COST_SECONDS": "8"})
    cluster.wait_for(lambda: cluster.running("draft", a), timeout=90, message="host A never ran the draft")
    a.partition(True)  # A drafts on, cut off: its heartbeat stops reaching the database
    b.start({**cluster.env, "SCRIBE_FAKE_COST_SECONDS": "1"})
    cluster.wait_for(lambda: cluster.running("draft", b) or cluster.statuses()[encounter.id or 0]
                     == EncounterStatus.IN_REVIEW, timeout=60, message="host B never took the draft over")
    cluster.wait_for(lambda: cluster.statuses()[encounter.id or 0] == EncounterStatus.IN_REVIEW, timeout=60,
                     message="host B never finished the session")
    with session_scope(rt.engine) as s:
        draft = s.exec(select(Draft)).one()
        before = (draft.id, draft.created_at)
    a.partition(False)  # A comes back and tries to commit its draft
    log = a.log
    assert log is not None
    cluster.wait_for(lambda: "lease lost" in log.read_text(), timeout=90,
                     message="host A's late commit was not refused")
    exactly_once(rt, [encounter.id or 0])
    with session_scope(rt.engine) as s:
        draft = s.exec(select(Draft)).one()
        assert (draft.id, draft.created_at) == before
        job = s.exec(select(Job).where(Job.kind == "draft")).one()
        assert b.worker_id_prefix in job.worker_id and job.attempts == 2
    assert a.worker is not None and a.worker.poll() is None  # A is alive and serving again
    assert cluster.errors(besides=(a,)) == []


def test_two_hundred_sessions_at_once_over_four_hosts(cluster: Cluster, tmp_path: Path) -> None:
    rt = cluster.runtime
    people = make_practice(rt, cluster.clock)
    hosts = [cluster.host(tmp_path) for _ in range(4)]
    # By capability: two hosts transcribe and draft (the GPU hosts), two redact and check.
    for i, h in enumerate(hosts):
        h.start(cluster.env, queues="transcribe,draft" if i < 2 else "pseudonymize,evidence")
    audio = wav_bytes(seconds=1.0)
    with ThreadPoolExecutor(8) as pool:  # eight clinicians' uploads at a time, while the hosts work
        encounters = list(pool.map(lambda _: upload(rt, people.dr_ada, people.maya.id, audio,
                                                    transcript=TRANSCRIPT).id or 0, range(200)))
    cluster.wait_for(lambda: all(s == EncounterStatus.IN_REVIEW for s in cluster.statuses().values()),
                     timeout=900, message="not every session reached the review queue")
    exactly_once(rt, encounters)
    with session_scope(rt.engine) as s:
        by_kind: dict[str, set[str]] = {}
        for job in s.exec(select(Job)).all():
            by_kind.setdefault(job.kind, set()).add(job.worker_id.split(":")[1])
    gpu = {str(h.worker.pid) for h in hosts[:2] if h.worker}
    assert by_kind["transcribe"] <= gpu and by_kind["draft"] <= gpu
    assert not (by_kind["pseudonymize"] | by_kind["evidence"]) & gpu
    assert cluster.errors() == []


def test_a_live_session_is_transcribed_on_a_worker_host_while_the_web_host_takes_its_pieces(
        cluster: Cluster, tmp_path: Path) -> None:
    """The recorder's pieces arrive at the web host (this process) and land in the shared
    storage; live transcription runs on a worker host in its own network namespace, through
    Procrastinate, while the session is still being recorded; then the session finishes there."""
    from scribe.services import recording
    from scribe.services.pipeline import load_segments
    from tests.services.test_live import webm_pieces

    rt = cluster.runtime
    cluster.clock.now = datetime.now(UTC)  # the worker host's clock: a recording in progress, not one abandoned
    people = make_practice(rt, cluster.clock)
    host = cluster.host(tmp_path)
    host.start(cluster.env)
    with session_scope(rt.engine) as s:
        encounter = recording.start(s, rt.audit_key, rt.policies, actor=people.dr_ada, client_id=people.maya.id or 0,
                                    note_type="soap", now=rt.clock())
    eid = encounter.id or 0
    for seq, piece in enumerate(webm_pieces(60.0)):
        with session_scope(rt.engine) as s:
            recording.add_chunk(s, rt.policies, actor=people.dr_ada, encounter_id=eid, seq=seq, data=piece,
                                recordings_dir=rt.recordings_dir, now=rt.clock())

    def transcribed_while_recording() -> bool:
        with session_scope(rt.engine) as s:
            return bool(load_segments(s, eid)) and s.get_one(Encounter, eid).status == EncounterStatus.RECORDING

    cluster.wait_for(transcribed_while_recording, timeout=120, message="the worker host never transcribed live")
    with session_scope(rt.engine) as s:
        live = s.exec(select(Job).where(Job.encounter_id == eid, Job.kind == "live")).one()
        assert host.worker_id_prefix in live.worker_id
        shown = [(x.index, x.text) for x in load_segments(s, eid)]
        recording.finish(s, rt.audit_key, rt.policies, actor=people.dr_ada, encounter_id=eid,
                         recordings_dir=rt.recordings_dir, decoder=rt.decoder, now=rt.clock())
    cluster.wait_for(lambda: cluster.statuses()[eid] == EncounterStatus.IN_REVIEW, timeout=120,
                     message="the recorded session never reached the review queue")
    with session_scope(rt.engine) as s:
        final = [(x.index, x.text) for x in load_segments(s, eid)]
    assert final[:len(shown)] == shown
    assert cluster.errors() == []
