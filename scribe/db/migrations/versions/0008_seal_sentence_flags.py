"""seal draft_sentences.flags

A sentence's flags quote what the checks found ("suicidal ideation: denied ..."): clinical
text, stored unsealed until now. Existing rows are sealed in place under their client's
draft key (the master key must be loaded, as for 0005).

Revision ID: 0008
Revises: 0007
"""
import sqlalchemy as sa
from alembic import context, op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

SOURCE = "draft_sentences x JOIN drafts d ON d.id = x.draft_id JOIN encounters e ON e.id = d.encounter_id"


def upgrade() -> None:
    from datetime import UTC, datetime

    from scribe.db.sealing.envelope import Scope, seal_legacy_value

    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute("ALTER TABLE draft_sentences ALTER COLUMN flags TYPE TEXT USING flags::text")
    rows = bind.execute(sa.text(f"SELECT x.id, x.flags, e.client_id, e.clinician_id FROM {SOURCE} "  # nosec B608 - constant
                                "WHERE x.flags IS NOT NULL")).all()
    rows = [r for r in rows if not str(r[1]).startswith("S1.")]
    if not rows:
        return
    vault = context.config.attributes.get("vault")
    if vault is None:
        raise RuntimeError("this database holds clinical text to encrypt: upgrade it with the master key loaded")
    now = datetime.now(UTC)
    for row_id, value, client_id, clinician_id in rows:
        owner = f"client:{client_id}" if client_id else f"meetings:{clinician_id}"
        key = vault.key_for(bind, Scope(owner, "draft"), now)
        sealed = seal_legacy_value(vault.vault_id, key[0], key[1], str(value).encode("utf-8"), "draft_sentences.flags")
        bind.execute(sa.text("UPDATE draft_sentences SET flags = :v WHERE id = :i"), {"v": sealed, "i": row_id})


def downgrade() -> None:
    raise NotImplementedError("scribe migrations only go forward; restore a backup to go back")
