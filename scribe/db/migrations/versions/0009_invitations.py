"""invitations: single-use, expiring links with which a person sets their own password

An admin no longer sets anyone's password: a new account, a password reset and a second
factor reset each make an invitation, and the person it is for sets the password (and then
enrols the second factor) themselves. Only the link's sha256 is stored.

Revision ID: 0009
Revises: 0008
"""
import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_TEXT = sqlmodel.sql.sqltypes.AutoString()
_TIME = sqlmodel.sql.sqltypes.UTCDateTime()


def upgrade() -> None:
    op.create_table(
        "invitations",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=False, index=True),
        sa.Column("token_sha256", _TEXT, nullable=False, unique=True),
        sa.Column("purpose", _TEXT, nullable=False),
        sa.Column("created_by", sa.Integer(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("expires_at", _TIME, nullable=False),
        sa.Column("used_at", _TIME, nullable=True),
    )


def downgrade() -> None:
    op.drop_table("invitations")
