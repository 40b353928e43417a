"""consent ledger (scanned forms), transcription switches, recording chunks, deletion receipts

Revision ID: 0003
Revises: 0002
"""
import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_TEXT = sqlmodel.sql.sqltypes.AutoString()
_TIME = sqlmodel.sql.sqltypes.UTCDateTime()


def upgrade() -> None:
    with op.batch_alter_table("consents") as batch:
        batch.add_column(sa.Column("scan_path", _TEXT, nullable=False, server_default=""))
        batch.add_column(sa.Column("scan_sha256", _TEXT, nullable=False, server_default=""))

    op.create_table(
        "transcription_switches",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("scope", _TEXT, nullable=False),
        sa.Column("clinic_id", sa.Integer(), sa.ForeignKey("clinics.id"), nullable=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("note_types", sa.JSON(), nullable=False),
        sa.Column("set_by", sa.Integer(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("set_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_transcription_switches_clinic_id", "transcription_switches", ["clinic_id"])
    op.create_index("ix_transcription_switches_user_id", "transcription_switches", ["user_id"])

    op.create_table(
        "recording_chunks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("encounter_id", sa.Integer(), sa.ForeignKey("encounters.id"), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("path", _TEXT, nullable=False),
        sa.Column("bytes", sa.Integer(), nullable=False),
        sa.Column("sha256", _TEXT, nullable=False),
        sa.Column("received_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("encounter_id", "seq"),
    )
    op.create_index("ix_recording_chunks_encounter_id", "recording_chunks", ["encounter_id"])

    op.create_table(
        "deletion_receipts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.Integer(), sa.ForeignKey("clients.id"), nullable=False),
        sa.Column("rule", _TEXT, nullable=False),
        sa.Column("function", _TEXT, nullable=False),
        sa.Column("at", _TIME, nullable=False),
        sa.Column("by", sa.Integer(), sa.ForeignKey("users.id"), nullable=True),
        sa.Column("items", sa.JSON(), nullable=False),
        sa.Column("receipt_sha256", _TEXT, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_deletion_receipts_client_id", "deletion_receipts", ["client_id"])


def downgrade() -> None:
    raise NotImplementedError("scribe migrations only go forward; restore a backup to go back")
