"""Database engine with durability settings, and the session factory."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, cast

from sqlalchemy import CursorResult, Delete, Engine, Update, create_engine, event, text
from sqlmodel import Session


def make_engine(url: str) -> Engine:
    """SQLite: WAL with synchronous=FULL (NORMAL can lose the last commits on power
    loss), foreign keys on, a busy timeout. PostgreSQL: as configured by its admin."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            # pysqlite's own transaction handling would defer BEGIN; we issue BEGIN IMMEDIATE
            # for writes in claim_job, so let SQLAlchemy manage the rest as usual.
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


def check_durability(engine: Engine) -> list[str]:
    """Start-up self-check: what is unsafe about this database's settings."""
    problems = []
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            if conn.execute(text("PRAGMA journal_mode")).scalar() != "wal":
                problems.append("SQLite journal_mode is not WAL")
            if conn.execute(text("PRAGMA synchronous")).scalar() != 2:
                problems.append("SQLite synchronous is not FULL")
        elif engine.dialect.name == "postgresql":
            for name in ("fsync", "synchronous_commit", "full_page_writes"):
                if conn.execute(text("SELECT current_setting(:n)"), {"n": name}).scalar() == "off":
                    problems.append(f"PostgreSQL {name} is off")
    return problems


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on error."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def changed_rows(session: Session, statement: Update | Delete) -> int:
    """Run a conditional UPDATE or DELETE and say how many rows it changed: the primitive every
    compare-and-set here is built on (a claim, a lease, a lock version, a spent code). The
    result of a data-changing statement is a cursor result, which is what carries the count."""
    return cast("CursorResult[Any]", session.execute(statement)).rowcount
