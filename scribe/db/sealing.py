"""Encryption at rest: AES-GCM with data keys per client (and per kind of artefact),
each wrapped by a master key kept outside the database file.

Clinical columns are declared ``Sealed``. Before a flush, every new or changed sealed
value is handed the data key of the client it belongs to (``seal_scope`` on the table
class says which); the column type encrypts it on the way in and decrypts on the way
out. A sealed column given a bare value (a bulk UPDATE, a raw insert) refuses to write
it: plaintext never reaches the database by accident. Audio and scanned forms are
sealed files in the same format, in chunks, so they never sit in plaintext on disk.

Destroying a data key (``shred``) makes everything sealed with it unreadable, in the
database, its WAL, the file store and every backup: crypto-shredding."""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import secrets
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Connection, Engine, Text, event, inspect, select
from sqlalchemy.exc import NoInspectionAvailable
from sqlalchemy.orm import Session as OrmSession
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.types import TypeDecorator

PREFIX = "S1."
FILE_MAGIC = b"SCRIBE-SEALED-1\n"
FILE_CHUNK = 1 << 20
CACHE_SECONDS = 60.0  # another process may destroy a key; a cached copy lives this long


class SealingError(RuntimeError):
    """A sealed value could not be written or read (no key loaded, key destroyed, tampered)."""


class Shredded(SealingError):
    """The data key was destroyed: the content is gone for good."""


@dataclass(frozen=True)
class Scope:
    """Whose key seals a value: a client's (or a supervision meeting's) key for one kind."""

    owner: str  # "client:12" or "meeting:40"
    kind: str  # audio | transcript | draft | record | form


@dataclass(frozen=True)
class _ToSeal:
    value: Any
    vault: "Vault"
    key_id: int
    aead: AESGCM


