"""The durable job queue in the database (embedded default): claim with a lease,
renew the lease while working, record the outcome, say whether a retry helps."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Engine, and_, or_, update
from sqlmodel import Session, col, select

from scribe.db.engine import changed_rows, session_scope
from scribe.db.tables import Encounter, Job
from scribe.domain.notes import STATUS_WHILE_RUNNING, EncounterStatus, JobKind, JobStatus


class LeaseLost(Exception):
    """The job is no longer this worker's: its lease ran out and another worker claimed it."""


def hold_lease(s: Session, job: Job, now: datetime) -> None:
    """At a stage's commit, in the same transaction, make sure the job is still this worker's
    (and lock its row until the commit), so a worker that stalled past its lease never writes
    over, or beside, the worker that took the job over. Every stage that commits calls it."""
    won = changed_rows(s, update(Job).where(col(Job.id) == job.id, col(Job.status) == JobStatus.RUNNING,
                                            col(Job.worker_id) == job.worker_id)
                          .values(updated_at=now))
    if won != 1:
        raise LeaseLost(job.id)


def encounter_of(s: Session, job: Job) -> Encounter:
    """The session a job works on (a job row always names one that exists)."""
    encounter = s.get(Encounter, job.encounter_id)
    if encounter is None:
        raise LookupError(f"job {job.id} names no session")
    return encounter


def claim(engine: Engine, *, worker_id: str, now: datetime, lease: timedelta,
          kinds: tuple[str, ...] = ()) -> Job | None:
    """Take the oldest runnable job (queued, or running with an expired lease) of these kinds
    (empty: any)."""
    with session_scope(engine) as s:
        runnable = or_(
            and_(col(Job.status) == JobStatus.QUEUED, col(Job.run_after) <= now),
            # a lease that ran out: its worker died. Re-taken only while attempts remain;
            # a stage that kills its worker every time is failed by fail_abandoned instead.
            and_(col(Job.status) == JobStatus.RUNNING, col(Job.lease_until) < now,
                 col(Job.attempts) < col(Job.max_attempts)),
        )
        stmt = select(Job).where(runnable)
        if kinds:  # live transcription goes with transcription (it needs the same model)
            wanted = {*kinds, *((JobKind.LIVE.value,) if JobKind.TRANSCRIBE.value in kinds else ())}
            stmt = stmt.where(col(Job.kind).in_(sorted(wanted)))
        job = s.exec(stmt.order_by(col(Job.id)).limit(1)).first()
        if job is None:
            return None
        won = changed_rows(
            s,
            update(Job)
            .where(col(Job.id) == job.id, col(Job.status) == job.status, col(Job.updated_at) == job.updated_at)
            .values(status=JobStatus.RUNNING, worker_id=worker_id, lease_until=now + lease,
                    attempts=Job.attempts + 1, updated_at=now)
        )
        if won != 1:
            return None  # another worker took it first
        _mark_running(s, job, now)
    with session_scope(engine) as s:
        return s.get(Job, job.id)


ABANDONED = ("the worker stopped {n} times while running this step (it may be running out of memory on "
             "this recording); nothing was lost: the recording is kept, and the step can be retried")


def _abandon(s: Session, key: bytes, job: Job, now: datetime) -> bool:
    """Fail a stage whose worker died on every attempt, and its session, with a clear reason
    (in the caller's transaction). False when another worker changed the row first."""
    from scribe.services import audit

    message = ABANDONED.format(n=job.attempts)
    won = changed_rows(s, update(Job).where(col(Job.id) == job.id, col(Job.status) == job.status,
                                            col(Job.updated_at) == job.updated_at)
                          .values(status=JobStatus.FAILED, error=message, lease_until=None,
                                  updated_at=now))
    if won != 1:
        return False
    encounter = s.get(Encounter, job.encounter_id)
    if encounter is not None:
        encounter.status, encounter.status_reason, encounter.updated_at = EncounterStatus.FAILED, message, now
        s.add(encounter)
    audit.record(s, key, now=now, actor_id=None, action=f"pipeline.{job.kind}.failed",
                 object_type="encounter", object_id=job.encounter_id, reason="worker died on every attempt")
    return True


def fail_abandoned(engine: Engine, key: bytes, *, now: datetime) -> list[int]:
    """Fail, with a clear reason, each job whose worker died on every one of its attempts
    (its lease ran out with no attempts left), rather than re-claiming it for ever."""
    failed: list[int] = []
    with session_scope(engine) as s:
        rows = s.exec(select(Job).where(col(Job.status) == JobStatus.RUNNING, col(Job.lease_until) < now,
                                        col(Job.attempts) >= col(Job.max_attempts))).all()
        failed = [job.id or 0 for job in rows if _abandon(s, key, job, now)]
    return failed


def start(engine: Engine, key: bytes, job_id: int, *, worker_id: str, now: datetime) -> Job | None:
    """Take one delivered stage for this worker (an engine that delivers jobs itself, such as
    Procrastinate, calls this instead of ``claim``): one more attempt, the worker named, so
    that the commit can check the stage is still its own. A stage already done, stopped or
    failed is a no-op (a redelivery); one whose attempts are spent (its workers died on
    every one) fails its session with a clear reason instead of running again."""
    with session_scope(engine) as s:
        job = s.get(Job, job_id)
        if job is None or job.status not in (JobStatus.QUEUED, JobStatus.RUNNING):
            return None
        if job.attempts >= job.max_attempts:
            _abandon(s, key, job, now)
            return None
        won = changed_rows(s, update(Job).where(col(Job.id) == job_id, col(Job.status) == job.status,
                                                col(Job.updated_at) == job.updated_at)
                              .values(status=JobStatus.RUNNING, worker_id=worker_id, attempts=Job.attempts + 1,
                                      lease_until=None, updated_at=now))
        if won != 1:
            return None
        _mark_running(s, job, now)
    with session_scope(engine) as s:
        return s.get(Job, job_id)


def _mark_running(s: Session, job: Job, now: datetime) -> None:
    encounter = s.get(Encounter, job.encounter_id)
    kind = JobKind(job.kind)
    if kind in STATUS_WHILE_RUNNING and encounter is not None and \
            encounter.status not in (EncounterStatus.STOPPED, EncounterStatus.FAILED):
        encounter.status = STATUS_WHILE_RUNNING[kind]
        encounter.updated_at = now
        s.add(encounter)


def renew(engine: Engine, job_id: int, *, worker_id: str, now: datetime, lease: timedelta) -> bool:
    with session_scope(engine) as s:
        return changed_rows(
            s,
            update(Job).where(col(Job.id) == job_id, col(Job.worker_id) == worker_id,
                              col(Job.status) == JobStatus.RUNNING)
            .values(lease_until=now + lease),
        ) == 1
