"""Backup and restore: an online, consistent copy of the database (SQLite's backup API, or
``pg_dump`` in custom format), sealed under a backup key, with the sealed recordings and
consent forms and the audit anchors, and a manifest of every file's checksum signed with
the backup key. The keys themselves are never in a backup: ``backup_keys`` copies them to
a place of their own. A restore goes only into an empty data directory, checks the whole
backup before writing anything, and then proves it: the audit chain verifies against its
anchors, every signed note opens and hashes to what was signed, every recording opens."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import shutil
import sqlite3
import subprocess  # nosec B404 - pg_dump and pg_restore, fixed arguments, no shell
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any, BinaryIO

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlmodel import Session, col

from scribe.config import Settings
from scribe.db.sealing import envelope
from scribe.services.files import FORMS, RECORDINGS, fsync_dir
from scribe.services.keys import load_or_create_key

FORMAT = 1
MANIFEST = "manifest.json"
DATABASE = "database.sealed"
ANCHORS = "anchors.sealed"
BACKUP_KEY = "backup.key"


class BackupError(RuntimeError):
    """A backup could not be made, or a backup is damaged, incomplete or not ours."""


@dataclass(frozen=True)
class BackupKeys:
    """The backup key, in the shape the sealed-stream format opens with."""

    key: bytes

    @property
    def vault_id(self) -> str:
        return hashlib.sha256(b"scribe-backup" + self.key).hexdigest()[:envelope.VAULT_ID_LEN]

    def aead(self, key_id: int) -> AESGCM:
        return AESGCM(self.key)

    def mac(self, body: dict[str, Any]) -> str:
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
        return hmac.new(self.key, b"scribe-backup-manifest\x00" + canonical, hashlib.sha256).hexdigest()


def backup_key(settings: Settings, *, create: bool) -> BackupKeys:
    path = settings.keys_dir / BACKUP_KEY
    return BackupKeys(load_or_create_key(path, must_exist=None if create else
                                         "the backup was sealed with it (restore it from your key backup)"))


def _is_sealed(path: Path) -> bool:
    with path.open("rb") as f:
        return f.read(len(envelope.STREAM_MAGIC)) in (envelope.STREAM_MAGIC, envelope.LEGACY_STREAM_MAGIC)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _seal_into(keys: BackupKeys, source: IO[bytes] | BinaryIO, out: Path, context: str) -> None:
    with out.open("wb") as f:
        envelope.seal_stream(keys.vault_id, 0, keys.aead(0), source, f, context=context)
        f.flush()
        os.fsync(f.fileno())


def _open_from(keys: BackupKeys, path: Path, context: str) -> Iterator[bytes]:
    with path.open("rb") as f:
        yield from envelope.open_stream(keys, f, context=context)


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise BackupError(f"{name} is not installed (Debian: apt-get install postgresql-client)")
    return found


def _pg_args(url: str) -> tuple[str, list[str]]:
    """A libpq URL for pg_dump/pg_restore, and the schema (from a search_path option) if any."""
    parsed = make_url(url)
    options = str(parsed.query.get("options", ""))
    schema = options.split("search_path=", 1)[1].split()[0] if "search_path=" in options else ""
    plain = parsed.set(drivername="postgresql").difference_update_query(["options"])
    return plain.render_as_string(hide_password=False), ([f"--schema={schema}"] if schema else [])


@dataclass
class BackupResult:
    folder: Path
    seconds: float
    database_bytes: int
    files: int
    total_bytes: int


def make_backup(settings: Settings, engine: Any, dest: Path, *, now: datetime) -> BackupResult:
    """Write ``dest/scribe-backup-<UTC time>/``: the sealed database, the sealed files as
    they are, the anchors, and the signed manifest. The app may keep running meanwhile."""
    started = time.perf_counter()
    keys = backup_key(settings, create=True)
    if dest.resolve().is_relative_to(settings.keys_dir.resolve()):
        raise BackupError("a backup never goes into the key directory: keep keys and backups apart")
    folder = dest / f"scribe-backup-{now.strftime('%Y%m%dT%H%M%SZ')}"
    if folder.exists():
        raise BackupError(f"{folder} exists already")
    partial = folder.with_name(folder.name + ".part")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True, mode=0o700)
    kind = engine.dialect.name
    db_out = partial / DATABASE
    if kind == "sqlite":
        tmp = settings.data_dir / "tmp" / f"backup-{os.getpid()}.db"
        tmp.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            with sqlite3.connect(str(engine.url.database)) as src, sqlite3.connect(tmp) as snapshot:
                src.backup(snapshot)  # an online, consistent copy (the app keeps writing)
            with tmp.open("rb") as f:
                _seal_into(keys, f, db_out, f"backup/{DATABASE}")
        finally:
            tmp.unlink(missing_ok=True)
    elif kind == "postgresql":
        url, extra = _pg_args(settings.sqlalchemy_url)
        with subprocess.Popen([_tool("pg_dump"), "--format=custom", "--no-owner", "--no-privileges", *extra,
                               f"--dbname={url}"], stdout=subprocess.PIPE, stderr=subprocess.PIPE) as dump:
            assert dump.stdout is not None  # noqa: S101 - narrows the type; never a guard
            _seal_into(keys, dump.stdout, db_out, f"backup/{DATABASE}")
            if dump.wait() != 0:
                raise BackupError("pg_dump failed: " + (dump.stderr.read().decode(errors="replace")[-300:]
                                                       if dump.stderr else ""))
    else:
        raise BackupError(f"cannot back up a {kind} database")
    with engine.connect() as conn:
        revision = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
        head = conn.exec_driver_sql("SELECT id, hash FROM audit_events ORDER BY id DESC LIMIT 1").first()
    files, foreign = [], 0
    for store, root in ((RECORDINGS, settings.recordings_dir), (FORMS, settings.forms_dir)):
        if not root.exists():
            continue
        for path in sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith(".")):
            if not _is_sealed(path):
                foreign += 1  # not a file scribe wrote (everything scribe stores there is sealed)
                continue
            rel = f"{store}/{path.relative_to(root)}"
            target = partial / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)  # already sealed under the clients' data keys
            files.append(rel)
    anchors = settings.anchors_dir / "audit-anchors.jsonl"
    if anchors.exists():
        with anchors.open("rb") as f:
            _seal_into(keys, f, partial / ANCHORS, f"backup/{ANCHORS}")
    listed = [DATABASE, *([ANCHORS] if anchors.exists() else []), *files]
    body = {"format": FORMAT, "created_at": now.isoformat(), "database": kind, "alembic_revision": revision,
            "foreign_files_left_out": foreign,
            "audit_head": {"id": head[0], "hash": head[1]} if head else None,
            "files": [{"path": rel, "bytes": (partial / rel).stat().st_size, "sha256": _sha256(partial / rel)}
                      for rel in listed]}
    (partial / MANIFEST).write_text(json.dumps({**body, "mac": keys.mac(body)}, indent=1))
    for path in [partial, *(p for p in partial.rglob("*") if p.is_dir())]:
        fsync_dir(path)
    partial.rename(folder)  # a backup is whole or absent under its final name
    fsync_dir(dest)
    total = sum(f["bytes"] for f in body["files"])
    return BackupResult(folder, time.perf_counter() - started, (folder / DATABASE).stat().st_size, len(files), total)


def backup_keys(settings: Settings, dest: Path) -> list[Path]:
    """Copy the master, audit and backup keys to ``dest`` (mode 600): kept apart from the
    data and from every backup, a copy of either alone opens nothing."""
    if dest.resolve().is_relative_to(settings.data_dir.resolve()):
        raise BackupError("the keys' copy must not be inside the data directory")
    dest.mkdir(parents=True, exist_ok=True, mode=0o700)
    copied = []
    for name in ("master.key", "audit.key", BACKUP_KEY):
        source = settings.keys_dir / name
        if source.exists():
            target = dest / name
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(source.read_bytes())
                f.flush()
                os.fsync(f.fileno())
            copied.append(target)
    fsync_dir(dest)
    return copied


# --- restore ------------------------------------------------------------------------------


def check_backup(folder: Path, keys: BackupKeys) -> dict[str, Any]:
    """The manifest, once its signature and every file's size and checksum are right;
    otherwise BackupError naming what is wrong (never a half-checked backup)."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except FileNotFoundError:
        raise BackupError(f"{folder} holds no manifest: not a scribe backup, or an unfinished one") from None
    except ValueError:
        raise BackupError("the manifest is damaged") from None
    mac = manifest.pop("mac", "")
    if not isinstance(mac, str) or not hmac.compare_digest(keys.mac(manifest), mac):
        raise BackupError("the manifest's signature does not match: altered, or made with another backup key")
    if manifest.get("format") != FORMAT:
        raise BackupError(f"backup format {manifest.get('format')} is not one this version restores")
    problems = []
    for entry in manifest["files"]:
        path = folder / entry["path"]
        if not path.resolve().is_relative_to(folder.resolve()):
            raise BackupError("the manifest names a file outside the backup")
        if not path.exists():
            problems.append(f"missing: {entry['path']}")
        elif path.stat().st_size != entry["bytes"] or _sha256(path) != entry["sha256"]:
            problems.append(f"damaged: {entry['path']}")
    if problems:
        raise BackupError(f"the backup is incomplete or damaged ({len(problems)} file(s)): " + "; ".join(problems[:5]))
    return dict(manifest)