class Vault:
    """The master key, and the data keys it wraps (table ``data_keys``)."""

    def __init__(self, master: bytes, engine: Engine) -> None:
        if len(master) != 32:
            raise SealingError("the master key must be 32 bytes")
        self._master = AESGCM(master)
        self.vault_id = hashlib.sha256(b"scribe-vault" + master).hexdigest()[:12]
        self.engine = engine
        self._keys: dict[int, tuple[float, AESGCM]] = {}
        self._fresh: dict[int, AESGCM] = {}
        self._lock = threading.Lock()
        _VAULTS[self.vault_id] = self
        _BY_ENGINE[id(engine)] = self

    # -- data keys -------------------------------------------------------------------
    def key_for(self, session: OrmSession | Connection, scope: Scope, now: datetime) -> tuple[int, AESGCM]:
        """The live data key of a scope, created if there is none, in the caller's own
        transaction (a new key rolls back with the work it sealed)."""
        from scribe.db.tables import DataKey

        table = DataKey.__table__  # type: ignore[attr-defined]
        conn = session.connection() if isinstance(session, OrmSession) else session
        query = (select(table.c.id, table.c.wrapped).where(table.c.owner == scope.owner, table.c.kind == scope.kind,
                                                            table.c.destroyed_at.is_(None)).order_by(table.c.id))
        row = conn.execute(query).first()
        if row is not None:
            return row.id, self._unwrap(row.wrapped, scope.owner, scope.kind)
        raw = AESGCM.generate_key(bit_length=256)
        nonce = secrets.token_bytes(12)
        wrapped = base64.b64encode(nonce + self._master.encrypt(nonce, raw, f"{scope.owner}|{scope.kind}".encode())).decode()
        result = conn.execute(table.insert().values(owner=scope.owner, kind=scope.kind, wrapped=wrapped,
                                                    created_at=now))
        key_id = int(result.inserted_primary_key[0])
        aead = AESGCM(raw)
        with self._lock:
            self._fresh[key_id] = aead  # readable in this transaction before it commits
        return key_id, aead

    def _unwrap(self, wrapped: str, owner: str, kind: str) -> AESGCM:
        blob = base64.b64decode(wrapped)
        try:
            return AESGCM(self._master.decrypt(blob[:12], blob[12:], f"{owner}|{kind}".encode()))
        except InvalidTag as exc:
            raise SealingError("a data key does not open with this master key") from exc

    def _aead(self, key_id: int) -> AESGCM:
        """A committed data key (cached for a minute), or one this process just created."""
        from scribe.db.tables import DataKey

        with self._lock:
            cached = self._keys.get(key_id)
        if cached is not None and time.monotonic() - cached[0] < CACHE_SECONDS:
            return cached[1]
        with OrmSession(self.engine) as own:
            row = own.get(DataKey, key_id)
            if row is None:
                with self._lock:
                    fresh = self._fresh.get(key_id)
                if fresh is None:
                    raise SealingError("a data key is missing")
                return fresh
            if row.destroyed_at is not None:
                raise Shredded("this content was destroyed with its key")
            aead = self._unwrap(row.wrapped, row.owner, row.kind)
        with self._lock:
            self._keys[key_id] = (time.monotonic(), aead)
            self._fresh.pop(key_id, None)
        return aead

    def check_opens_a_key(self) -> None:
        """Start-up self-check: the master key opens this database's data keys."""
        from scribe.db.tables import DataKey

        with OrmSession(self.engine) as own:
            row = own.execute(select(DataKey).where(DataKey.destroyed_at.is_(None)).limit(1)).scalars().first()  # type: ignore[union-attr]
            if row is not None:
                self._unwrap(row.wrapped, row.owner, row.kind)

    def shred(self, session: OrmSession, scope: Scope, now: datetime) -> int:
        """Destroy every data key of a scope (in the caller's transaction). Returns how many."""
        from scribe.db.tables import DataKey

        rows = session.execute(select(DataKey).where(DataKey.owner == scope.owner, DataKey.kind == scope.kind,
                                                     DataKey.destroyed_at.is_(None))).scalars().all()  # type: ignore[union-attr]
        for row in rows:
            row.wrapped, row.destroyed_at = "", now
            session.add(row)
            with self._lock:
                self._keys.pop(row.id or 0, None)
        return len(rows)

    # -- values ------------------------------------------------------------------------
    def seal(self, key_id: int, plaintext: bytes, label: str, aead: AESGCM | None = None) -> str:
        nonce = secrets.token_bytes(12)
        head = struct.pack(">I", key_id)
        ct = (aead or self._aead(key_id)).encrypt(nonce, plaintext, head + label.encode())
        return f"{PREFIX}{self.vault_id}.{base64.b64encode(head + nonce + ct).decode()}"

    def open(self, token: str, label: str) -> bytes:
        try:
            _, vault_id, body = token.split(".", 2)
            blob = base64.b64decode(body)
        except ValueError as exc:
            raise SealingError("a sealed value is malformed") from exc
        if vault_id != self.vault_id:
            raise SealingError("sealed under another master key")
        (key_id,) = struct.unpack(">I", blob[:4])
        try:
            return self._aead(key_id).decrypt(blob[4:16], blob[16:], blob[:4] + label.encode())
        except InvalidTag as exc:
            raise SealingError("a sealed value failed its integrity check") from exc

    # -- files -------------------------------------------------------------------------
    def seal_stream(self, key: tuple[int, AESGCM], source: BinaryIO, out: BinaryIO, *,
                    limit: int | None = None) -> tuple[int, str]:
        """Encrypt ``source`` into ``out`` chunk by chunk. Returns (plaintext bytes, sha256)."""
        key_id, aead = key
        base = secrets.token_bytes(8)
        header = FILE_MAGIC + self.vault_id.encode() + struct.pack(">I", key_id) + base
        out.write(header)
        digest, size, index = hashlib.sha256(), 0, 0
        chunk = source.read(FILE_CHUNK)
        while True:
            nxt = source.read(FILE_CHUNK) if chunk else b""
            size += len(chunk)
            if limit is not None and size > limit:
                raise OverflowError(size)
            digest.update(chunk)
            last = not nxt
            nonce = base + struct.pack(">I", index)
            ct = aead.encrypt(nonce, chunk, header + struct.pack(">I?", index, last))
            out.write(struct.pack(">I", len(ct)) + ct)
            if last:
                return size, digest.hexdigest()
            chunk, index = nxt, index + 1

    def open_stream(self, source: BinaryIO) -> Iterator[bytes]:
        header = source.read(len(FILE_MAGIC) + 12 + 4 + 8)
        if not header.startswith(FILE_MAGIC):
            raise SealingError("not a sealed file")
        if header[len(FILE_MAGIC):len(FILE_MAGIC) + 12].decode() != self.vault_id:
            raise SealingError("sealed under another master key")
        (key_id,) = struct.unpack(">I", header[len(FILE_MAGIC) + 12:len(FILE_MAGIC) + 16])
        aead, base, index = self._aead(key_id), header[-8:], 0
        while True:
            size_bytes = source.read(4)
            if len(size_bytes) < 4:
                raise SealingError("a sealed file is truncated")
            ct = source.read(struct.unpack(">I", size_bytes)[0])
            nonce = base + struct.pack(">I", index)
            for last in (False, True):
                try:
                    yield aead.decrypt(nonce, ct, header + struct.pack(">I?", index, last))
                    break
                except InvalidTag:
                    if last:
                        raise SealingError("a sealed file failed its integrity check") from None
            else:  # pragma: no cover
                continue
            if last:
                return
            index += 1

    def read_file(self, path: Path) -> bytes:
        with path.open("rb") as f:
            return b"".join(self.open_stream(f))



