"""consent details: who consented on the client's behalf, and the 42 CFR 2.31 elements of a
Part 2 disclosure consent, sealed under the client's form key (bound to the row); deletion
receipts for supervision meetings (no client)

An existing entry's free-text "on behalf of" moves into the sealed details and leaves the
plaintext column empty (a guardian's name is an identifier). Needs the master key when any
entry has one.

Revision ID: 0012
Revises: 0011
"""
import json
from datetime import UTC, datetime

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import context, op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

_TIME = sqlmodel.sql.sqltypes.UTCDateTime()


def upgrade() -> None:
    with op.batch_alter_table("consents") as b:
        b.add_column(sa.Column("details", sa.Text(), nullable=True))
    # Retention purges supervision meetings too: their receipts belong to no client.
    with op.batch_alter_table("deletion_receipts") as b:
        b.alter_column("client_id", existing_type=sa.Integer(), nullable=True)
        b.add_column(sa.Column("owner", sqlmodel.sql.sqltypes.AutoString(), nullable=False, server_default=""))
    bind = op.get_bind()
    consents = sa.table("consents", sa.column("id", sa.Integer()), sa.column("client_id", sa.Integer()),
                        sa.column("function", sa.Text()), sa.column("captured_at", _TIME),
                        sa.column("on_behalf_of", sa.Text()), sa.column("details", sa.Text()))
    rows = bind.execute(sa.select(consents).where(consents.c.on_behalf_of != "")).all()
    if not rows:
        return
    vault = context.config.attributes.get("vault")
    if vault is None:
        raise RuntimeError("this database holds consents to seal: upgrade it with the master key loaded")
    from scribe.db.sealing.envelope import Scope

    for row in rows:
        key = vault.key_for(bind, Scope(f"client:{row.client_id}", "form"), datetime.now(UTC))
        binding = {"client_id": row.client_id, "function": row.function, "captured_at": row.captured_at}
        sealed = vault.seal_value(key, json.dumps({"on_behalf_of": row.on_behalf_of}).encode(), "consents.details",
                                  binding)
        bind.execute(consents.update().where(consents.c.id == row.id).values(details=sealed, on_behalf_of=""))


def downgrade() -> None:
    raise NotImplementedError("scribe migrations only go forward; restore a backup to go back")