def restore_backup(settings: Settings, folder: Path) -> dict[str, Any]:
    """Restore into an empty data directory (and, for PostgreSQL, an empty database). The
    keys must already be back in SCRIBE_KEY_DIR (from their own backup)."""
    started = time.perf_counter()
    keys = backup_key(settings, create=False)
    for name in ("master.key", "audit.key"):
        if not (settings.keys_dir / name).exists():
            raise BackupError(f"{settings.keys_dir / name} is missing: restore the keys from their own backup first")
    manifest = check_backup(folder, keys)
    data = settings.data_dir
    if data.exists() and any(p for p in data.iterdir() if p.name != "tmp"):
        raise BackupError(f"{data} is not empty: restore only into an empty data directory")
    if manifest["database"] == "sqlite" and settings.database_url:
        raise BackupError("this backup is of an SQLite database; unset SCRIBE_DATABASE_URL to restore it")
    if manifest["database"] == "postgresql" and not settings.database_url:
        raise BackupError("this backup is of a PostgreSQL database: set SCRIBE_DATABASE_URL to an empty database")
    data.mkdir(parents=True, exist_ok=True, mode=0o700)
    if manifest["database"] == "sqlite":
        target = data / "scribe.db"
        tmp = target.with_name(".scribe.db.part")
        with tmp.open("wb") as out:
            for block in _open_from(keys, folder / DATABASE, f"backup/{DATABASE}"):
                out.write(block)
            out.flush()
            os.fsync(out.fileno())
        tmp.rename(target)
    else:
        _pg_restore(settings, keys, folder)
    for entry in manifest["files"]:
        rel = entry["path"]
        store, _, inner = rel.partition("/")
        if store not in (RECORDINGS, FORMS):
            continue
        root = settings.recordings_dir if store == RECORDINGS else settings.forms_dir
        (root / inner).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(folder / rel, root / inner)
    anchors = settings.anchors_dir / "audit-anchors.jsonl"
    if (folder / ANCHORS).exists() and not anchors.exists():
        settings.anchors_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        with anchors.open("wb") as out:
            for block in _open_from(keys, folder / ANCHORS, f"backup/{ANCHORS}"):
                out.write(block)
    for path in [data, *(p for p in data.rglob("*") if p.is_dir())]:
        fsync_dir(path)
    return {"restored_from": str(folder), "created_at": manifest["created_at"], "files": len(manifest["files"]),
            "seconds": round(time.perf_counter() - started, 2)}