_VAULTS: dict[str, Vault] = {}
_BY_ENGINE: dict[int, Vault] = {}


def vault_for(engine: Engine) -> Vault:
    found = _BY_ENGINE.get(id(engine))
    if found is None:
        raise SealingError("no encryption key is loaded for this database")
    return found


class Sealed(TypeDecorator[Any]):
    """A clinical column: text or JSON, stored as AES-GCM ciphertext."""

    impl = Text
    cache_ok = True

    def __init__(self, label: str, *, is_json: bool = False) -> None:
        super().__init__()
        self.label = label
        self.is_json = is_json

    def process_bind_param(self, value: Any, dialect: Any) -> str | None:
        if value is None:
            return None
        if not isinstance(value, _ToSeal):
            raise SealingError(f"{self.label} is sealed: write it through the ORM unit of work")
        raw = json.dumps(value.value, ensure_ascii=False) if self.is_json else str(value.value)
        return value.vault.seal(value.key_id, raw.encode("utf-8"), self.label, value.aead)

    def process_result_value(self, value: str | None, dialect: Any) -> Any:
        if value is None:
            return None
        if not value.startswith(PREFIX):
            raise SealingError(f"{self.label} holds an unsealed value")
        vault = _VAULTS.get(value.split(".", 2)[1])
        if vault is None:
            raise SealingError("no encryption key is loaded for this value")
        try:
            raw = vault.open(value, self.label).decode("utf-8")
        except Shredded:
            return SHREDDED_JSON if self.is_json else SHREDDED_TEXT
        return json.loads(raw) if self.is_json else raw


SHREDDED_TEXT = "[destroyed]"
SHREDDED_JSON: Any = None


@functools.cache
def sealed_columns(cls: type) -> tuple[str, ...]:
    try:
        return tuple(c.key for c in inspect(cls).columns if isinstance(c.type, Sealed))
    except NoInspectionAvailable:
        return ()


@event.listens_for(OrmSession, "before_flush")
def _seal_on_flush(session: OrmSession, _context: Any, _instances: Any) -> None:
    pending: list[tuple[Any, str, Any]] = session.info.setdefault("_sealed_restore", [])
    keys: dict[Scope, tuple[int, AESGCM]] = {}  # one lookup per client and kind, not per row
    for obj in list(session.new) + list(session.dirty):
        columns = sealed_columns(type(obj))
        if not columns:
            continue
        state = inspect(obj)
        changed = [c for c in columns if (state.pending or state.attrs[c].history.has_changes())
                   and not isinstance(getattr(obj, c), _ToSeal) and getattr(obj, c) is not None]
        if not changed:
            continue
        vault = vault_for(session.get_bind())  # type: ignore[arg-type]
        scope = obj.seal_scope(session)
        if scope not in keys:
            keys[scope] = vault.key_for(session, scope, _now())
        key_id, aead = keys[scope]
        for c in changed:
            value = getattr(obj, c)
            setattr(obj, c, _ToSeal(value, vault, key_id, aead))
            pending.append((obj, c, value))


@event.listens_for(OrmSession, "after_flush_postexec")
def _restore_after_flush(session: OrmSession, _context: Any) -> None:
    for obj, column, value in session.info.pop("_sealed_restore", []):
        set_committed_value(obj, column, value)


@event.listens_for(OrmSession, "after_rollback")
def _forget_pending(session: OrmSession) -> None:
    for obj, column, value in session.info.pop("_sealed_restore", []):
        if isinstance(obj.__dict__.get(column), _ToSeal):
            set_committed_value(obj, column, value)


def _now() -> datetime:
    from datetime import UTC

    return datetime.now(UTC)


def has_data_keys(engine: Engine) -> bool:
    from sqlalchemy import inspect as sa_inspect, text

    with engine.connect() as conn:
        if "data_keys" not in sa_inspect(conn).get_table_names():
            return False
        return bool(conn.execute(text("SELECT COUNT(*) FROM data_keys")).scalar())
