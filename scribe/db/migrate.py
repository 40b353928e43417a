"""Run Alembic migrations programmatically (``scribe`` calls this at start-up)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

from scribe.db.sealing.vault import Vault

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))  # configparser interpolation
    return cfg


def upgrade(engine: Engine, target: str = "head", *, vault: Vault | None = None) -> None:
    """Upgrade to head. On SQLite, a migration that rebuilds a table (the only way SQLite
    can change a column) runs with foreign keys off and checks them afterwards, the
    procedure SQLite's documentation prescribes; the pragma cannot change inside a
    transaction, so it is set on the connection first."""
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    if vault is None:
        _refuse_unsealed_upgrade(engine)
    sqlite = engine.dialect.name == "sqlite"
    with engine.connect() as conn:
        if sqlite:
            conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
            conn.commit()
        try:
            with conn.begin():
                cfg.attributes["connection"] = conn
                cfg.attributes["vault"] = vault  # 0005 seals existing clinical rows with it
                command.upgrade(cfg, target)
                if sqlite:
                    broken = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                    if broken:
                        raise RuntimeError(f"migration left {len(broken)} broken foreign key(s); rolled back")
        finally:
            if sqlite:
                conn.exec_driver_sql("PRAGMA foreign_keys=ON")
                conn.commit()


CLINICAL_TABLES = ("transcript_segments", "pseudonymizations", "drafts", "note_versions")


def _refuse_unsealed_upgrade(engine: Engine) -> None:
    """Migration 0005 encrypts clinical rows in place and needs the master key for it.
    Check before anything runs: SQLite applies DDL outside the migration's transaction,
    so a refusal half-way would leave a half-upgraded schema."""
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy import func, inspect, select
    from sqlalchemy import table as sa_table

    with engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
        if current is None or current >= "0005":
            return
        present = set(inspect(conn).get_table_names())
        for table in CLINICAL_TABLES:
            if table in present and conn.execute(select(func.count()).select_from(sa_table(table))).scalar():
                raise RuntimeError("this database holds clinical text to encrypt: upgrade it with the master key "
                                   "loaded (scribe does this at start-up)")