def _pg_restore(settings: Settings, keys: BackupKeys, folder: Path) -> None:
    url, _ = _pg_args(settings.sqlalchemy_url)
    with subprocess.Popen([_tool("pg_restore"), "--no-owner", "--no-privileges", "--exit-on-error",
                           f"--dbname={url}"], stdin=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        assert proc.stdin is not None  # noqa: S101 - narrows the type; never a guard
        try:
            for block in _open_from(keys, folder / DATABASE, f"backup/{DATABASE}"):
                proc.stdin.write(block)
        finally:
            proc.stdin.close()
        if proc.wait() != 0:
            raise BackupError("pg_restore failed: " + (proc.stderr.read().decode(errors="replace")[-300:]
                                                       if proc.stderr else ""))


@dataclass
class DrillReport:
    """What a restored system proves: the chain, every signed record, every recording."""

    audit_problems: list[str] = field(default_factory=list)
    notes: int = 0
    notes_bad: list[int] = field(default_factory=list)
    recordings: int = 0
    recordings_bad: list[int] = field(default_factory=list)
    recordings_decoded: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not (self.audit_problems or self.notes_bad or self.recordings_bad)

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "audit_problems": self.audit_problems[:20], "signed_versions": self.notes,
                "versions_failing": self.notes_bad, "recordings": self.recordings,
                "recordings_failing": self.recordings_bad, "recordings_decoded": self.recordings_decoded,
                "seconds": round(self.seconds, 2)}


