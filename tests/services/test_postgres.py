"""The multi-host path: migrations, append-only triggers and job claims on PostgreSQL.

Runs against the PostgreSQL on 127.0.0.1:5432 (database `test`) that CI provides; a clinic's
single server has none, so elsewhere this module is skipped with the reason."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DatabaseError

from scribe.engines.protocols import Engines
from scribe.policies import Policies


def test_migrations_and_append_only_triggers_on_postgres(pg_url: str, tmp_path: Path) -> None:
    from scribe.db.engine import check_durability, make_engine, session_scope
    from scribe.db.migrate import upgrade
    from scribe.services import audit

    engine = make_engine(pg_url)
    upgrade(engine)
    assert check_durability(engine) == []
    now = datetime.now(UTC)
    with session_scope(engine) as s:
        audit.record(s, b"k" * 32, now=now, actor_id=None, action="admin.read", object_type="none")
    for sql in ("UPDATE audit_events SET reason = 'x'", "DELETE FROM audit_events", "TRUNCATE audit_events",
                "TRUNCATE cosignatures", "TRUNCATE note_versions CASCADE"):  # row triggers need rows; TRUNCATE proves these exist
        with pytest.raises(DatabaseError, match="append-only"), engine.begin() as conn:
            conn.execute(text(sql))
    engine.dispose()


def test_only_one_worker_claims_a_job_on_postgres(pg_url: str) -> None:
    from scribe.db.clients import add_client
    from scribe.db.engine import make_engine, session_scope
    from scribe.db.migrate import upgrade
    from scribe.db.sealing.columns import install
    from scribe.db.sealing.vault import Vault
    from scribe.db.tables import Client, Clinic, Encounter, Job, User
    from scribe.services import jobs

    engine = make_engine(pg_url)
    install(engine, Vault(secrets.token_bytes(32), engine))
    upgrade(engine)
    now = datetime.now(UTC)
    with session_scope(engine) as s:
        clinic = Clinic(name="c")
        s.add(clinic)
        s.flush()
        user = User(clinic_id=clinic.id or 0, username="u", full_name="U", role="clinician", password_hash="x", created_at=now)
        s.add(user)
        s.flush()
        client = add_client(s, Client(clinic_id=clinic.id or 0, clinician_id=user.id or 0, given_name="A", family_name="B",
                                      mrn="m", created_at=now))
        enc = Encounter(clinic_id=clinic.id or 0, client_id=client.id, clinician_id=user.id or 0, note_type="soap",
                        occurred_at=now, status="uploaded", created_at=now, updated_at=now)
        s.add(enc)
        s.flush()
        s.add(Job(encounter_id=enc.id or 0, kind="transcribe", status="queued", run_after=now, created_at=now, updated_at=now))
    first = jobs.claim(engine, worker_id="a", now=now, lease=timedelta(minutes=1))
    second = jobs.claim(engine, worker_id="b", now=now, lease=timedelta(minutes=1))
    assert first is not None and second is None
    later = jobs.claim(engine, worker_id="b", now=now + timedelta(minutes=2), lease=timedelta(minutes=1))
    assert later is not None and later.worker_id == "b"  # the lease ran out: resumed elsewhere
    engine.dispose()


def test_the_app_role_can_work_but_not_switch_off_the_append_only_guards(
    pg_url: str, tmp_path: Path, policies: Policies, engines: Engines
) -> None:
    """Two roles: the owner migrates; the app runs a session end to end, and cannot alter a
    table, drop or disable a trigger, or delete an audit row (SECURITY.md, issue 17.9)."""
    import uuid

    from sqlalchemy import create_engine
    from sqlalchemy.exc import ProgrammingError

    from scribe.config import Settings
    from scribe.domain.notes import EncounterStatus
    from scribe.runtime import build_runtime
    from tests.conftest import PG_URL, Clock, make_practice, wav_bytes
    from tests.helpers import TRANSCRIPT, reload, run_pipeline, upload
    from tests.services.test_review import resolve_all, sign

    tag = uuid.uuid4().hex[:8]
    owner, app = f"scribe_owner_{tag}", f"scribe_app_{tag}"
    schema = pg_url.rsplit("%3D", 1)[1]
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE ROLE {owner} LOGIN NOSUPERUSER"))
        conn.execute(text(f"CREATE ROLE {app} LOGIN NOSUPERUSER"))
        conn.execute(text(f"ALTER SCHEMA {schema} OWNER TO {owner}"))

    def as_role(role: str) -> str:
        return pg_url.replace("://postgres@", f"://{role}@")

    runtime = None
    try:
        settings = Settings(data_dir=tmp_path / "var", engines="fake", worker_in_process=False,
                            database_url=as_role(app), database_owner_url=as_role(owner))
        clock = Clock()
        runtime = build_runtime(settings, policies=policies, engines=engines, clock=clock)
        practice = make_practice(runtime, clock)
        encounter = upload(runtime, practice.dr_ada, practice.maya.id, wav_bytes(), transcript=TRANSCRIPT)
        run_pipeline(runtime)
        assert reload(runtime, encounter).status == EncounterStatus.IN_REVIEW
        sign(runtime, practice.dr_ada, encounter, resolve_all(runtime, practice.dr_ada, encounter))
        assert reload(runtime, encounter).status == EncounterStatus.SIGNED
        for sql in ("ALTER TABLE audit_events DISABLE TRIGGER audit_events_no_change",
                    "DROP TRIGGER audit_events_no_change ON audit_events",
                    "ALTER TABLE note_versions DISABLE TRIGGER ALL",
                    "DELETE FROM audit_events", "UPDATE audit_events SET reason = 'x'", "TRUNCATE audit_events",
                    "DELETE FROM egress_events", "DROP TABLE cosignatures", "DELETE FROM alembic_version",
                    "CREATE TABLE intruder (x int)"):
            with pytest.raises(ProgrammingError, match=r"permission denied|must be owner"), runtime.engine.begin() as c:
                c.execute(text(sql))
        # Started again, it re-grants (a migration's new tables are covered) and still works.
        runtime.engine.dispose()
        runtime = build_runtime(settings, policies=policies, engines=engines, clock=clock)
        # Misconfigured: the app's role owning the tables is refused at start.
        runtime.engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f"ALTER TABLE {schema}.audit_events OWNER TO {app}"))
        with pytest.raises(RuntimeError, match="owns 1 table"):
            build_runtime(settings, policies=policies, engines=engines, clock=clock)
    finally:
        if runtime is not None:
            runtime.engine.dispose()
        with admin.connect() as conn:
            for role in (app, owner):
                conn.execute(text(f"REASSIGN OWNED BY {role} TO postgres"))
                conn.execute(text(f"DROP OWNED BY {role}"))
                conn.execute(text(f"DROP ROLE {role}"))
        admin.dispose()
