"""Upgrading a populated SQLite database keeps every row and every append-only trigger
(0002 rebuilds the encounters table, which SQLite can only do with foreign keys off)."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.exc import DatabaseError
from sqlmodel import Session

from scribe.db.engine import make_engine
from scribe.db.migrate import upgrade
from scribe.db.sealing import Vault
from scribe.db.tables import NoteVersion

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC).isoformat(sep=" ")


def _clinic_user_client(run) -> None:
    """The rows every old database has: one clinic, one clinician (id 1), one client (id 1)."""
    run("INSERT INTO clinics (id, name) VALUES (1, 'Old Practice')")
    run("INSERT INTO users (id, clinic_id, username, full_name, role, credential, licence_number, licence_status,"
        " licence_type, password_hash, active, failed_logins, created_at) VALUES (1, 1, 'a', 'A', 'clinician', '',"
        f" '', 'licensed', '', 'x', 1, 0, '{NOW}')")
    run("INSERT INTO clients (id, clinic_id, clinician_id, given_name, family_name, preferred_name, mrn, address,"
        " city, phone, email, employer, school, contacts, created_at) VALUES (1, 1, 1, 'G', 'F', '', 'M1', '', '',"
        f" '', '', '', '', '[]', '{NOW}')")


def test_an_existing_database_upgrades_without_losing_a_row(tmp_path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    upgrade(engine, "0001")
    with engine.begin() as conn:
        run = conn.exec_driver_sql
        _clinic_user_client(run)
        run("INSERT INTO encounters (id, clinic_id, client_id, clinician_id, note_type, occurred_at, status,"
            f" status_reason, created_at, updated_at) VALUES (7, 1, 1, 1, 'soap', '{NOW}', 'signed', '', '{NOW}', '{NOW}')")
        run(f"INSERT INTO notes (id, encounter_id, clinician_id, created_at) VALUES (1, 7, 1, '{NOW}')")
        run("INSERT INTO note_versions (id, note_id, version, kind, note_type, content, content_sha256, signer_id,"
            " signer_name, signer_credential, signer_licence_number, signed_at, meaning, zero_edit, ai_chars_kept)"
            f" VALUES (1, 1, 1, 'original', 'soap', '{{}}', 'abc', 1, 'A', '', '', '{NOW}', 'm', 0, 0.5)")
    with pytest.raises(RuntimeError, match="master key"):
        upgrade(engine)  # clinical rows to encrypt and no key: nothing changes
    vault = Vault(secrets.token_bytes(32), engine)
    upgrade(engine, vault=vault)
    with engine.connect() as conn:
        raw = conn.exec_driver_sql("SELECT content FROM note_versions").scalar()
        assert raw.startswith("S1.") and "{}" not in raw  # sealed in place under the client's record key
        assert conn.exec_driver_sql("SELECT owner, kind FROM data_keys").all() == [("client:1", "record")]
    with Session(engine) as s:
        assert s.get(NoteVersion, 1).content == {}
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT kind, client_id, status FROM encounters").one() == ("therapy", 1, "signed")
        assert conn.exec_driver_sql("SELECT content_sha256, requires_cosign FROM note_versions").one() == ("abc", 0)
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1  # back on after the rebuild
        assert conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall() == []
    columns = {c["name"]: c for c in inspect(engine).get_columns("encounters")}
    assert columns["client_id"]["nullable"] is True
    for sql in ("UPDATE note_versions SET meaning = 'x'", "DELETE FROM note_versions"):
        with pytest.raises(DatabaseError, match="append-only"), engine.begin() as conn:
            conn.execute(text(sql))
    upgrade(engine, vault=vault)  # idempotent at head
    engine.dispose()


def test_sentence_flags_written_before_0008_are_sealed_in_place(tmp_path) -> None:
    """Flags quote what the checks found ("suicidal ideation: denied ..."): clinical text."""
    import json

    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    vault = Vault(secrets.token_bytes(32), engine)
    upgrade(engine, "0007", vault=vault)
    flags = [{"kind": "risk", "detail": "CANARY-denies-thoughts-of-ending-it"}]
    with engine.begin() as conn:
        run = conn.exec_driver_sql
        _clinic_user_client(run)
        run("INSERT INTO encounters (id, clinic_id, client_id, clinician_id, note_type, occurred_at, status,"
            f" status_reason, created_at, updated_at) VALUES (7, 1, 1, 1, 'soap', '{NOW}', 'in_review', '', '{NOW}',"
            f" '{NOW}')")
        run("INSERT INTO drafts (id, encounter_id, note_type, template_version, model, status, ai_sections,"
            " prompt_tokens, generated_tokens, seconds_taken, draft_flags, removed, lock_version, created_at,"
            f" updated_at) VALUES (1, 7, 'soap', 1, 'm', 'ready', 'x', 0, 0, 0, 'x', 'x', 1, '{NOW}', '{NOW}')")
        conn.execute(text("INSERT INTO draft_sentences (id, draft_id, section_key, idx, text, evidence, support,"
                          " flags, resolution, resolution_reason) VALUES (1, 1, 'subjective', 0, 'x', '[]', 0,"
                          " :flags, '', '')"), {"flags": json.dumps(flags)})
    upgrade(engine, vault=vault)
    with engine.connect() as conn:
        raw = conn.exec_driver_sql("SELECT flags FROM draft_sentences").scalar()
    assert raw.startswith("S1.") and "CANARY" not in raw
    assert json.loads(vault.open(raw, "draft_sentences.flags")) == flags
    engine.dispose()
