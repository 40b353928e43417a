"""Backup and restore, as a drill: run sessions, sign and co-sign notes, back up, destroy the
data directory (and its anchors and keys), restore the keys from their own copy and the data
from the backup, then prove it: the audit chain verifies against its anchors, every signed
note opens and hashes to what was signed, every recording decodes. A damaged, incomplete or
foreign backup is refused before anything is written."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlmodel import select

from scribe.config import ROOT, Settings
from scribe.db.engine import session_scope
from scribe.db.tables import NoteVersion
from scribe.engines.protocols import Engines
from scribe.policies import Policies
from scribe.runtime import Runtime, build_runtime
from scribe.services import backup, consent
from tests.conftest import Clock, Practice, make_practice, wav_bytes
from tests.helpers import TRANSCRIPT, run_pipeline, upload
from tests.services.test_review import resolve_all, sign
from tests.services.test_supervision import cosign, signed_by_sam

CANARY = "zqbackupcanary"


def busy_practice(runtime: Runtime, practice: Practice) -> dict[str, str]:
    """Signed, co-signed and unsigned sessions, a scanned consent form; their content hashes."""
    hashes = {}
    for i in range(3):
        e = upload(runtime, practice.dr_ada, practice.maya.id, wav_bytes(seconds=2 + i, freq=200 + 40 * i),
                   transcript=TRANSCRIPT + f"\nCLIENT: the {CANARY}{i} is mine.")
        run_pipeline(runtime)
        if i < 2:
            v = sign(runtime, practice.dr_ada, e, resolve_all(runtime, practice.dr_ada, e))
            hashes[str(v.id)] = v.content_sha256
    e, v = signed_by_sam(runtime, practice, wav_bytes(seconds=3, freq=330))
    cosign(runtime, practice.dr_ben, v.id)
    hashes[str(v.id)] = v.content_sha256
    with session_scope(runtime.engine) as s:
        consent.record_consent(s, runtime.audit_key, runtime.policies, actor=practice.dr_ada,
                               client_id=practice.maya.id or 0, functions=["transcribe"], effective_from=runtime.clock(),
                               expires_at=None, forms_dir=runtime.settings.forms_dir,
                               scan=b"%PDF-1.4 " + CANARY.encode(), now=runtime.clock())
    from scribe.services import audit

    with session_scope(runtime.engine) as s:
        audit.anchor(s, runtime.audit_key, runtime.anchors_dir, runtime.clock())
    return hashes


def test_the_restore_drill_brings_back_everything_and_proves_it(runtime: Runtime, practice: Practice, tmp_path: Path) -> None:
    hashes = busy_practice(runtime, practice)
    settings = runtime.settings
    result = backup.make_backup(settings, runtime.engine, tmp_path / "backups", now=runtime.clock())
    keys_copy = tmp_path / "usb-stick"
    backup.backup_keys(settings, keys_copy)
    folder = result.folder
    assert result.files >= 5 and (folder / "manifest.json").exists()
    # The backup holds no plaintext and no key: not the canaries, not the scanned form, not a key.
    blob = b"".join(p.read_bytes() for p in folder.rglob("*") if p.is_file())
    assert CANARY.encode() not in blob and b"%PDF-1.4" not in blob
    for name in ("master.key", "audit.key", "backup.key"):
        assert (settings.keys_dir / name).read_bytes() not in blob and not list(folder.rglob(name))
    runtime.engine.dispose()
    # The server is lost: data, anchors and keys.
    for path in (settings.data_dir, settings.anchors_dir, settings.keys_dir):
        shutil.rmtree(path)
    settings.keys_dir.mkdir(mode=0o700)
    for key in keys_copy.iterdir():
        shutil.copy2(key, settings.keys_dir / key.name)
    restored = backup.restore_backup(settings, folder)
    assert restored["files"] == len(json.loads((folder / "manifest.json").read_text())["files"])
    rt = build_runtime(settings, policies=runtime.policies, engines=runtime.engines, clock=runtime.clock)
    report = backup.verify_restore(rt, decode=True)
    assert report.ok, report.to_json()
    assert report.notes == len(hashes) and report.recordings == 4 and report.recordings_decoded == 4
    with session_scope(rt.engine) as s:
        assert {str(v.id): v.content_sha256 for v in s.exec(select(NoteVersion))} == hashes
    with sqlite3.connect(settings.data_dir / "scribe.db") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    rt.engine.dispose()


def test_the_drill_catches_what_it_looks_for(runtime: Runtime, practice: Practice, tmp_path: Path) -> None:
    """Error injection for the verification: a signed version whose content no longer hashes
    to its signature, a recording that does not open, and an edited audit row are found."""
    busy_practice(runtime, practice)
    assert backup.verify_restore(runtime).ok
    with runtime.engine.begin() as conn:  # someone with the database file and a text editor
        conn.exec_driver_sql("DROP TRIGGER audit_events_no_update")
        conn.exec_driver_sql("UPDATE audit_events SET reason = 'edited' WHERE id = 3")
        conn.exec_driver_sql("DROP TRIGGER note_versions_no_update")
        conn.exec_driver_sql("UPDATE note_versions SET content_sha256 = 'f00d' WHERE id = 1")
        conn.exec_driver_sql("UPDATE note_versions SET content = (SELECT content FROM note_versions WHERE id = 3) "
                             "WHERE id = 2")
    rec = next(runtime.recordings_dir.glob("*.wav"))
    rec.write_bytes(rec.read_bytes()[:-50])
    report = backup.verify_restore(runtime)
    assert report.audit_problems and report.recordings_bad and not report.ok
    assert report.notes_bad == [1, 2]  # a hash that no longer matches, a content moved from another note


def test_a_damaged_incomplete_or_foreign_backup_is_refused_before_anything_is_written(runtime: Runtime, practice: Practice,
                                                                                      tmp_path: Path) -> None:
    busy_practice(runtime, practice)
    settings = runtime.settings
    folder = backup.make_backup(settings, runtime.engine, tmp_path / "b", now=runtime.clock()).folder
    keys = backup.backup_key(settings, create=False)
    backup.check_backup(folder, keys)  # whole and ours

    def damaged(how: Callable[[Path], None]) -> str:
        copy = tmp_path / f"copy-{how.__name__}"
        shutil.copytree(folder, copy)
        how(copy)
        with pytest.raises(backup.BackupError) as err:
            backup.check_backup(copy, keys)
        return str(err.value)

    def flip_a_recording_byte(copy: Path) -> None:
        path = next((copy / "recordings").glob("*.wav"))
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 1
        path.write_bytes(bytes(data))

    def lose_the_database(copy: Path) -> None:
        (copy / "database.sealed").unlink()

    def edit_the_manifest(copy: Path) -> None:
        manifest = json.loads((copy / "manifest.json").read_text())
        manifest["files"] = manifest["files"][1:]  # hide a file from the check
        (copy / "manifest.json").write_text(json.dumps(manifest))

    def unfinished(copy: Path) -> None:
        (copy / "manifest.json").unlink()

    assert "damaged" in damaged(flip_a_recording_byte)
    assert "missing: database.sealed" in damaged(lose_the_database)
    assert "signature does not match" in damaged(edit_the_manifest)
    assert "no manifest" in damaged(unfinished)
    with pytest.raises(backup.BackupError, match="signature does not match"):
        backup.check_backup(folder, backup.BackupKeys(os.urandom(32)))  # another practice's backup key
    with pytest.raises(backup.BackupError, match="not empty"):
        backup.restore_backup(settings, folder)  # never over a live data directory
    assert (settings.data_dir / "scribe.db").exists()


def test_a_backup_taken_while_the_practice_works_restores_whole(runtime: Runtime, practice: Practice, tmp_path: Path) -> None:
    """Online: uploads and signatures go on in another thread while the backup runs; the copy
    is consistent (integrity check, audit chain), whatever moment it caught."""
    busy_practice(runtime, practice)
    stop = threading.Event()
    errors: list[BaseException] = []

    def keep_working() -> None:
        try:
            while not stop.is_set():
                e = upload(runtime, practice.dr_ada, practice.maya.id, wav_bytes(seconds=2), transcript=TRANSCRIPT)
                run_pipeline(runtime)
                sign(runtime, practice.dr_ada, e, resolve_all(runtime, practice.dr_ada, e))
        except BaseException as exc:
            errors.append(exc)

    worker = threading.Thread(target=keep_working)
    worker.start()
    try:
        folders = [backup.make_backup(runtime.settings, runtime.engine, tmp_path / f"b{i}",
                                      now=runtime.clock()).folder for i in range(3)]
    finally:
        stop.set()
        worker.join()
    assert errors == []
    for i, folder in enumerate(folders):
        target = Settings(data_dir=tmp_path / f"restored{i}" / "var", engines="fake", worker_in_process=False,
                          key_dir=runtime.settings.keys_dir, anchor_dir=tmp_path / f"restored{i}" / "anchors")
        backup.restore_backup(target, folder)
        rt = build_runtime(target, policies=runtime.policies, clock=runtime.clock)
        report = backup.verify_restore(rt)
        assert report.ok, report.to_json()
        rt.engine.dispose()


def test_the_drill_on_postgresql(
    settings: Settings, policies: Policies, engines: Engines, clock: Clock, pg_url: str, tmp_path: Path
) -> None:
    from sqlalchemy import create_engine, text

    settings = settings.model_copy(update={"database_url": pg_url})
    runtime = build_runtime(settings, policies=policies, engines=engines, clock=clock)
    practice = make_practice(runtime, clock)
    hashes = busy_practice(runtime, practice)
    folder = backup.make_backup(settings, runtime.engine, tmp_path / "backups", now=clock()).folder
    runtime.engine.dispose()
    schema = pg_url.split("search_path%3D")[1]
    admin = create_engine(pg_url.split("?")[0], isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:  # the database is lost
        conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    shutil.rmtree(settings.data_dir)
    shutil.rmtree(settings.anchors_dir)
    backup.restore_backup(settings, folder)
    rt = build_runtime(settings, policies=policies, engines=engines, clock=clock)
    report = backup.verify_restore(rt, decode=True)
    assert report.ok and report.notes == len(hashes) and report.recordings_decoded == 4, report.to_json()
    rt.engine.dispose()
    admin.dispose()


def test_the_readme_commands_back_up_and_restore(tmp_path: Path) -> None:
    """`scribe backup DEST`, `scribe backup-keys DIR` and `scribe restore SRC` as an admin runs them."""
    env = {**os.environ, "SCRIBE_DATA_DIR": str(tmp_path / "var"), "SCRIBE_ENGINES": "fake"}
    scribe = [sys.executable, "-m", "scribe.cli"]
    seed = Settings(data_dir=tmp_path / "var", engines="fake", worker_in_process=False)
    rt = build_runtime(seed)
    make_practice(rt, __import__("tests.conftest", fromlist=["Clock"]).Clock())
    rt.engine.dispose()
    made = subprocess.run([*scribe, "backup", str(tmp_path / "backups")], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert made.returncode == 0, made.stderr
    folder = json.loads(made.stdout)["backup"]
    keys = subprocess.run([*scribe, "backup-keys", str(tmp_path / "keycopy")], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert keys.returncode == 0 and len(json.loads(keys.stdout)["copied"]) == 3
    refused = subprocess.run([*scribe, "restore", folder], env=env, cwd=ROOT, capture_output=True, text=True,
                             timeout=60)
    assert refused.returncode == 1 and "not empty" in refused.stderr
    shutil.rmtree(tmp_path / "var")
    restored = subprocess.run([*scribe, "restore", folder], env=env, cwd=ROOT, capture_output=True, text=True,
                              timeout=120)
    assert restored.returncode == 0, restored.stderr
    assert json.loads(restored.stdout)["verification"]["ok"] is True
