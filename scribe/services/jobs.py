"""The durable job queue in the database (embedded default): claim with a lease,
renew the lease while working, record the outcome, say whether a retry helps."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Engine, and_, or_, update
from sqlmodel import col, select

from scribe.db.engine import session_scope
from scribe.db.tables import Encounter, Job
from scribe.domain.notes import STATUS_WHILE_RUNNING, EncounterStatus, JobKind, JobStatus


def claim(engine: Engine, *, worker_id: str, now: datetime, lease: timedelta) -> Job | None:
    """Take the oldest runnable job (queued, or running with an expired lease)."""
    with session_scope(engine) as s:
        runnable = or_(
            and_(col(Job.status) == JobStatus.QUEUED, col(Job.run_after) <= now),
            and_(col(Job.status) == JobStatus.RUNNING, col(Job.lease_until) < now),
        )
        job = s.exec(select(Job).where(runnable).order_by(col(Job.id)).limit(1)).first()
        if job is None:
            return None
        won = s.execute(
            update(Job)
            .where(col(Job.id) == job.id, col(Job.status) == job.status, col(Job.updated_at) == job.updated_at)
            .values(status=JobStatus.RUNNING, worker_id=worker_id, lease_until=now + lease,
                    attempts=Job.attempts + 1, updated_at=now)
        ).rowcount
        if won != 1:
            return None  # another worker took it first
        encounter = s.get(Encounter, job.encounter_id)
        if encounter is not None and encounter.status not in (EncounterStatus.STOPPED, EncounterStatus.FAILED):
            encounter.status = STATUS_WHILE_RUNNING[JobKind(job.kind)]
            encounter.updated_at = now
            s.add(encounter)
    with session_scope(engine) as s:
        return s.get(Job, job.id)


def renew(engine: Engine, job_id: int, *, worker_id: str, now: datetime, lease: timedelta) -> bool:
    with session_scope(engine) as s:
        return bool(s.execute(
            update(Job).where(col(Job.id) == job_id, col(Job.worker_id) == worker_id,
                              col(Job.status) == JobStatus.RUNNING)
            .values(lease_until=now + lease)
        ).rowcount)
