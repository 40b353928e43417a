"""Dramatiq on Redis behind scribe's JobQueue interface, for bench/scale.py only: the third
candidate the issue names, measured beside ours and Procrastinate. Not part of the product
(Redis is a second service a practice would run, and nothing sends a message in the
database's transaction: a message goes out after the commit, so a crash between the two
loses the stage unless a sweeper re-sends it, as ProcrastinateQueue.reconcile does).

Needs ``pip install --target DIR 'dramatiq[redis]'`` and DIR on PYTHONPATH; Redis at
SCRIBE_BENCH_REDIS_URL (default redis://127.0.0.1:6379/0).

    python bench/dramatiq_queue.py worker     # one worker process (what scale.py starts)"""

from __future__ import annotations

import os
import platform
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from sqlalchemy import Engine, event
from sqlalchemy.orm import Session as OrmSession

from scribe.db.tables import Job
from scribe.domain.notes import PIPELINE, JobStatus

REDIS = os.environ.get("SCRIBE_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
broker = RedisBroker(url=REDIS, namespace=os.environ.get("SCRIBE_BENCH_REDIS_NAMESPACE", "scribe-bench"))
dramatiq.set_broker(broker)
_runtime: list[Any] = []


@dramatiq.actor(actor_name="scribe_run_stage", max_retries=0, queue_name="stages")
def run_stage(job_id: int) -> None:
    from scribe.services import jobs
    from scribe.services.pipeline import run_job

    rt = _runtime[0]
    job = jobs.start(rt.engine, rt.audit_key, job_id, worker_id=f"{platform.node()}:{os.getpid()}:dramatiq",
                     now=rt.clock())
    if job is not None:
        run_job(rt, job)


def _queue_for(kind: str) -> str:
    return f"stage-{kind}"


class DramatiqQueue:
    name = "dramatiq"

    def install(self, engine: Engine) -> None:
        engine.update_execution_options(scribe_bench_dramatiq=True)
        event.listen(OrmSession, "after_flush", _collect)
        event.listen(OrmSession, "after_commit", _send)
        event.listen(OrmSession, "after_rollback", lambda s: s.info.pop("_to_send", None))

    def run_worker(self, rt: Any, *, queues: Sequence[str], stop: threading.Event, once: bool = False) -> int:
        _runtime[:] = [rt]
        worker = dramatiq.Worker(broker, worker_threads=1, queues={_queue_for(q) for q in queues})
        worker.start()
        stop.wait()
        worker.stop()
        return 0


def _collect(session: OrmSession, _context: Any) -> None:
    if not session.get_bind().get_execution_options().get("scribe_bench_dramatiq"):
        return
    pending = session.info.setdefault("_to_send", {})
    for obj in list(session.new) + list(session.dirty):
        if isinstance(obj, Job) and obj.status == JobStatus.QUEUED and obj.id is not None:
            pending[(obj.id, obj.attempts, obj.run_after)] = (obj.id, obj.kind)


def _send(session: OrmSession) -> None:
    for job_id, kind in session.info.pop("_to_send", {}).values():
        broker.enqueue(dramatiq.Message(queue_name=_queue_for(kind), actor_name=run_stage.actor_name,
                                        args=(job_id,), kwargs={}, options={}))


for _kind in PIPELINE:
    broker.declare_queue(_queue_for(_kind.value))


def flush() -> None:
    """Drop every message of earlier runs (a new run's job ids start again at 1)."""
    client = broker.client
    keys = list(client.scan_iter(match=f"{broker.namespace}*"))
    if keys:
        client.delete(*keys)


def main() -> None:
    import signal

    from scribe.config import Settings
    from scribe.runtime import build_runtime

    rt = build_runtime(Settings(), migrate=False)
    rt.load_engines()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    queue = DramatiqQueue()
    queue.install(rt.engine)  # the stage a worker commits queues the next one
    queue.run_worker(rt, queues=[k.value for k in PIPELINE], stop=stop)


if __name__ == "__main__" and sys.argv[1:] == ["worker"]:
    main()
