"""security: sealed clinical columns and data keys, second factor, throttling,
break-glass grants, Part 2 tags, legal holds

Existing clinical rows are sealed in place under their client's new data key; that
needs the master key (``scribe.db.migrate.upgrade(..., vault=...)``).

Revision ID: 0005
Revises: 0004
"""
import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import context, op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_TEXT = sqlmodel.sql.sqltypes.AutoString()
_TIME = sqlmodel.sql.sqltypes.UTCDateTime()

# table, column, is_json, kind, FROM ... that reaches the encounter as e
SEALED = [
    ("transcript_segments", "text", "transcript",
     "transcript_segments x JOIN transcripts t ON t.id = x.transcript_id JOIN encounters e ON e.id = t.encounter_id"),
    ("transcript_segments", "words", "transcript",
     "transcript_segments x JOIN transcripts t ON t.id = x.transcript_id JOIN encounters e ON e.id = t.encounter_id"),
    ("pseudonymizations", "lines", "transcript", "pseudonymizations x JOIN encounters e ON e.id = x.encounter_id"),
    ("pseudonymizations", "segment_texts", "transcript", "pseudonymizations x JOIN encounters e ON e.id = x.encounter_id"),
    ("pseudonymizations", "surrogates", "transcript", "pseudonymizations x JOIN encounters e ON e.id = x.encounter_id"),
    ("drafts", "ai_sections", "draft", "drafts x JOIN encounters e ON e.id = x.encounter_id"),
    ("drafts", "draft_flags", "draft", "drafts x JOIN encounters e ON e.id = x.encounter_id"),
    ("drafts", "removed", "draft", "drafts x JOIN encounters e ON e.id = x.encounter_id"),
    ("draft_sections", "ai_text", "draft",
     "draft_sections x JOIN drafts d ON d.id = x.draft_id JOIN encounters e ON e.id = d.encounter_id"),
    ("draft_sections", "text", "draft",
     "draft_sections x JOIN drafts d ON d.id = x.draft_id JOIN encounters e ON e.id = d.encounter_id"),
    ("draft_sentences", "text", "draft",
     "draft_sentences x JOIN drafts d ON d.id = x.draft_id JOIN encounters e ON e.id = d.encounter_id"),
    ("draft_sentences", "resolution_reason", "draft",
     "draft_sentences x JOIN drafts d ON d.id = x.draft_id JOIN encounters e ON e.id = d.encounter_id"),
    ("note_versions", "content", "record",
     "note_versions x JOIN notes n ON n.id = x.note_id JOIN encounters e ON e.id = n.encounter_id"),
    ("cosignatures", "comment", "record",
     "cosignatures x JOIN note_versions v ON v.id = x.note_version_id JOIN notes n ON n.id = v.note_id "
     "JOIN encounters e ON e.id = n.encounter_id"),
]
JSON_COLUMNS = {("transcript_segments", "words"), ("pseudonymizations", "lines"),
                ("pseudonymizations", "segment_texts"), ("pseudonymizations", "surrogates"),
                ("drafts", "ai_sections"), ("drafts", "draft_flags"), ("drafts", "removed"),
                ("note_versions", "content")}


def upgrade() -> None:
    op.create_table(
        "data_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("owner", _TEXT, nullable=False),
        sa.Column("kind", _TEXT, nullable=False),
        sa.Column("wrapped", _TEXT, nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("destroyed_at", _TIME, nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_data_keys_owner", "data_keys", ["owner"])
    op.create_table(
        "break_glass_grants",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("client_id", sa.Integer(), sa.ForeignKey("clients.id"), nullable=False),
        sa.Column("reason", _TEXT, nullable=False),
        sa.Column("starts_at", _TIME, nullable=False),
        sa.Column("ends_at", _TIME, nullable=False),
        sa.Column("reviewed_by", sa.Integer(), sa.ForeignKey("users.id"), nullable=True),
        sa.Column("reviewed_at", _TIME, nullable=True),
        sa.Column("review_note", _TEXT, nullable=False, server_default=""),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_break_glass_grants_user_id", "break_glass_grants", ["user_id"])
    op.create_index("ix_break_glass_grants_client_id", "break_glass_grants", ["client_id"])
    with op.batch_alter_table("users") as b:
        b.add_column(sa.Column("locked_until", _TIME, nullable=True))
        b.add_column(sa.Column("totp_secret", sa.Text(), nullable=True))
        b.add_column(sa.Column("totp_enrolled_at", _TIME, nullable=True))
        b.add_column(sa.Column("totp_last_step", sa.Integer(), nullable=False, server_default="0"))
        b.add_column(sa.Column("password_changed_at", _TIME, nullable=True))
    with op.batch_alter_table("login_sessions") as b:
        b.add_column(sa.Column("mfa_passed", sa.Boolean(), nullable=False, server_default=sa.false()))
        b.add_column(sa.Column("end_reason", _TEXT, nullable=False, server_default=""))
    with op.batch_alter_table("encounters") as b:
        b.add_column(sa.Column("part2", sa.Boolean(), nullable=False, server_default=sa.false()))
    with op.batch_alter_table("clients") as b:
        b.add_column(sa.Column("legal_hold", sa.Boolean(), nullable=False, server_default=sa.false()))
        b.add_column(sa.Column("legal_hold_reason", _TEXT, nullable=False, server_default=""))
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        for table, column in sorted(JSON_COLUMNS):
            op.execute(f"ALTER TABLE {table} ALTER COLUMN {column} TYPE TEXT USING {column}::text")
    _seal_existing_rows(bind)


def _seal_existing_rows(bind: sa.engine.Connection) -> None:
    from datetime import UTC, datetime

    from scribe.db.migrations.triggers import restore_append_only_triggers, suspend_append_only_triggers
    from scribe.db.sealing.envelope import Scope, seal_legacy_value

    vault = context.config.attributes.get("vault")
    todo = [(t, c, k, f) for t, c, k, f in SEALED
            if bind.execute(sa.text(f"SELECT COUNT(*) FROM {t} WHERE {c} IS NOT NULL")).scalar()]  # nosec B608 - constants
    if not todo:
        return
    if vault is None:
        raise RuntimeError("this database holds clinical text to encrypt: upgrade it with the master key loaded")
    sqlite_triggers = suspend_append_only_triggers(bind)
    now = datetime.now(UTC)
    for table, column, kind, source in todo:
        # Table and column names below are the constants in SEALED, never input.
        rows = bind.execute(sa.text(f"SELECT x.id, x.{column}, e.client_id, e.clinician_id FROM {source} "  # nosec B608 - constants
                                    f"WHERE x.{column} IS NOT NULL")).all()
        for row_id, value, client_id, clinician_id in rows:
            if str(value).startswith("S1."):
                continue
            owner = f"client:{client_id}" if client_id else f"meetings:{clinician_id}"
            key = vault.key_for(bind, Scope(owner, kind), now)
            sealed = seal_legacy_value(vault.vault_id, key[0], key[1], str(value).encode("utf-8"), f"{table}.{column}")
            bind.execute(sa.text(f"UPDATE {table} SET {column} = :v WHERE id = :i"),  # nosec B608 - constants
                         {"v": sealed, "i": row_id})
    restore_append_only_triggers(bind, sqlite_triggers)


def downgrade() -> None:
    raise NotImplementedError("scribe migrations only go forward; restore a backup to go back")
