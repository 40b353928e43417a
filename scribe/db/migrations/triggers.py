"""For migrations that re-seal signed versions and co-signatures in place (their content is
unchanged, only its encryption): lift the triggers that refuse UPDATE on them, and put
them back in the same transaction. Table and trigger names are constants, never input."""

from __future__ import annotations

import sqlalchemy as sa

APPEND_ONLY = ("note_versions", "cosignatures")


def suspend_append_only_triggers(bind: sa.engine.Connection) -> list[str]:
    """Returns the SQLite triggers' definitions, for ``restore_append_only_triggers``."""
    if bind.dialect.name == "postgresql":
        for table in APPEND_ONLY:
            bind.execute(sa.text(f"ALTER TABLE {table} DISABLE TRIGGER {table}_no_change"))
        return []
    found = bind.execute(sa.text("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND name IN "
                                 "('note_versions_no_update', 'cosignatures_no_update')")).all()
    for name, _ in found:
        bind.execute(sa.text(f"DROP TRIGGER {name}"))
    return [sql for _, sql in found]


def restore_append_only_triggers(bind: sa.engine.Connection, sqlite_triggers: list[str]) -> None:
    if bind.dialect.name == "postgresql":
        for table in APPEND_ONLY:
            bind.execute(sa.text(f"ALTER TABLE {table} ENABLE TRIGGER {table}_no_change"))
    for sql in sqlite_triggers:
        bind.execute(sa.text(sql))
