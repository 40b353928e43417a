"""S18 and property 5: clinical content is sealed at rest. Canary strings seeded into a
transcript, the draft, the signed note, a co-signature comment, a recording and a
scanned consent form are readable through the app and found nowhere in plaintext in the
raw database file, its WAL, the audio and form stores or the temp folder. Destroying a
client's keys makes their artefacts unreadable (crypto-shredding)."""

from __future__ import annotations

import base64
import io
import secrets
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlmodel import col, select

from scribe.config import Settings
from scribe.db.engine import session_scope
from scribe.db.sealing import envelope
from scribe.db.sealing.columns import vault_for
from scribe.db.sealing.envelope import Scope, SealingError, Shredded
from scribe.db.sealing.vault import Vault
from scribe.db.tables import DataKey, DraftSection, NoteVersion, Pseudonymization, Recording, TranscriptSegment
from scribe.policies import Policies
from scribe.runtime import Runtime, build_runtime
from scribe.services import consent, purge
from scribe.services.files import recordings
from tests.conftest import Clock, Practice, wav_bytes
from tests.helpers import TRANSCRIPT, media, run_pipeline, upload
from tests.services.test_review import resolve_all, sign


def canaries() -> list[str]:
    return [f"zq{secrets.token_hex(5)}canary" for _ in range(4)]


def raw_files(runtime: Runtime) -> list[Path]:
    data_dir = runtime.settings.data_dir
    # The fake transcriber's "<recording>.txt" sidecars are the test's own input, not the app's.
    return [p for p in data_dir.rglob("*") if p.is_file() and "keys" not in p.parts and not p.name.endswith(".txt")]


def hits(runtime: Runtime, needles: list[bytes]) -> list[str]:
    found = []
    for path in raw_files(runtime):
        blob = path.read_bytes()
        low = blob.lower()
        for needle in needles:
            if needle.lower() in low:
                found.append(f"{path.name}: {needle[:20]!r}")
    return found


def test_no_canary_is_stored_in_plaintext_anywhere(runtime: Runtime, practice: Practice, clock: Clock) -> None:
    words = canaries()
    transcript = TRANSCRIPT + f"\nCLIENT: The code word is {words[0]} and {words[1]}."
    audio = wav_bytes(seconds=3, freq=331.0)
    encounter = upload(runtime, practice.dr_ada, practice.maya.id, audio, transcript=transcript)
    run_pipeline(runtime)
    version = sign(runtime, practice.dr_ada, encounter, resolve_all(runtime, practice.dr_ada, encounter))
    scan = b"%PDF-1.4 " + words[2].encode()
    with session_scope(runtime.engine) as s:
        consent.record_consent(s, runtime.audit_key, runtime.policies, actor=practice.dr_ada, client_id=practice.maya.id or 0,
                               functions=["transcribe"], effective_from=clock(), expires_at=None,
                               forms_dir=runtime.settings.forms_dir, scan=scan, now=clock())
    # The app reads everything back.
    with session_scope(runtime.engine) as s:
        segments = " ".join(x.text for x in s.exec(select(TranscriptSegment)))
        assert words[0] in segments and words[1] in segments
        assert any(words[0] in line for line in s.exec(select(Pseudonymization)).one().lines)
        assert "Riverside Bakery" in repr(s.get_one(NoteVersion, version.id).content)
        assert s.exec(select(DraftSection)).first() is not None
        rec = s.exec(select(Recording)).one()
    assert recordings(runtime.recordings_dir).read(runtime.engine, rec.path) == audio
    # The raw files hold none of it: database, WAL and SHM, recordings, forms, temp.
    with runtime.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
    assert (runtime.settings.data_dir / "scribe.db-wal").exists()
    pcm = audio[44:44 + 64]  # the first samples of the recording
    needles = [w.encode() for w in words[:3]] + [pcm, b"%PDF-1.4", b"Riverside Bakery was busy", b"breathing exercise"]
    assert hits(runtime, needles) == []
    with runtime.engine.connect() as conn:  # a sentence's flags quote what was found: sealed too
        flags = conn.execute(text("SELECT flags FROM draft_sentences")).scalars().all()
    assert flags and all(f.startswith("S2.") for f in flags)
    # ...and the keys are not in the database: neither raw nor base64.
    master = runtime.settings.master_key_path.read_bytes()
    db = (runtime.settings.data_dir / "scribe.db").read_bytes() + (runtime.settings.data_dir / "scribe.db-wal").read_bytes()
    assert master not in db and base64.b64encode(master) not in db
    assert oct(runtime.settings.master_key_path.stat().st_mode & 0o777) == "0o600"


