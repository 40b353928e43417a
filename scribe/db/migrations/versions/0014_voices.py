"""voices and live transcription: how many people speak in a session (speaker turns cluster into
that many voices); a clinician's enrolled voice (a sealed 256-number voice embedding, so which
voice is the clinician is not a guess); how far live transcription has committed a recording, with
its running voices (sealed); and how much of its audio a transcription has done

Revision ID: 0014
Revises: 0013
"""
import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("encounters") as b:
        b.add_column(sa.Column("voices", sa.Integer(), nullable=False, server_default="2"))
    with op.batch_alter_table("users") as b:
        b.add_column(sa.Column("voice", sa.Text(), nullable=True))
        b.add_column(sa.Column("voice_enrolled_at", sa.DateTime(), nullable=True))
    with op.batch_alter_table("transcripts") as b:
        b.add_column(sa.Column("live_until", sa.Float(), nullable=False, server_default="0"))
        b.add_column(sa.Column("live_voices", sa.Text(), nullable=True))
    with op.batch_alter_table("jobs") as b:
        b.add_column(sa.Column("progress", sa.Float(), nullable=False, server_default="0"))


def downgrade() -> None:
    raise NotImplementedError("scribe migrations only go forward; restore a backup to go back")
