"""Who runs the pipeline's stages, behind one small interface.

- ``table`` (the embedded default): the ``jobs`` table is the queue; workers claim a row
  with a lease (scribe/worker.py). One clinic server, SQLite, no other service.
- ``procrastinate`` (many hosts, PostgreSQL): Procrastinate dispatches the stages. The
  ``jobs`` table stays the record of each stage (attempts, outcome, output key), and a
  stage becomes a Procrastinate job in the very transaction that queues it (a transactional
  outbox: Procrastinate's defer on our own connection), so nothing is queued that is not
  committed and nothing committed is left unqueued. Procrastinate keeps one session's stages
  in order (a lock per session), refuses a second copy of a queued stage (a queueing lock),
  and re-runs the stages of a worker whose heartbeat stopped; a stage that kills its worker
  on every attempt fails its session; a worker that stalled past its takeover writes nothing
  (the commit checks the stage is still its own).

The services never know which one runs them: they write ``Job`` rows, as always."""

from __future__ import annotations

import contextlib
import logging
import os
import platform
import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import Engine, String, cast, event, exists
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session as OrmSession
from sqlalchemy.sql import column, table

from scribe.db.tables import Job
from scribe.domain.notes import PIPELINE, JobKind, JobStatus
from scribe.services import jobs

if TYPE_CHECKING:
    from scribe.runtime import Runtime

log = logging.getLogger("scribe.queues")

TASK = "scribe.run_stage"
DISPATCH = "scribe_dispatch"  # the engine execution option that names the dispatcher
ALL_QUEUES = tuple(k.value for k in PIPELINE)


def queue_of(kind: str) -> str:
    """The queue a job goes to: its stage's; live transcription with transcription (same model)."""
    return JobKind.TRANSCRIBE.value if kind == JobKind.LIVE.value else kind


class JobQueue(Protocol):
    """Runs the stages the services queue as ``Job`` rows."""

    name: str

    def install(self, engine: Engine) -> None:
        """Hook the database so that a stage queued in a transaction is dispatched with it."""
        ...

    def run_worker(self, rt: Runtime, *, queues: Sequence[str], stop: threading.Event, once: bool = False) -> int:
        """Run stages from these queues until ``stop`` is set (or, with ``once``, until none
        is left). Returns how many stages ran."""
        ...


class TableQueue:
    """The embedded default: workers poll the jobs table with leases (scribe/worker.py)."""

    name = "table"

    def install(self, engine: Engine) -> None:
        return None

    def run_worker(self, rt: Runtime, *, queues: Sequence[str], stop: threading.Event, once: bool = False) -> int:
        from scribe.worker import Worker

        worker = Worker(rt, kinds=tuple(queues))
        if once:
            return worker.run_until_idle()
        def stop_when_told() -> None:
            stop.wait()
            worker.stop()

        stop_thread = threading.Thread(target=stop_when_told, daemon=True)
        stop_thread.start()
        worker.run_forever()
        return 0


def conninfo(sqlalchemy_url: str) -> str:
    """The libpq URL of a SQLAlchemy PostgreSQL URL (with its options, e.g. a search_path)."""
    url = make_url(sqlalchemy_url)
    if url.get_backend_name() != "postgresql":
        raise RuntimeError("the procrastinate queue runs on PostgreSQL: set SCRIBE_DATABASE_URL")
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