def test_the_scan_would_find_plaintext_if_it_were_there(runtime: Runtime, practice: Practice) -> None:
    """The check above can fail: a value written around the sealing layer is found."""
    word = canaries()[0]
    with sqlite3.connect(runtime.settings.data_dir / "scribe.db") as raw:
        raw.execute("CREATE TABLE IF NOT EXISTS leak (t TEXT)")
        raw.execute("INSERT INTO leak VALUES (?)", (word,))
    assert hits(runtime, [word.encode()])


def test_a_bare_value_cannot_reach_a_sealed_column(runtime: Runtime, practice: Practice, wav: bytes) -> None:
    encounter = upload(runtime, practice.dr_ada, practice.maya.id, wav, transcript=TRANSCRIPT)
    run_pipeline(runtime)
    with pytest.raises(Exception, match="sealed"), session_scope(runtime.engine) as s:
        s.execute(TranscriptSegment.__table__.update().values(text="plaintext"))  # type: ignore[attr-defined]
    with session_scope(runtime.engine) as s:
        assert "plaintext" not in [x.text for x in s.exec(select(TranscriptSegment))]
    assert encounter.id


def test_tampering_with_ciphertext_or_moving_it_between_columns_is_refused(
    runtime: Runtime, practice: Practice, wav: bytes
) -> None:
    upload(runtime, practice.dr_ada, practice.maya.id, wav, transcript=TRANSCRIPT)
    run_pipeline(runtime)
    with runtime.engine.begin() as conn:
        text_value, words = conn.execute(text("SELECT text, words FROM transcript_segments LIMIT 1")).one()
        flipped = text_value[:-6] + ("A" if text_value[-6] != "A" else "B") + text_value[-5:]
        conn.execute(text("UPDATE transcript_segments SET text = :t WHERE id = (SELECT MIN(id) FROM transcript_segments)"),
                     {"t": flipped})
    with pytest.raises(SealingError), session_scope(runtime.engine) as s:
        list(s.exec(select(TranscriptSegment)))
    with runtime.engine.begin() as conn:  # a valid ciphertext from another column of the row does not open here
        conn.execute(text("UPDATE transcript_segments SET text = :t WHERE id = (SELECT MIN(id) FROM transcript_segments)"),
                     {"t": words})
    with pytest.raises(SealingError), session_scope(runtime.engine) as s:
        list(s.exec(select(TranscriptSegment)))


def _first_segment(runtime: Runtime) -> tuple[str, dict[str, int]]:
    with runtime.engine.connect() as conn:
        token, transcript_id, idx = conn.execute(text(
            "SELECT text, transcript_id, idx FROM transcript_segments ORDER BY id LIMIT 1")).one()
    return token, {"transcript_id": transcript_id, "idx": idx}


def test_another_master_key_opens_nothing(runtime: Runtime, practice: Practice, wav: bytes) -> None:
    upload(runtime, practice.dr_ada, practice.maya.id, wav, transcript=TRANSCRIPT)
    run_pipeline(runtime)
    token, binding = _first_segment(runtime)
    from sqlalchemy import create_engine

    stranger = Vault(secrets.token_bytes(32), create_engine("sqlite://"))
    with pytest.raises(SealingError, match="another master key"):
        stranger.open_value(token, "transcript_segments.text", binding)
    assert vault_for(runtime.engine).open_value(token, "transcript_segments.text", binding)


