"""stage output keys: each pipeline stage records, in the transaction that marks it done, the
key (session, stage, input hash) of what it wrote; unique, so a redelivered stage commits
nothing twice

Revision ID: 0013
Revises: 0012
"""
import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as b:
        b.add_column(sa.Column("output_key", sqlmodel.sql.sqltypes.AutoString(), nullable=True))
        b.create_unique_constraint("uq_jobs_output_key", ["output_key"])


def downgrade() -> None:
    raise NotImplementedError("scribe migrations only go forward; restore a backup to go back")
