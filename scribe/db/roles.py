"""PostgreSQL roles: an owner that migrates, and a restricted role the app runs as.

The owner role owns every table, so only it can alter a table, drop or disable a trigger.
The app role may read and write ordinary tables, only read and append the append-only
ones (the audit chain, signed versions, co-signatures, the egress ledger), and only read
the schema version. A compromised app process therefore cannot switch off the triggers
that keep signed records and the audit chain append-only, nor delete audit rows.
"""

from __future__ import annotations

from sqlalchemy import Engine, text

APPEND_ONLY = ("audit_events", "note_versions", "cosignatures", "egress_events")


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def grant_app_role(owner: Engine, app_role: str) -> None:
    """(Re)apply the app role's privileges on every table of the owner's schema; run after
    each migration, so that tables a migration adds are covered."""
    role = _ident(app_role)
    with owner.begin() as conn:
        schema = _ident(conn.execute(text("SELECT current_schema()")).scalar_one())
        conn.execute(text(f"GRANT USAGE ON SCHEMA {schema} TO {role}"))
        conn.execute(text(f"REVOKE ALL ON ALL TABLES IN SCHEMA {schema} FROM {role}"))
        conn.execute(text(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema} TO {role}"))
        tables = ", ".join(_ident(t) for t in APPEND_ONLY)
        conn.execute(text(f"REVOKE UPDATE, DELETE, TRUNCATE ON {tables} FROM {role}"))
        conn.execute(text(f"REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON alembic_version FROM {role}"))
        conn.execute(text(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {schema} TO {role}"))


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
