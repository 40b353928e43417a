"""audit head: one row every append locks, and a unique previous hash

Appends to the audit chain read the last event and link to it. Without a lock two
concurrent appends read the same last event and fork the chain. Every append now first
updates this one row (a row lock on PostgreSQL, the write lock on SQLite, both held to
commit), and ``prev_hash`` is unique from here on, so a fork cannot be stored even by a writer that
bypasses the service.

Revision ID: 0006
Revises: 0005
"""
import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("appends", sa.BigInteger(), nullable=False),
    )
    bind = op.get_bind()
    count = bind.execute(sa.text("SELECT COUNT(*) FROM audit_events")).scalar() or 0
    bind.execute(sa.text("INSERT INTO audit_head (id, appends) VALUES (1, :n)"), {"n": count})
    # New appends can never fork. Rows written before this version are left as they are
    # (they are signed history): where an older version forked the chain under load,
    # `scribe audit verify` still reports it, and the unique index starts after them.
    last = bind.execute(sa.text("SELECT COALESCE(MAX(id), 0) FROM audit_events")).scalar() or 0
    after = sa.text(f"id > {int(last)}")
    op.create_index("ux_audit_events_prev_hash", "audit_events", ["prev_hash"], unique=True,
                    sqlite_where=after, postgresql_where=after)


def downgrade() -> None:
    op.drop_index("ux_audit_events_prev_hash", table_name="audit_events")
    op.drop_table("audit_head")
