"""login throttle per client address

Failed log-ins are counted per account (users.failed_logins, now incremented atomically)
and per client address in this table, so that one address guessing many names is slowed
without reading a single password hash, and no lock lasts for good.

Revision ID: 0007
Revises: 0006
"""
import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "login_throttle",
        sa.Column("address", sqlmodel.sql.sqltypes.AutoString(), primary_key=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("locked_until", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("login_throttle")
