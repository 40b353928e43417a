"""a long session's notes, part by part, taken while it is recorded (sealed, with the transcript)

Revision ID: 0015
Revises: 0014
"""
import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("transcripts") as b:
        b.add_column(sa.Column("digests", sa.Text(), nullable=True))


def downgrade() -> None:
    raise NotImplementedError("scribe migrations only go forward; restore a backup to go back")