class ProcrastinateQueue:
    """Stages on Procrastinate, on the deployment's PostgreSQL (see the module's docstring)."""

    name = "procrastinate"

    def __init__(self, sqlalchemy_url: str, *, heartbeat_seconds: float = 5.0, stalled_seconds: float = 20.0) -> None:
        import procrastinate  # the multi-host extra: pip install procrastinate

        self.conninfo = conninfo(sqlalchemy_url)
        self.heartbeat_seconds = heartbeat_seconds
        self.stalled_seconds = stalled_seconds
        # Deferring runs on the caller's own connection (in its transaction): this connector's
        # pool is never opened.
        self.dispatch = procrastinate.App(connector=procrastinate.SyncPsycopgConnector(conninfo=self.conninfo))

    # -- dispatch ---------------------------------------------------------------------------
    def install(self, engine: Engine) -> None:
        engine.update_execution_options(**{DISPATCH: self})
        _register_dispatch_listener()

    def defer(self, raw_connection: Any, job: Job) -> None:
        """The stage as a Procrastinate job, inserted on our connection (a savepoint around it:
        a second copy refused by the queueing lock must not abort the caller's transaction)."""
        from procrastinate import exceptions

        at = job.run_after  # stored naive in UTC (SQLite keeps no zone)
        if at is not None and at.tzinfo is None:
            at = at.replace(tzinfo=UTC)
        try:
            with raw_connection.transaction():
                self.dispatch.configure_task(
                    TASK, queue=queue_of(job.kind), lock=f"session:{job.encounter_id}", queueing_lock=f"stage:{job.id}",
                    schedule_at=at, connection=raw_connection,
                ).defer(job_id=job.id)
        except exceptions.AlreadyEnqueued:
            pass  # that very stage is queued already

    def ensure_schema(self, engine: Engine) -> None:
        """Apply Procrastinate's schema once (as the owner role, at migration time)."""
        with engine.begin() as conn:
            present = conn.exec_driver_sql("SELECT to_regclass('procrastinate_jobs')").scalar()
        if present is None:
            import procrastinate

            app = procrastinate.App(connector=procrastinate.SyncPsycopgConnector(conninfo=self.conninfo))
            with app.open():
                app.schema_manager.apply_schema()

    # -- workers ----------------------------------------------------------------------------
    def run_worker(self, rt: Runtime, *, queues: Sequence[str], stop: threading.Event, once: bool = False) -> int:
        import asyncio

        import procrastinate

        app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=self.conninfo))
        worker_id = f"{platform.node()}:{os.getpid()}:procrastinate"
        crash_at = os.environ.get("SCRIBE_CRASH_AT")  # fault injection, tests only
        ran = [0]

        @app.task(name=TASK, pass_context=False)
        def run_stage(job_id: int) -> None:
            job = jobs.start(rt.engine, rt.audit_key, job_id, worker_id=worker_id, now=rt.clock())
            if job is not None:
                from scribe.services.pipeline import run_job

                run_job(rt, job, crash_at=crash_at)
                ran[0] += 1

        from scribe.worker import Housekeeper

        keeper = Housekeeper(rt, worker_id)

        async def main() -> None:
            async with app.open_async():
                work = asyncio.create_task(app.run_worker_async(
                    queues=list(queues), name=worker_id, concurrency=1, wait=not once, install_signal_handlers=False,
                    update_heartbeat_interval=self.heartbeat_seconds, stalled_worker_timeout=self.stalled_seconds,
                    listen_notify=True, delete_jobs="successful"))
                while not work.done():
                    if stop.is_set():
                        work.cancel()
                        break
                    try:
                        await self._retry_stalled(app)
                        if await asyncio.to_thread(keeper.maybe_run):
                            await asyncio.to_thread(self.reconcile, rt.engine, rt.clock())
                    except Exception as exc:
                        # restarting); ids only in logs
                        log.error("worker %s housekeeping error type=%s", worker_id, exc.__class__.__name__)
                    await asyncio.wait([work], timeout=self.heartbeat_seconds)
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await work  # cancelled on stop; its own errors are logged by Procrastinate

        asyncio.run(main())
        return ran[0]

    async def _retry_stalled(self, app: Any) -> None:
        """Re-queue the stages of workers whose heartbeat stopped (killed, partitioned)."""
        for job in await app.job_manager.get_stalled_jobs(seconds_since_heartbeat=self.stalled_seconds):
            try:
                await app.job_manager.retry_job(job)
            except Exception as exc:
                log.info("stage job %s of a stalled worker: not re-queued here (%s)", job.id, exc.__class__.__name__)
            else:
                log.warning("stage job %s of a stalled worker is queued again", job.id)

    def reconcile(self, engine: Engine, now: datetime, *, grace: timedelta = timedelta(minutes=1)) -> int:
        """Queue again every stage that is queued in the jobs table with no Procrastinate job
        to run it (a safety net: a stalled worker that comes back finishes, and so removes,
        the Procrastinate job it had, even if that job was re-queued meanwhile). Returns how
        many were queued again; the queueing lock makes this idempotent."""
        from sqlmodel import select

        from scribe.db.engine import session_scope

        with session_scope(engine) as s:
            orphans = s.exec(select(Job).where(
                Job.status == JobStatus.QUEUED, Job.run_after <= now - grace,
                ~exists().where(_PJ.c.task_name == TASK, cast(_PJ.c.status, String).in_(["todo", "doing"]),
                                _PJ.c.args["job_id"].as_integer() == Job.id))).all()
            for job in orphans:
                log.warning("stage job %s had no queue entry: queued again", job.id)
                self.defer(s.connection().connection.driver_connection, job)
        return len(orphans)


_PJ = table("procrastinate_jobs", column("task_name"), column("status"), column("args", JSONB))


_listening: list[bool] = []
_listen_lock = threading.Lock()


def _register_dispatch_listener() -> None:
    with _listen_lock:
        if not _listening:
            event.listen(OrmSession, "after_flush", _dispatch_queued)
            event.listen(OrmSession, "after_commit", _forget_dispatched)
            event.listen(OrmSession, "after_rollback", _forget_dispatched)
            _listening.append(True)


def _dispatch_queued(session: OrmSession, _context: Any) -> None:
    """Every Job row that this flush made queued becomes a Procrastinate job, in this transaction."""
    bind = session.get_bind()
    queue = bind.get_execution_options().get(DISPATCH)
    if queue is None:
        return
    deferred: set[tuple[object, ...]] = session.info.setdefault("_dispatched", set())
    for obj in list(session.new) + list(session.dirty):
        if not isinstance(obj, Job) or obj.status != JobStatus.QUEUED or obj.id is None:
            continue
        marker = (obj.id, obj.attempts, obj.run_after)  # once per queuing, however many flushes follow
        if marker not in deferred:
            queue.defer(session.connection().connection.driver_connection, obj)
            deferred.add(marker)


def _forget_dispatched(session: OrmSession, *_args: Any) -> None:
    session.info.pop("_dispatched", None)


def build_queue(settings: Any) -> JobQueue:
    if settings.queue_engine == "procrastinate":
        return ProcrastinateQueue(settings.sqlalchemy_url, heartbeat_seconds=settings.queue_heartbeat_seconds,
                                  stalled_seconds=settings.queue_stalled_seconds)
    return TableQueue()
