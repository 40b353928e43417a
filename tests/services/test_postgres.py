"""The multi-host path: migrations, append-only triggers and job claims on PostgreSQL.

Runs against the PostgreSQL on 127.0.0.1:5432 (database `test`) that CI provides; a clinic's
single server has none, so elsewhere this module is skipped with the reason."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DatabaseError

def test_migrations_and_append_only_triggers_on_postgres(pg_url, tmp_path) -> None:
    from scribe.db.engine import check_durability, make_engine, session_scope
    from scribe.db.migrate import upgrade
    from scribe.services import audit

    engine = make_engine(pg_url)
    upgrade(engine)
    assert check_durability(engine) == []
    now = datetime.now(UTC)
    with session_scope(engine) as s:
        audit.record(s, b"k" * 32, now=now, actor_id=None, action="test", object_type="none")
    for sql in ("UPDATE audit_events SET reason = 'x'", "DELETE FROM audit_events", "TRUNCATE audit_events",
                "TRUNCATE cosignatures", "TRUNCATE note_versions CASCADE"):  # row triggers need rows; TRUNCATE proves these exist
        with pytest.raises(DatabaseError, match="append-only"), engine.begin() as conn:
            conn.execute(text(sql))
    engine.dispose()


def test_only_one_worker_claims_a_job_on_postgres(pg_url) -> None:
    from scribe.db.engine import make_engine, session_scope
    from scribe.db.migrate import upgrade
    from scribe.db.tables import Client, Clinic, Encounter, Job, User
    from scribe.services import jobs

    engine = make_engine(pg_url)
    upgrade(engine)
    now = datetime.now(UTC)
    with session_scope(engine) as s:
        clinic = Clinic(name="c")
        s.add(clinic)
        s.flush()
        user = User(clinic_id=clinic.id, username="u", full_name="U", role="clinician", password_hash="x", created_at=now)
        s.add(user)
        s.flush()
        client = Client(clinic_id=clinic.id, clinician_id=user.id, given_name="A", family_name="B", mrn="m", created_at=now)
        s.add(client)
        s.flush()
        enc = Encounter(clinic_id=clinic.id, client_id=client.id, clinician_id=user.id, note_type="soap",
                        occurred_at=now, status="uploaded", created_at=now, updated_at=now)
        s.add(enc)
        s.flush()
        s.add(Job(encounter_id=enc.id, kind="transcribe", status="queued", run_after=now, created_at=now, updated_at=now))
    first = jobs.claim(engine, worker_id="a", now=now, lease=timedelta(minutes=1))
    second = jobs.claim(engine, worker_id="b", now=now, lease=timedelta(minutes=1))
    assert first is not None and second is None
    later = jobs.claim(engine, worker_id="b", now=now + timedelta(minutes=2), lease=timedelta(minutes=1))
    assert later is not None and later.worker_id == "b"  # the lease ran out: resumed elsewhere
    engine.dispose()