def test_a_value_moved_to_another_row_of_the_same_client_does_not_open(runtime: Runtime, practice: Practice, wav: bytes) -> None:
    """Row binding (issue 19.3): the same client's data key seals both sessions' transcripts,
    so only the row binding tells a moved ciphertext apart. Swapping two segments' text
    within one transcript, or between two sessions, is refused on read."""
    for _ in range(2):
        upload(runtime, practice.dr_ada, practice.maya.id, wav, transcript=TRANSCRIPT)
    run_pipeline(runtime)
    with runtime.engine.begin() as conn:
        rows = conn.execute(text("SELECT s.id, s.text, t.encounter_id FROM transcript_segments s "
                                 "JOIN transcripts t ON t.id = s.transcript_id ORDER BY s.id")).all()
        assert len({r.encounter_id for r in rows}) == 2
        first, other_session = rows[0], next(r for r in rows if r.encounter_id != rows[0].encounter_id)
        conn.execute(text("UPDATE transcript_segments SET text = :t WHERE id = :i"),
                     {"t": other_session.text, "i": first.id})
    with pytest.raises(SealingError, match="another row"), session_scope(runtime.engine) as s:
        list(s.exec(select(TranscriptSegment)))
    with runtime.engine.begin() as conn:  # back, then a swap inside one transcript
        conn.execute(text("UPDATE transcript_segments SET text = :t WHERE id = :i"), {"t": first.text, "i": first.id})
        conn.execute(text("UPDATE transcript_segments SET text = :t WHERE id = :i"), {"t": rows[1].text, "i": first.id})
    with pytest.raises(SealingError), session_scope(runtime.engine) as s:
        list(s.exec(select(TranscriptSegment)))
    with runtime.engine.begin() as conn:
        conn.execute(text("UPDATE transcript_segments SET text = :t WHERE id = :i"), {"t": first.text, "i": first.id})
    with session_scope(runtime.engine) as s:  # restored: everything opens again
        assert len(s.exec(select(TranscriptSegment)).all()) == len(rows)


def test_a_draft_moved_to_another_session_does_not_open(runtime: Runtime, practice: Practice, wav: bytes) -> None:
    """A writer who swaps two sessions' drafts (same client, same key) is caught."""
    for _ in range(2):
        upload(runtime, practice.dr_ada, practice.maya.id, wav, transcript=TRANSCRIPT)
    run_pipeline(runtime)
    with runtime.engine.begin() as conn:
        (a, sections_a), (b, sections_b) = conn.execute(text("SELECT id, ai_sections FROM drafts ORDER BY id")).all()
        conn.execute(text("UPDATE drafts SET ai_sections = :v WHERE id = :i"), {"v": sections_b, "i": a})
        conn.execute(text("UPDATE drafts SET ai_sections = :v WHERE id = :i"), {"v": sections_a, "i": b})
    from scribe.db.tables import Draft

    with pytest.raises(SealingError), session_scope(runtime.engine) as s:
        s.exec(select(Draft)).all()


def test_a_sealed_file_put_in_another_files_place_does_not_open(runtime: Runtime, practice: Practice, wav: bytes) -> None:
    from scribe.db.tables import Recording

    for _ in range(2):
        upload(runtime, practice.dr_ada, practice.maya.id, wav, transcript=TRANSCRIPT)
    store = recordings(runtime.recordings_dir)
    with session_scope(runtime.engine) as s:
        first, second = [r.path for r in s.exec(select(Recording).order_by(col(Recording.id)))]
    store.path(first).write_bytes(store.path(second).read_bytes())  # same client, same audio key
    with pytest.raises(SealingError, match="not the one this record names"):
        store.read(runtime.engine, first)
    assert store.read(runtime.engine, second) == wav


