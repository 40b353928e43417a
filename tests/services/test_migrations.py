"""Upgrading a populated SQLite database keeps every row and every append-only trigger
(0002 rebuilds the encounters table, which SQLite can only do with foreign keys off)."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import inspect, text
from sqlalchemy.exc import DatabaseError
from sqlmodel import Session

from scribe.db.engine import make_engine
from scribe.db.migrate import upgrade
from scribe.db.sealing.columns import install
from scribe.db.sealing.vault import Vault
from scribe.db.tables import NoteVersion

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC).isoformat(sep=" ")


def _clinic_user_client(run: Callable[[str], object]) -> None:
    """The rows every old database has: one clinic, one clinician (id 1), one client (id 1)."""
    run("INSERT INTO clinics (id, name) VALUES (1, 'Old Practice')")
    run("INSERT INTO users (id, clinic_id, username, full_name, role, credential, licence_number, licence_status,"
        " licence_type, password_hash, active, failed_logins, created_at) VALUES (1, 1, 'a', 'A', 'clinician', '',"
        f" '', 'licensed', '', 'x', 1, 0, '{NOW}')")
    run("INSERT INTO clients (id, clinic_id, clinician_id, given_name, family_name, preferred_name, mrn, address,"
        " city, phone, email, employer, school, contacts, created_at) VALUES (1, 1, 1, 'G', 'F', '', 'M1', '', '',"
        f" '', '', '', '', '[]', '{NOW}')")


def test_an_existing_database_upgrades_without_losing_a_row(tmp_path: Path) -> None:
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
    install(engine, vault)
    upgrade(engine, vault=vault)
    with engine.connect() as conn:
        raw = str(conn.exec_driver_sql("SELECT content FROM note_versions").scalar())
        assert raw.startswith("S2.") and "{}" not in raw  # sealed in place under the client's record key, row-bound
        assert conn.exec_driver_sql("SELECT owner, kind FROM data_keys ORDER BY id").all() == [
            ("client:1", "record"), ("client:1", "identity")]  # the chart's identity is sealed by 0011
    with Session(engine) as s:
        assert s.get_one(NoteVersion, 1).content == {}
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


def test_sentence_flags_written_before_0008_are_sealed_in_place(tmp_path: Path) -> None:
    """Flags quote what the checks found ("suicidal ideation: denied ..."): clinical text."""

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
        raw = str(conn.exec_driver_sql("SELECT flags FROM draft_sentences").scalar())
    assert raw.startswith("S2.") and "CANARY" not in raw
    binding: dict[str, int | str] = {"draft_id": 1, "section_key": "subjective", "idx": 0}
    assert json.loads(vault.open_value(raw, "draft_sentences.flags", binding)) == flags
    engine.dispose()


def test_0010_binds_every_value_sealed_before_it_to_its_row(tmp_path: Path) -> None:
    """Values sealed as S1 (key and column only) are re-sealed as S2 in place, bound to their
    row, signed versions included (their triggers are lifted only inside the migration);
    the content and its signature hash are unchanged."""
    from scribe.db.sealing import envelope
    from scribe.db.tables import DraftSentence

    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    vault = Vault(secrets.token_bytes(32), engine)
    install(engine, vault)
    upgrade(engine, "0009", vault=vault)
    content = {"sections": [{"key": "subjective", "title": "S", "text": "CANARY-slept-well"}]}
    with engine.begin() as conn:
        run = conn.exec_driver_sql
        _clinic_user_client(run)
        run("INSERT INTO encounters (id, clinic_id, client_id, clinician_id, note_type, occurred_at, status,"
            f" status_reason, created_at, updated_at) VALUES (7, 1, 1, 1, 'soap', '{NOW}', 'signed', '', '{NOW}',"
            f" '{NOW}')")
        run(f"INSERT INTO notes (id, encounter_id, clinician_id, created_at) VALUES (1, 7, 1, '{NOW}')")
        record_key = vault.key_for(conn, envelope.Scope("client:1", "record"), datetime.now(UTC))
        draft_key = vault.key_for(conn, envelope.Scope("client:1", "draft"), datetime.now(UTC))

        def legacy(key: tuple[int, AESGCM], value: str, label: str) -> str:
            return envelope.seal_legacy_value(vault.vault_id, key[0], key[1], value.encode(), label)

        conn.execute(text("INSERT INTO note_versions (id, note_id, version, kind, note_type, content, content_sha256,"
                          " signer_id, signer_name, signer_credential, signer_licence_number, signed_at, meaning,"
                          " zero_edit, ai_chars_kept, edit_distance, flags_confirmed, requires_cosign) VALUES (1, 1,"
                          " 1, 'original', 'soap', :c, 'abc', 1, 'A', '', '', :t, 'm', 0, 0.5, 0, 0, 0)"),
                     {"c": legacy(record_key, json.dumps(content), "note_versions.content"), "t": NOW})
        conn.execute(text("INSERT INTO drafts (id, encounter_id, note_type, template_version, model, status,"
                          " ai_sections, prompt_tokens, generated_tokens, seconds_taken, draft_flags, removed,"
                          " lock_version, created_at, updated_at) VALUES (1, 7, 'soap', 1, 'm', 'signed', :a, 0, 0,"
                          " 0, :f, :r, 1, :t, :t)"),
                     {"a": legacy(draft_key, "{}", "drafts.ai_sections"), "f": legacy(draft_key, "[]", "drafts.draft_flags"),
                      "r": legacy(draft_key, "[]", "drafts.removed"), "t": NOW})
        conn.execute(text("INSERT INTO draft_sentences (id, draft_id, section_key, idx, text, evidence, support,"
                          " flags, resolution, resolution_reason) VALUES (1, 1, 'subjective', 3, :t, '[]', 0, :f,"
                          " '', :r)"),
                     {"t": legacy(draft_key, "CANARY-slept-well", "draft_sentences.text"),
                      "f": legacy(draft_key, "[]", "draft_sentences.flags"),
                      "r": legacy(draft_key, "", "draft_sentences.resolution_reason")})
    upgrade(engine, vault=vault)
    with engine.connect() as conn:
        tokens = [conn.exec_driver_sql("SELECT content FROM note_versions").scalar(),
                  *conn.exec_driver_sql("SELECT text, flags, resolution_reason FROM draft_sentences").one()]
        assert all(t.startswith("S2.") for t in tokens)
        assert conn.exec_driver_sql("SELECT content_sha256 FROM note_versions").scalar() == "abc"
    with Session(engine) as s:
        assert s.get_one(NoteVersion, 1).content == content
        assert s.get_one(DraftSentence, 1).text == "CANARY-slept-well"
    for sql in ("UPDATE note_versions SET meaning = 'x'", "DELETE FROM note_versions"):  # triggers back
        with pytest.raises(DatabaseError, match="append-only"), engine.begin() as conn:
            conn.execute(text(sql))
    engine.dispose()
