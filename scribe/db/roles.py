"""PostgreSQL roles: an owner that migrates, and a restricted role the app runs as.

The owner role owns every table, so only it can alter a table, drop or disable a trigger.
The app role may read and write ordinary tables, only read and append the append-only
ones (the audit chain, signed versions, co-signatures, the egress ledger), and only read
the schema version. A compromised app process therefore cannot switch off the triggers
that keep signed records and the audit chain append-only, nor delete audit rows.
"""

from __future__ import annotations

from sqlalchemy import Connection, Engine, text

APPEND_ONLY = ("audit_events", "note_versions", "cosignatures", "egress_events")


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _ddl(conn: Connection, template: str, **names: str) -> None:
    """GRANT and REVOKE take no bound parameters: every name goes in double-quoted."""
    conn.execute(
        text(template.format(**{k: _ident(v) for k, v in names.items()}))
    )  # nosemgrep: scribe-sql-built-from-strings - quoted identifiers only


def grant_app_role(owner: Engine, app_role: str) -> None:
    """(Re)apply the app role's privileges on every table of the owner's schema; run after
    each migration, so that tables a migration adds are covered."""
    with owner.begin() as conn:
        names = {"schema": conn.execute(text("SELECT current_schema()")).scalar_one(), "role": app_role}
        _ddl(conn, "GRANT USAGE ON SCHEMA {schema} TO {role}", **names)
        _ddl(conn, "REVOKE ALL ON ALL TABLES IN SCHEMA {schema} FROM {role}", **names)
        _ddl(conn, "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema} TO {role}", **names)
        for table in APPEND_ONLY:
            _ddl(conn, "REVOKE UPDATE, DELETE, TRUNCATE ON {table} FROM {role}", table=table, role=app_role)
        _ddl(conn, "REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON alembic_version FROM {role}", role=app_role)
        _ddl(conn, "GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {schema} TO {role}", **names)


def ownership_problems(app: Engine) -> list[str]:
    """With a separate owner configured, the app's own role must own none of the tables."""
    with app.connect() as conn:
        me = conn.execute(text("SELECT current_user")).scalar_one()
        owned = conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = current_schema() "
                                  "AND tableowner = current_user ORDER BY tablename")).scalars().all()
    if owned:
        return [f"the app's database role {me} owns {len(owned)} table(s) (e.g. {owned[0]}): it could drop the "
                "append-only triggers; give the tables to the owner role (REASSIGN OWNED BY ...)"]
    return []
