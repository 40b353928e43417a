"""Sessions per hour with 1, 2 and 4 worker processes, per job queue, in the same run.

The engines are the fakes with a fixed cost (``SCRIBE_FAKE_COST_SECONDS`` for transcription
and for drafting; redaction and the evidence check take what they take), so what is measured
is the queue and the pipeline around the models, not the models: this machine has 2 cores,
and a fixed sleep costs none of them. Both queues run on the same PostgreSQL:

- ``table``: our jobs table with leases, polled by each worker (the embedded default);
- ``procrastinate``: Procrastinate on PostgreSQL (LISTEN/NOTIFY, a lock per session);
- ``dramatiq`` (with ``--queues table,procrastinate,dramatiq``): Dramatiq on the Redis at
  SCRIBE_BENCH_REDIS_URL, through bench/dramatiq_queue.py; needs dramatiq[redis] on PYTHONPATH
  (``pip install --target /tmp/dramatiq-lib 'dramatiq[redis]'``): it is not a dependency.

First, per queue, one idle worker and sessions submitted one by one: a stage's latency is
then the queue's dispatch alone. Then, for each (queue, workers), it starts the workers,
submits N sessions at once, and waits until every one is in the review queue. It prints:

- sessions/hour: N over the time from the first upload to the last draft in review;
- queue latency p50/p95: from a stage being queued to its starting on a worker;
- overhead/job: worker time spent outside any stage (dispatch, polling, claiming, idling
  while a session's next stage is not yet queued), per stage run;
- speed-up over 1 worker of the same queue.

    .venv/bin/python bench/scale.py [--sessions 40] [--cost 1.0] [--workers 1,2,4]

Needs the PostgreSQL of the multi-host deployment (SCRIBE_BENCH_POSTGRES_URL, default the
test server on 127.0.0.1). Writes bench/out/scale.json."""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import create_engine, text
from sqlmodel import select

from bench.common import OUT, ROOT, table
from scribe.config import Settings
from scribe.db.engine import session_scope
from scribe.db.tables import Encounter, Job
from scribe.domain.notes import EncounterStatus
from scribe.runtime import build_runtime
from scribe.services.demo import SAMPLE_AUDIO, demo_client_id, seed_demo, user_by_name
from scribe.services.uploads import accept_upload

