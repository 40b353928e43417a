"""co-signatures, supervision meetings, draft change log, licensure hours

Revision ID: 0002
Revises: 0001
"""
import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_TEXT = sqlmodel.sql.sqltypes.AutoString()
_TIME = sqlmodel.sql.sqltypes.UTCDateTime()


def upgrade() -> None:
    # Supervision meetings have no client: the column becomes nullable (SQLite rebuilds the
    # table; scribe.db.migrate turns foreign keys off around it, as SQLite's docs require).
    with op.batch_alter_table("encounters") as batch:
        batch.add_column(sa.Column("kind", _TEXT, nullable=False, server_default="therapy"))
        batch.alter_column("client_id", existing_type=sa.Integer(), nullable=True)

    with op.batch_alter_table("note_versions") as batch:
        batch.add_column(sa.Column("edit_distance", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("flags_confirmed", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("requires_cosign", sa.Boolean(), nullable=False, server_default=sa.false()))

    op.create_table(
        "encounter_participants",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("encounter_id", sa.Integer(), sa.ForeignKey("encounters.id"), nullable=False),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("consent_recorded_by", sa.Integer(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("consent_recorded_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("encounter_id", "user_id"),
    )
    op.create_index("ix_encounter_participants_encounter_id", "encounter_participants", ["encounter_id"])
    op.create_index("ix_encounter_participants_user_id", "encounter_participants", ["user_id"])

    op.create_table(
        "cosignatures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("note_version_id", sa.Integer(), sa.ForeignKey("note_versions.id"), nullable=False),
        sa.Column("outcome", _TEXT, nullable=False),
        sa.Column("supervisor_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("signer_name", _TEXT, nullable=False),
        sa.Column("signer_credential", _TEXT, nullable=False),
        sa.Column("signer_licence_number", _TEXT, nullable=False),
        sa.Column("at", _TIME, nullable=False),
        sa.Column("meaning", _TEXT, nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("content_sha256", _TEXT, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_cosignatures_note_version_id", "cosignatures", ["note_version_id"], unique=True)

    op.create_table(
        "draft_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("draft_id", sa.Integer(), sa.ForeignKey("drafts.id"), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("actor_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("summary", _TEXT, nullable=False),
        sa.Column("at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_draft_changes_draft_id", "draft_changes", ["draft_id"])

    op.create_table(
        "hours_entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("category", _TEXT, nullable=False),
        sa.Column("hours", sa.Float(), nullable=False),
        sa.Column("encounter_id", sa.Integer(), sa.ForeignKey("encounters.id"), nullable=False),
        sa.Column("note_version_id", sa.Integer(), sa.ForeignKey("note_versions.id"), nullable=False),
        sa.Column("occurred_at", _TIME, nullable=False),
        sa.Column("recorded_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("user_id", "encounter_id", "category"),
    )
    op.create_index("ix_hours_entries_user_id", "hours_entries", ["user_id"])
    op.create_index("ix_hours_entries_encounter_id", "hours_entries", ["encounter_id"])

    _append_only("cosignatures")
    _append_only("note_versions")  # SQLite's batch rebuild above dropped the table's triggers


def _append_only(table: str) -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        for verb in ("UPDATE", "DELETE"):
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_{verb.lower()}")
            op.execute(
                f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{table} is append-only: signed records never change'); END"
            )
    elif bind.dialect.name == "postgresql":
        op.execute(
            f"CREATE OR REPLACE FUNCTION {table}_append_only() RETURNS trigger AS $$ "
            f"BEGIN RAISE EXCEPTION '{table} is append-only: signed records never change'; END; "
            "$$ LANGUAGE plpgsql"
        )
        op.execute(f"DROP TRIGGER IF EXISTS {table}_no_change ON {table}")
        op.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
        op.execute(
            f"CREATE TRIGGER {table}_no_change BEFORE UPDATE OR DELETE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION {table}_append_only()"
        )
        op.execute(
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {table}_append_only()"
        )


def downgrade() -> None:
    raise NotImplementedError("scribe migrations only go forward; restore a backup to go back")
