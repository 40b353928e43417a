"""egress ledger (append-only)

Revision ID: 0004
Revises: 0003
"""
import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_TEXT = sqlmodel.sql.sqltypes.AutoString()


def upgrade() -> None:
    op.create_table(
        "egress_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("destination", _TEXT, nullable=False),
        sa.Column("host", _TEXT, nullable=False),
        sa.Column("payload_sha256", _TEXT, nullable=False),
        sa.Column("payload_bytes", sa.Integer(), nullable=False),
        sa.Column("surrogates", sa.Integer(), nullable=False),
        sa.Column("gateway_found", sa.Integer(), nullable=False),
        sa.Column("policy_version", sa.Integer(), nullable=False),
        sa.Column("allowed", sa.Boolean(), nullable=False),
        sa.Column("reason", _TEXT, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        for verb in ("UPDATE", "DELETE"):
            op.execute(f"CREATE TRIGGER egress_events_no_{verb.lower()} BEFORE {verb} ON egress_events "
                       "BEGIN SELECT RAISE(ABORT, 'egress_events is append-only: the ledger never changes'); END")
    elif bind.dialect.name == "postgresql":
        op.execute("CREATE OR REPLACE FUNCTION egress_events_append_only() RETURNS trigger AS $$ BEGIN RAISE "
                   "EXCEPTION 'egress_events is append-only: the ledger never changes'; END; $$ LANGUAGE plpgsql")
        op.execute("CREATE TRIGGER egress_events_no_change BEFORE UPDATE OR DELETE ON egress_events "
                   "FOR EACH ROW EXECUTE FUNCTION egress_events_append_only()")
        op.execute("CREATE TRIGGER egress_events_no_truncate BEFORE TRUNCATE ON egress_events "
                   "FOR EACH STATEMENT EXECUTE FUNCTION egress_events_append_only()")


def downgrade() -> None:
    raise NotImplementedError("scribe migrations only go forward; restore a backup to go back")
