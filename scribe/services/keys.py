"""Secrets kept outside the database file (the master key, the audit HMAC key)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

KEY_BYTES = 32


class KeyFileError(RuntimeError):
    """A key file is missing where data depends on it, unreadable by policy, or malformed."""


def load_or_create_key(path: Path, *, must_exist: str | None = None) -> bytes:
    """The 32-byte key in ``path``; created (fsync'ed, 0600) when absent, unless
    ``must_exist`` says why it must already be there (data sealed or chained with it)."""
    if path.exists():
        if path.stat().st_mode & 0o077:
            raise KeyFileError(f"{path} is readable by group or others; chmod 600 it")
        key = path.read_bytes()
        if len(key) != KEY_BYTES:
            raise KeyFileError(f"{path} holds {len(key)} bytes, not a {KEY_BYTES}-byte key: restore it from the "
                               "backup of your key directory")
        return key
    if must_exist:
        raise KeyFileError(f"the key {path} is missing and {must_exist}: restore the key file (or set "
                           "SCRIBE_KEY_DIR); scribe will not make a new one")
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = secrets.token_bytes(KEY_BYTES)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key)
        f.flush()
        os.fsync(f.fileno())
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)  # the new name survives a power cut too
    finally:
        os.close(folder)
    return key