PG = os.environ.get("SCRIBE_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def naive(t: datetime) -> datetime:
    return t.replace(tzinfo=None) if t.tzinfo else t


def one_run(queue: str, workers: int, sessions: int, cost: float, tmp: Path, *,
            one_by_one: bool = False) -> dict[str, object]:
    """With ``one_by_one``, each session is submitted when the last is in review: the workers
    are idle, so a stage's latency is the queue's dispatch alone (no backlog)."""
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))  # nosec B608 - a generated identifier, no input
    url = f"{PG}?options=-csearch_path%3D{schema}"
    run_dir = tmp / f"{queue}-{workers}{'-idle' if one_by_one else ''}"
    settings = Settings(
        data_dir=run_dir / "web",
        database_url=url,
        engines="fake",
        worker_in_process=False,
        queue_engine="procrastinate" if queue == "procrastinate" else "table",
        storage_dir=run_dir / "storage",
        key_dir=run_dir / "keys",
        anchor_dir=run_dir / "anchors",
        fake_cost_seconds=cost,
    )
    runtime = build_runtime(settings)
    with session_scope(runtime.engine) as s:
        seed_demo(s, now=runtime.clock())
    command = [sys.executable, "-m", "scribe.cli", "worker"]
    if queue == "dramatiq":
        from bench import dramatiq_queue  # bench/dramatiq_queue.py: needs dramatiq[redis] on PYTHONPATH

        dramatiq_queue.flush()
        dramatiq_queue.DramatiqQueue().install(runtime.engine)
        command = [sys.executable, str(ROOT / "bench" / "dramatiq_queue.py"), "worker"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "SCRIBE_DATABASE_URL": url, "SCRIBE_QUEUE_ENGINE": settings.queue_engine,
           "SCRIBE_ENGINES": "fake", "SCRIBE_FAKE_COST_SECONDS": str(cost), "SCRIBE_STORAGE_DIR": str(settings.storage_dir),
           "SCRIBE_KEY_DIR": str(settings.keys_dir), "SCRIBE_ANCHOR_DIR": str(settings.anchors_dir)}
    procs = [subprocess.Popen(command,
                              env={**env, "SCRIBE_DATA_DIR": str(run_dir / f"worker{i}")},
                              stdout=subprocess.DEVNULL, stderr=(run_dir / f"worker{i}.log").open("w"))
             for i in range(workers)]
    time.sleep(6)  # the workers start (imports, engines) before the clock does
    audio = SAMPLE_AUDIO.read_bytes()
    try:
        started = time.perf_counter()
        with session_scope(runtime.engine) as s:
            actor, client = user_by_name(s, "dr_ada"), demo_client_id(s)
        batches = [1] * sessions if one_by_one else [sessions]
        for batch in batches:
            for _ in range(batch):
                with session_scope(runtime.engine) as s:
                    accept_upload(s, runtime.audit_key, runtime.policies, recordings_dir=settings.recordings_dir,
                                  decoder=runtime.decoder, actor=actor, client_id=client, note_type="soap",
                                  filename="session.ogg", stream=io.BytesIO(audio), now=runtime.clock())
            while True:
                with session_scope(runtime.engine) as s:
                    statuses = [e.status for e in s.exec(select(Encounter)).all()]
                if all(x == EncounterStatus.IN_REVIEW for x in statuses):
                    break
                if any(x == EncounterStatus.FAILED for x in statuses) or time.perf_counter() - started > 3600:
                    raise SystemExit(f"{queue}/{workers}: a session failed or the run took over an hour")
                time.sleep(0.05)
        wall = time.perf_counter() - started
        with session_scope(runtime.engine) as s:
            jobs = s.exec(select(Job)).all()
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
        runtime.engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))  # nosec B608 - a generated identifier
        admin.dispose()
    # A stage starts when it finishes less the time it took (both on the workers' clocks).
    latencies = sorted((naive(j.updated_at) - naive(j.created_at)).total_seconds() - j.seconds_taken for j in jobs)
    busy = sum(j.seconds_taken for j in jobs)
    q = statistics.quantiles(latencies, n=20)
    return {"queue": queue, "workers": workers, "load": "one by one" if one_by_one else "all at once",
            "sessions": sessions, "stages": len(jobs), "wall_s": wall,
            "sessions_per_hour": sessions / wall * 3600, "latency_p50_s": statistics.median(latencies),
            "latency_p95_s": q[18], "overhead_per_job_s": (wall * workers - busy) / len(jobs),
            "in_stage_s_per_job": busy / len(jobs)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", type=int, default=40)
    parser.add_argument("--cost", type=float, default=1.0, help="seconds per transcription and per draft")
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--idle-sessions", type=int, default=8, help="sessions submitted one by one (dispatch)")
    parser.add_argument("--queues", default="table,procrastinate")
    args = parser.parse_args()
    rows, idle = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for queue in args.queues.split(","):  # dispatch alone: one worker, idle between sessions
            idle.append(one_run(queue, 1, args.idle_sessions, args.cost, Path(tmp), one_by_one=True))
            print(f"  {queue}, one by one: stage latency p50 {idle[-1]['latency_p50_s']:.3f}s", flush=True)
        for n in [int(x) for x in args.workers.split(",")]:
            for queue in args.queues.split(","):  # interleaved: every queue sees the same machine
                row = one_run(queue, n, args.sessions, args.cost, Path(tmp))
                rows.append(row)
                print(f"  {queue} x{n}: {row['sessions_per_hour']:.0f} sessions/hour", flush=True)
    for row in rows:
        base = next(r for r in rows if r["queue"] == row["queue"] and r["workers"] == min(
            x["workers"] for x in rows if x["queue"] == row["queue"]))
        row["speed_up"] = float(row["sessions_per_hour"]) / float(base["sessions_per_hour"])  # type: ignore[arg-type]
    print(f"\n{args.sessions} sessions at once; fake engines at {args.cost}s per transcription and per draft; "
          f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores")
    print(f"\nDispatch: {args.idle_sessions} sessions one by one, one idle worker (latency = the queue's own)")
    print(table(idle, ["queue", "latency_p50_s", "latency_p95_s", "overhead_per_job_s", "in_stage_s_per_job"]))
    print(f"\nThroughput: {args.sessions} sessions at once (latency includes the wait behind other sessions)")
    print(table(rows, ["queue", "workers", "sessions_per_hour", "speed_up", "latency_p50_s", "latency_p95_s",
                       "overhead_per_job_s", "in_stage_s_per_job", "wall_s"]))
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "scale.json").write_text(json.dumps({"one_by_one": idle, "all_at_once": rows}, indent=2))


if __name__ == "__main__":
    main()
