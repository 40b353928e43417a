"""bind every sealed value to its row

Values sealed before this migration (format S1) were bound to their data key and column
only, so a database writer could move a ciphertext to another row of the same client, or
to another client's row, and it would still open. Each is re-sealed in place as S2, bound
to the columns that identify its row (db/sealing/FORMAT.md), under the same data key.
Needs the master key, as 0005 did.

Revision ID: 0010
Revises: 0009
"""
from typing import Any

import sqlalchemy as sa
from alembic import context, op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

# table -> (binding columns, sealed columns); table and column names are constants, never input
SEALED: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "users": (("id",), ("totp_secret",)),
    "transcript_segments": (("transcript_id", "idx"), ("text", "words")),
    "pseudonymizations": (("encounter_id",), ("lines", "segment_texts", "surrogates")),
    "drafts": (("encounter_id",), ("ai_sections", "draft_flags", "removed")),
    "draft_sections": (("draft_id", "key"), ("ai_text", "text")),
    "draft_sentences": (("draft_id", "section_key", "idx"), ("text", "flags", "resolution_reason")),
    "note_versions": (("note_id", "version"), ("content",)),
    "cosignatures": (("note_version_id",), ("comment",)),
}


def upgrade() -> None:
    from scribe.db.migrations.triggers import restore_append_only_triggers, suspend_append_only_triggers
    from scribe.db.sealing import envelope

    bind = op.get_bind()
    todo = {t: n for t in SEALED
            if (n := bind.execute(sa.text(f"SELECT COUNT(*) FROM {t} WHERE "  # nosec B608 - constants
                                          + " OR ".join(f"{c} LIKE 'S1.%'" for c in SEALED[t][1]))).scalar())}
    if not todo:
        return
    vault = context.config.attributes.get("vault")
    if vault is None:
        raise RuntimeError("this database holds sealed values to re-seal: upgrade it with the master key loaded")
    opened = vault
    triggers = suspend_append_only_triggers(bind)
    keys: dict[int, Any] = {}

    class Keys:  # data keys read through this migration's connection (0005's may be uncommitted)
        vault_id: str = opened.vault_id

        def aead(self, key_id: int) -> Any:
            if key_id not in keys:
                keys[key_id] = opened.aead_in(bind, key_id)
            return keys[key_id]

    data_keys = Keys()

    for table, (binding_cols, columns) in SEALED.items():
        if table not in todo:
            continue
        rows = bind.execute(sa.text(f"SELECT id, {', '.join(binding_cols + columns)} FROM {table}")).all()  # nosec B608 - constants
        for row in rows:
            values = dict(zip(binding_cols + columns, row[1:], strict=False))
            binding = {c: values[c] for c in binding_cols}
            changed = {}
            for c in columns:
                token = values[c]
                if not isinstance(token, str) or not token.startswith(envelope.LEGACY_VALUE_PREFIX):
                    continue
                label = f"{table}.{c}"
                plaintext = envelope.open_legacy_value(data_keys, token, label)
                key_id = envelope.key_id_of(token)
                changed[c] = envelope.seal_value(vault.vault_id, key_id, data_keys.aead(key_id), plaintext, label, binding)
            if changed:
                assignments = ", ".join(f"{c} = :{c}" for c in changed)
                bind.execute(sa.text(f"UPDATE {table} SET {assignments} WHERE id = :row_id"),  # nosec B608 - constants
                             {**changed, "row_id": row[0]})
    restore_append_only_triggers(bind, triggers)


def downgrade() -> None:
    raise NotImplementedError("scribe migrations only go forward; restore a backup to go back")
