"""The keys: a master key kept outside the database, and the data keys it wraps (table
``data_keys``), one per owner and kind (a client's transcripts, a client's audio ...).
Destroying a data key (``shred``) makes everything sealed with it unreadable, in the
database, its WAL, the file store and every backup: crypto-shredding."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import Connection, Engine, func, select
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import col

from scribe.db.sealing import envelope
from scribe.db.sealing.envelope import Binding, Scope, SealingError, Shredded
from scribe.db.tables import DataKey

CACHE_SECONDS = 60.0  # another process may destroy a key; a cached copy lives this long
DataKeyRef = tuple[int, AESGCM]


class Vault:
    """The master key and the data keys it wraps, for one database."""

    def __init__(self, master: bytes, engine: Engine) -> None:
        if len(master) != 32:
            raise SealingError("the master key must be 32 bytes")
        self._master = AESGCM(master)
        self.vault_id = hashlib.sha256(b"scribe-vault" + master).hexdigest()[:envelope.VAULT_ID_LEN]
        self.engine = engine
        # The blind index key: derived, so there is no second secret to lose; a keyed hash of
        # a name or MRN reveals nothing to whoever holds the database without the master key.
        self._blind = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"scribe blind index v1").derive(master)
        self._keys: dict[int, tuple[float, AESGCM]] = {}
        self._fresh: dict[int, AESGCM] = {}
        self._lock = threading.Lock()

    # -- data keys ---------------------------------------------------------------------
    def key_for(self, session: OrmSession | Connection, scope: Scope, now: datetime) -> DataKeyRef:
        """The live data key of a scope, created if there is none, in the caller's own
        transaction (a new key rolls back with the work it sealed)."""
        table = DataKey.__table__  # type: ignore[attr-defined]
        conn = session.connection() if isinstance(session, OrmSession) else session
        query = (select(table.c.id, table.c.wrapped)
                 .where(table.c.owner == scope.owner, table.c.kind == scope.kind, table.c.destroyed_at.is_(None))
                 .order_by(table.c.id))
        row = conn.execute(query).first()
        if row is not None:
            return row.id, self._unwrap(row.wrapped, scope.owner, scope.kind)
        raw = AESGCM.generate_key(bit_length=256)
        nonce = secrets.token_bytes(12)
        wrapped = base64.b64encode(nonce + self._master.encrypt(nonce, raw, _wrap_aad(scope.owner, scope.kind)))
        result = conn.execute(table.insert().values(owner=scope.owner, kind=scope.kind, wrapped=wrapped.decode(),
                                                    created_at=now))
        inserted = result.inserted_primary_key
        if inserted is None:  # an insert of one row always has it
            raise SealingError("the new data key has no id")
        key_id = int(inserted[0])
        aead = AESGCM(raw)
        with self._lock:
            self._fresh[key_id] = aead  # readable in this transaction before it commits
        return key_id, aead

    def _unwrap(self, wrapped: str, owner: str, kind: str) -> AESGCM:
        blob = base64.b64decode(wrapped)
        try:
            return AESGCM(self._master.decrypt(blob[:12], blob[12:], _wrap_aad(owner, kind)))
        except InvalidTag as exc:
            raise SealingError("a data key does not open with this master key") from exc

    def aead(self, key_id: int) -> AESGCM:
        """A committed data key (cached for a minute), or one this process just created."""
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

    def aead_in(self, conn: Connection, key_id: int) -> AESGCM:
        """A data key read through the caller's own connection (a migration, whose keys may
        not be committed yet); not cached."""
        table = DataKey.__table__  # type: ignore[attr-defined]
        row = conn.execute(select(table.c.owner, table.c.kind, table.c.wrapped, table.c.destroyed_at)
                           .where(table.c.id == key_id)).first()
        if row is None:
            raise SealingError("a data key is missing")
        if row.destroyed_at is not None:
            raise Shredded("this content was destroyed with its key")
        return self._unwrap(row.wrapped, row.owner, row.kind)

    def check_opens_a_key(self) -> None:
        """Start-up self-check: the master key opens this database's data keys."""
        with OrmSession(self.engine) as own:
            row = own.execute(select(DataKey).where(DataKey.destroyed_at.is_(None))  # type: ignore[union-attr]
                              .limit(1)).scalars().first()
            if row is not None:
                self._unwrap(row.wrapped, row.owner, row.kind)

    def shred(self, session: OrmSession, scope: Scope, now: datetime) -> int:
        """Destroy every data key of a scope (in the caller's transaction). Returns how many."""
        rows = session.execute(select(DataKey).where(col(DataKey.owner) == scope.owner, col(DataKey.kind) == scope.kind,
                                                     col(DataKey.destroyed_at).is_(None))
                               ).scalars().all()
        for row in rows:
            row.wrapped, row.destroyed_at = "", now
            session.add(row)
            with self._lock:
                self._keys.pop(row.id or 0, None)
        return len(rows)

    def blind(self, purpose: str, value: str) -> str:
        """A keyed hash for finding a sealed value by equality (``purpose`` keeps the MRN index
        and the name index apart)."""
        return hmac.new(self._blind, f"{purpose}\x00{value}".encode(), hashlib.sha256).hexdigest()[:32]

    # -- values and files ----------------------------------------------------------------
    def seal_value(self, key: DataKeyRef, plaintext: bytes, label: str, binding: Binding) -> str:
        return envelope.seal_value(self.vault_id, key[0], key[1], plaintext, label, binding)

    def open_value(self, token: str, label: str, binding: Binding) -> bytes:
        return envelope.open_value(self, token, label, binding)

    def seal_stream(self, key: DataKeyRef, source: BinaryIO, out: BinaryIO, *, context: str,
                    limit: int | None = None) -> tuple[int, str]:
        return envelope.seal_stream(self.vault_id, key[0], key[1], source, out, context=context, limit=limit)

    def read_file(self, path: Path, *, context: str) -> bytes:
        with path.open("rb") as f:
            return b"".join(envelope.open_stream(self, f, context=context))


def _wrap_aad(owner: str, kind: str) -> bytes:
    return f"{owner}|{kind}".encode()


def has_data_keys(engine: Engine) -> bool:
    with engine.connect() as conn:
        if "data_keys" not in sa_inspect(conn).get_table_names():
            return False
        return bool(conn.execute(select(func.count()).select_from(DataKey.__table__)).scalar())  # type: ignore[attr-defined]
