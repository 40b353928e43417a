"""The sealed formats, as pure functions over bytes: a sealed value (a database cell), a
sealed stream (a recording, a chunk, a scanned form) and the records both are made of.
No keys are looked up and no SQL is run here; FORMAT.md beside this file is the
specification these functions implement."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import struct
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO, BinaryIO, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

VALUE_PREFIX = "S2."
LEGACY_VALUE_PREFIX = "S1."  # before migration 0010: bound to key id and column, not to the row
STREAM_MAGIC = b"SCRIBE-SEALED-2\n"
LEGACY_STREAM_MAGIC = b"SCRIBE-SEALED-1\n"
STREAM_CHUNK = 1 << 20
VAULT_ID_LEN = 12
MAX_CONTEXT = 1024

Binding = Mapping[str, "int | str | datetime"]


class SealingError(RuntimeError):
    """A sealed value could not be written or read (no key loaded, key destroyed, tampered)."""


class Shredded(SealingError):
    """The data key was destroyed: the content is gone for good."""


@dataclass(frozen=True)
class Scope:
    """Whose key seals a value: a client's (or a supervisor's meetings') key for one kind."""

    owner: str  # "client:12", "meetings:40", "user:5"
    kind: str  # audio | transcript | draft | record | form | identity | mfa


class Keys(Protocol):
    """What opening needs: the vault's id and a data key by its id."""

    @property
    def vault_id(self) -> str: ...

    def aead(self, key_id: int) -> AESGCM: ...


# -- values ------------------------------------------------------------------------------

def _canonical(value: object) -> str:
    if isinstance(value, datetime):  # an identifying time, as UTC text to the microsecond
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    raise TypeError(f"a row binding holds ints, strings and times, not {type(value).__name__}")


def value_aad(key_id: int, label: str, binding: Binding) -> bytes:
    """What a sealed value is bound to: its data key, its column and the row it belongs to
    (the row's identifying columns). Moving it to another column or row fails its tag."""
    where = json.dumps([label, dict(binding)], sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                       default=_canonical)
    return struct.pack(">I", key_id) + b"S2\x00" + where.encode("utf-8")


def seal_value(vault_id: str, key_id: int, aead: AESGCM, plaintext: bytes, label: str, binding: Binding) -> str:
    nonce = secrets.token_bytes(12)
    ct = aead.encrypt(nonce, plaintext, value_aad(key_id, label, binding))
    return f"{VALUE_PREFIX}{vault_id}.{base64.b64encode(struct.pack('>I', key_id) + nonce + ct).decode()}"


def parse_value(token: str) -> tuple[str, str, int, bytes, bytes]:
    """(prefix, vault id, key id, nonce, ciphertext) of a sealed value, or SealingError."""
    try:
        prefix, vault_id, body = token.split(".", 2)
        blob = base64.b64decode(body, validate=True)
    except (ValueError, TypeError) as exc:
        raise SealingError("a sealed value is malformed") from exc
    if f"{prefix}." not in (VALUE_PREFIX, LEGACY_VALUE_PREFIX) or len(blob) < 4 + 12 + 16:
        raise SealingError("a sealed value is malformed")
    (key_id,) = struct.unpack(">I", blob[:4])
    return f"{prefix}.", vault_id, key_id, blob[4:16], blob[16:]


def open_value(keys: Keys, token: str, label: str, binding: Binding) -> bytes:
    prefix, vault_id, key_id, nonce, ct = parse_value(token)
    if prefix != VALUE_PREFIX:
        raise SealingError("a sealed value is in the format before migration 0010")
    if vault_id != keys.vault_id:
        raise SealingError("sealed under another master key")
    try:
        return keys.aead(key_id).decrypt(nonce, ct, value_aad(key_id, label, binding))
    except InvalidTag as exc:
        raise SealingError("a sealed value failed its integrity check (altered, or moved from another row)") from exc


def open_legacy_value(keys: Keys, token: str, label: str) -> bytes:
    """An S1 value (migration 0010 re-seals them all): bound to its key and column only."""
    prefix, vault_id, key_id, nonce, ct = parse_value(token)
    if prefix != LEGACY_VALUE_PREFIX or vault_id != keys.vault_id:
        raise SealingError("not a legacy value of this vault")
    try:
        return keys.aead(key_id).decrypt(nonce, ct, struct.pack(">I", key_id) + label.encode())
    except InvalidTag as exc:
        raise SealingError("a sealed value failed its integrity check") from exc