def test_the_envelope_refuses_every_kind_of_stream_damage() -> None:
    """Error injection for the file format: truncation, a dropped, repeated or reordered
    record, a flipped bit, another context, and a record from another file all fail."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    class Keys:
        vault_id = "0123456789ab"
        key = AESGCM(secrets.token_bytes(32))

        def aead(self, key_id: int) -> AESGCM:
            return self.key

    keys, data = Keys(), secrets.token_bytes(envelope.STREAM_CHUNK * 2 + 77)

    def sealed(context: str = "recordings/a.webm") -> bytes:
        out = io.BytesIO()
        envelope.seal_stream(keys.vault_id, 1, keys.key, io.BytesIO(data), out, context=context)
        return out.getvalue()

    def opens(blob: bytes, context: str = "recordings/a.webm") -> bool:
        try:
            return b"".join(envelope.open_stream(keys, io.BytesIO(blob), context=context)) == data
        except SealingError:
            return False

    good = sealed()
    header = len(envelope.STREAM_MAGIC) + envelope.VAULT_ID_LEN + 4 + 8 + 2 + len("recordings/a.webm")
    records, at = [], header
    while at < len(good):
        size = int.from_bytes(good[at:at + 4], "big")
        records.append(good[at:at + 4 + size])
        at += 4 + size
    assert opens(good) and len(records) == 3
    head = good[:header]
    damaged = {
        "truncated": good[:-10],
        "last record dropped": head + records[0] + records[1],
        "record repeated": head + records[0] + records[0] + records[1] + records[2],
        "records swapped": head + records[1] + records[0] + records[2],
        "bit flipped": good[:header + 40] + bytes([good[header + 40] ^ 1]) + good[header + 41:],
        "record from another file": head + sealed()[header:][:len(records[0])] + records[1] + records[2],
    }
    assert {k: opens(v) for k, v in damaged.items()} == dict.fromkeys(damaged, False)
    assert not opens(good, context="recordings/b.webm")
    assert not opens(sealed("recordings/b.webm"))


def test_withdrawal_shreds_the_clients_keys(runtime: Runtime, practice: Practice, wav: bytes, clock: Clock) -> None:
    encounter = upload(runtime, practice.dr_ada, practice.maya.id, wav, transcript=TRANSCRIPT)
    run_pipeline(runtime)
    store = recordings(runtime.recordings_dir)
    with session_scope(runtime.engine) as s:
        rec = s.exec(select(Recording).where(Recording.encounter_id == encounter.id)).one()
        sealed_audio = store.path(rec.path).read_bytes()
    token, binding = _first_segment(runtime)
    vault = vault_for(runtime.engine)
    assert vault.open_value(token, "transcript_segments.text", binding)
    with session_scope(runtime.engine) as s:
        purge.withdraw(s, runtime.audit_key, runtime.policies, actor=practice.dr_ada, client_id=practice.maya.id or 0,
                       function="transcribe", tools=media(runtime), now=clock())
    with session_scope(runtime.engine) as s:
        keys = s.exec(select(DataKey).where(DataKey.owner == f"client:{practice.maya.id}")).all()
        gone = {k.kind for k in keys if k.destroyed_at is not None}
        assert {"audio", "transcript", "draft"} <= gone and all(k.wrapped == "" for k in keys if k.destroyed_at)
    # Even a copy of the ciphertext taken before the purge (a backup) no longer opens.
    with pytest.raises(Shredded):
        vault.open_value(token, "transcript_segments.text", binding)
    with pytest.raises(Shredded):
        list(envelope.open_stream(vault, io.BytesIO(sealed_audio), context=store.context(rec.path)))
    # Another client's data is untouched, and new audio for this client gets a new key.
    with session_scope(runtime.engine) as s:
        assert vault.key_for(s, Scope(f"client:{practice.maya.id}", "audio"), clock())[0] not in {k.id for k in keys}


def test_scribe_refuses_to_start_with_a_missing_or_wrong_master_key(
    runtime: Runtime, practice: Practice, wav: bytes, settings: Settings, policies: Policies
) -> None:
    from scribe.runtime import build_runtime

    upload(runtime, practice.dr_ada, practice.maya.id, wav, transcript=TRANSCRIPT)
    key = settings.master_key_path.read_bytes()
    settings.master_key_path.unlink()
    with pytest.raises(RuntimeError, match=r"master key .* is missing"):
        build_runtime(settings, policies=policies)
    assert not settings.master_key_path.exists()  # no new key was made
    settings.master_key_path.write_bytes(secrets.token_bytes(32))
    settings.master_key_path.chmod(0o600)
    with pytest.raises(SealingError, match="does not open"):
        build_runtime(settings, policies=policies)
    settings.master_key_path.write_bytes(key)
    build_runtime(settings, policies=policies)  # the right key: starts


def test_scribe_refuses_to_start_with_a_missing_or_malformed_audit_key(
    runtime: Runtime, practice: Practice, wav: bytes, settings: Settings, policies: Policies
) -> None:
    """A silently re-created audit key would make every event fail verification: a false
    tamper alarm that hides a real one (issue 17 item 9)."""
    from scribe.runtime import build_runtime
    from scribe.services.keys import KeyFileError

    upload(runtime, practice.dr_ada, practice.maya.id, wav, transcript=TRANSCRIPT)  # audited
    key = settings.audit_key_path.read_bytes()
    settings.audit_key_path.unlink()
    with pytest.raises(KeyFileError, match="audit chain is signed with it"):
        build_runtime(settings, policies=policies)
    assert not settings.audit_key_path.exists()  # no new key was made
    settings.audit_key_path.write_bytes(key[:16])
    settings.audit_key_path.chmod(0o600)
    with pytest.raises(KeyFileError, match="16 bytes"):
        build_runtime(settings, policies=policies)
    settings.audit_key_path.write_bytes(key)
    assert build_runtime(settings, policies=policies).audit_key == key


def test_keys_and_anchors_live_outside_the_data_directory_by_default(runtime: Runtime) -> None:
    data = runtime.settings.data_dir.resolve()
    for path in (runtime.settings.master_key_path, runtime.settings.audit_key_path):
        assert path.exists() and not path.resolve().is_relative_to(data)
    assert not runtime.settings.anchors_dir.resolve().is_relative_to(data)
    assert not any(p.name.endswith(".key") for p in data.rglob("*"))  # a copy of the data dir opens nothing


@pytest.mark.parametrize("inside", ["key_dir", "anchor_dir"])
def test_scribe_refuses_keys_or_anchors_inside_the_data_directory(tmp_path: Path, policies: Policies, inside: str) -> None:
    data = tmp_path / "var"
    secrets_dir: dict[str, Any] = {inside: data / "secrets"}
    settings = Settings(data_dir=data, engines="fake", worker_in_process=False, **secrets_dir)
    with pytest.raises(RuntimeError, match="inside the data directory"):
        build_runtime(settings, policies=policies)
    assert not (data / "secrets").exists()
    dev = Settings(data_dir=data, engines="fake", worker_in_process=False, keys_in_data_dir=True,
                   **secrets_dir)
    build_runtime(dev, policies=policies).engine.dispose()  # development only, and said so


def test_keys_left_in_the_data_directory_by_an_earlier_version_are_refused_with_the_move(
    tmp_path: Path, policies: Policies
) -> None:
    data = tmp_path / "var"
    (data / "keys").mkdir(parents=True)
    (data / "keys" / "master.key").write_bytes(secrets.token_bytes(32))
    with pytest.raises(RuntimeError, match=r"earlier version .*\(mv "):
        build_runtime(Settings(data_dir=data, engines="fake", worker_in_process=False), policies=policies)
    assert not (tmp_path / "scribe-keys").exists()  # no new key was made beside the old one
