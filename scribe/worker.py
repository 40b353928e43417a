"""The pipeline worker: ``scribe worker`` or a thread inside ``scribe serve``.

Claims one job at a time with a lease and renews it from a heartbeat thread while the
engine works, so a worker that dies (kill -9, power loss) has its job resumed by the
next worker once the lease expires."""

from __future__ import annotations

import logging
import os
import platform
import threading
import time
from datetime import timedelta

from scribe.runtime import Runtime
from scribe.services import jobs
from scribe.services.pipeline import run_job

log = logging.getLogger("scribe.worker")


def housekeeping(rt: Runtime, *, retention_due: bool, worker_id: str) -> None:
    """What every worker does when idle, whichever queue feeds it: fail stages whose worker
    died on every attempt; anchor the audit chain outside the database; apply retention when
    due; remove the files of purged rows (a purge marks rows; files go after the commit)."""
    from scribe.db.engine import session_scope
    from scribe.services import audit, retention
    from scribe.services.purge import sweep_files

    for job_id in jobs.fail_abandoned(rt.engine, rt.audit_key, now=rt.clock()):
        log.warning("job %s failed: its worker died on every attempt", job_id)
    with session_scope(rt.engine) as s:
        if retention_due:
            retention.run(s, rt.audit_key, rt.policies, now=rt.clock())
        audit.anchor(s, rt.audit_key, rt.anchors_dir, rt.clock())
    removed = sweep_files(rt.engine, rt.recordings_dir)
    if removed:
        log.info("worker %s swept %d purged file(s)", worker_id, removed)


class Housekeeper:
    """Runs ``housekeeping`` at most every ``every`` seconds, retention at most hourly."""

    def __init__(self, rt: Runtime, worker_id: str, *, every: float = 30.0) -> None:
        self.rt, self.worker_id, self.every = rt, worker_id, every
        self._last, self._last_retention = float("-inf"), float("-inf")

    def maybe_run(self) -> bool:
        """True when it ran."""
        now = time.monotonic()
        if now - self._last < self.every:
            return False
        retention_due = now - self._last_retention > 3600
        housekeeping(self.rt, retention_due=retention_due, worker_id=self.worker_id)
        self._last = now
        if retention_due:
            self._last_retention = now
        return True


class Worker:
    def __init__(self, rt: Runtime, *, poll_seconds: float = 1.0, crash_at: str | None = None,
                 kinds: tuple[str, ...] = ()) -> None:
        rt.require_engines()  # fail at start, not by burning every job's attempts
        self.rt = rt
        self.kinds = kinds  # the stages this worker takes (a GPU host: transcribe, draft); empty: all
        self.poll_seconds = poll_seconds
        self.worker_id = f"{platform.node()}:{os.getpid()}:{id(self):x}"
        self.lease = timedelta(seconds=rt.policies.pipeline.lease_seconds)
        self.crash_at = crash_at or os.environ.get("SCRIBE_CRASH_AT")  # fault injection, tests only
        self._stop = threading.Event()

    def run_once(self) -> bool:
        """Claim and run one job; False when there was nothing to do."""
        job = jobs.claim(self.rt.engine, worker_id=self.worker_id, now=self.rt.clock(), lease=self.lease,
                         kinds=self.kinds)
        if job is None:
            return False
        done = threading.Event()

        def heartbeat() -> None:
            while not done.wait(self.lease.total_seconds() / 3):
                if not jobs.renew(self.rt.engine, job.id or 0, worker_id=self.worker_id, now=self.rt.clock(),
                                  lease=self.lease):
                    # Taken over by another worker: stop renewing; the commit check discards our output.
                    log.warning("worker %s lost the lease of job %s", self.worker_id, job.id)
                    return

        beat = threading.Thread(target=heartbeat, name=f"lease-{job.id}", daemon=True)
        beat.start()
        try:
            run_job(self.rt, job, crash_at=self.crash_at)
        finally:
            done.set()
            beat.join()
        return True

    def run_until_idle(self) -> int:
        count = 0
        while self.run_once():
            count += 1
        return count

    def sweep(self) -> None:
        """Remove files whose rows say they were purged."""
        from scribe.services.purge import sweep_files

        sweep_files(self.rt.engine, self.rt.recordings_dir)

    def housekeeping(self, *, retention_due: bool) -> None:
        housekeeping(self.rt, retention_due=retention_due, worker_id=self.worker_id)

    def run_forever(self) -> None:
        log.info("worker %s started", self.worker_id)
        keeper = Housekeeper(self.rt, self.worker_id)
        while not self._stop.is_set():
            try:
                if not self.run_once():
                    keeper.maybe_run()
                    self._stop.wait(self.poll_seconds)
            except Exception as exc:
                log.error("worker %s loop error type=%s", self.worker_id, exc.__class__.__name__)  # no message: it may quote text
                self._stop.wait(self.poll_seconds)

    def stop(self) -> None:
        self._stop.set()

    def start_thread(self) -> threading.Thread:
        thread = threading.Thread(target=self.run_forever, name="scribe-worker", daemon=True)
        thread.start()
        return thread