def verify_restore(rt: Any, *, decode: bool = False) -> DrillReport:
    """Check a restored runtime: the audit chain against the anchors, every signed version's
    content against its signature hash, every recording opening (and, with ``decode``,
    decoding in the sandbox, as it would to play)."""
    from scribe.db.tables import NoteVersion, Recording
    from scribe.domain.notes import content_sha256
    from scribe.services import audit
    from scribe.services.files import recordings

    started = time.perf_counter()
    report = DrillReport()
    with Session(rt.engine) as s:
        report.audit_problems = audit.verify(s, rt.audit_key, rt.anchors_dir)
        ids = list(s.execute(select(col(NoteVersion.id)).order_by(col(NoteVersion.id))).scalars())
        rows = s.execute(select(Recording).where(Recording.purged_at.is_(None))).scalars().all()  # type: ignore[union-attr]
    for version_id in ids:  # one at a time: a version that does not open must not hide the others
        report.notes += 1
        try:
            with Session(rt.engine) as one:
                version = one.get(NoteVersion, version_id)
                intact = version is not None and content_sha256(version.content) == version.content_sha256
        except Exception:
            intact = False
        if not intact:
            report.notes_bad.append(version_id)
    store = recordings(rt.recordings_dir)
    for rec in rows:
        report.recordings += 1
        try:
            audio = store.read(rt.engine, rec.path)
            if hashlib.sha256(audio).hexdigest() != rec.sha256:
                raise ValueError("checksum")
            if decode:
                rt.decoder.probe(audio, max_seconds=rt.policies.pipeline.upload.max_seconds)
                report.recordings_decoded += 1
        except Exception:
            report.recordings_bad.append(rec.id or 0)
    report.seconds = time.perf_counter() - started
    return report


def counts(engine: Any) -> dict[str, int]:
    from scribe.db.tables import Encounter, NoteVersion, Recording

    with Session(engine) as s:
        return {"sessions": int(s.execute(select(func.count()).select_from(Encounter)).scalar() or 0),
                "signed_versions": int(s.execute(select(func.count()).select_from(NoteVersion)).scalar() or 0),
                "recordings": int(s.execute(select(func.count()).select_from(Recording)).scalar() or 0)}