def seal_legacy_value(vault_id: str, key_id: int, aead: AESGCM, plaintext: bytes, label: str) -> str:
    """The S1 format, for migrations 0005 and 0008 (which 0010 then re-seals)."""
    nonce = secrets.token_bytes(12)
    head = struct.pack(">I", key_id)
    ct = aead.encrypt(nonce, plaintext, head + label.encode())
    return f"{LEGACY_VALUE_PREFIX}{vault_id}.{base64.b64encode(head + nonce + ct).decode()}"


def key_id_of(token: str) -> int:
    return parse_value(token)[2]


# -- streams -----------------------------------------------------------------------------

def _header(vault_id: str, key_id: int, base: bytes, context: str) -> bytes:
    ctx = context.encode("utf-8")
    if len(ctx) > MAX_CONTEXT:
        raise SealingError("a sealed file's context is too long")
    return STREAM_MAGIC + vault_id.encode() + struct.pack(">I", key_id) + base + struct.pack(">H", len(ctx)) + ctx


def _record_aad(header: bytes, index: int, last: bool) -> bytes:
    return header + struct.pack(">I?", index, last)


def seal_stream(vault_id: str, key_id: int, aead: AESGCM, source: IO[bytes], out: IO[bytes], *, context: str,
                limit: int | None = None) -> tuple[int, str]:
    """Encrypt ``source`` into ``out`` in records of ``STREAM_CHUNK``; the header names the
    file's ``context`` (its name in its store), so a sealed file moved to another name does
    not open. Returns (plaintext bytes, plaintext sha256). OverflowError past ``limit``."""
    base = secrets.token_bytes(8)
    header = _header(vault_id, key_id, base, context)
    out.write(header)
    digest, size, index = hashlib.sha256(), 0, 0
    chunk = source.read(STREAM_CHUNK)
    while True:
        nxt = source.read(STREAM_CHUNK) if chunk else b""
        size += len(chunk)
        if limit is not None and size > limit:
            raise OverflowError(size)
        digest.update(chunk)
        last = not nxt
        ct = aead.encrypt(base + struct.pack(">I", index), chunk, _record_aad(header, index, last))
        out.write(struct.pack(">I", len(ct)) + ct)
        if last:
            return size, digest.hexdigest()
        chunk, index = nxt, index + 1


def read_stream_header(source: BinaryIO) -> tuple[bytes, str, int, bytes, str | None]:
    """(header bytes, vault id, key id, nonce base, context or None for the legacy format)."""
    magic = source.read(len(STREAM_MAGIC))
    if magic not in (STREAM_MAGIC, LEGACY_STREAM_MAGIC):
        raise SealingError("not a sealed file")
    fixed = source.read(VAULT_ID_LEN + 4 + 8)
    if len(fixed) < VAULT_ID_LEN + 12:
        raise SealingError("a sealed file is truncated")
    vault_id = fixed[:VAULT_ID_LEN].decode("ascii", "replace")
    (key_id,) = struct.unpack(">I", fixed[VAULT_ID_LEN:VAULT_ID_LEN + 4])
    base = fixed[-8:]
    if magic == LEGACY_STREAM_MAGIC:
        return magic + fixed, vault_id, key_id, base, None
    raw_len = source.read(2)
    if len(raw_len) < 2:
        raise SealingError("a sealed file is truncated")
    ctx = source.read(struct.unpack(">H", raw_len)[0])
    return magic + fixed + raw_len + ctx, vault_id, key_id, base, ctx.decode("utf-8", "replace")


def open_stream(keys: Keys, source: BinaryIO, *, context: str | None) -> Iterator[bytes]:
    """The plaintext records of a sealed file. ``context`` must be the name it was sealed
    under (None accepts only a legacy file, which carries none). Truncation, reordering,
    a record from another file and any altered byte fail."""
    header, vault_id, key_id, base, sealed_context = read_stream_header(source)
    if vault_id != keys.vault_id:
        raise SealingError("sealed under another master key")
    if sealed_context is not None and sealed_context != context:
        raise SealingError("a sealed file is not the one this record names")
    aead, index = keys.aead(key_id), 0
    while True:
        size_bytes = source.read(4)
        if len(size_bytes) < 4:
            raise SealingError("a sealed file is truncated")
        ct = source.read(struct.unpack(">I", size_bytes)[0])
        nonce = base + struct.pack(">I", index)
        for last in (False, True):
            try:
                yield aead.decrypt(nonce, ct, _record_aad(header, index, last))
            except InvalidTag:
                if last:
                    raise SealingError("a sealed file failed its integrity check") from None
                continue
            break
        if last:
            return
        index += 1
