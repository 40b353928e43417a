"""Durable, sealed files: written to a temporary name, fsync'ed, renamed into place, and the folder
fsync'ed, so that what we acknowledge survives a power cut and no half-written file is ever
seen under its final name."""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import Engine
from sqlmodel import Session

from scribe.db.sealing import Scope, Vault, vault_for


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass(frozen=True)
class FileKey:
    """The data key that seals one owner's files of one kind (audio, scanned forms)."""

    vault: Vault
    key: tuple[int, Any]

    @classmethod
    def for_owner(cls, session: Session, owner: str, kind: str, now: datetime) -> "FileKey":
        vault = vault_for(session.get_bind())  # type: ignore[arg-type]
        return cls(vault, vault.key_for(session, Scope(owner, kind), now))

    def seal_durably(self, path: Path, source: BinaryIO, *, limit: int | None = None) -> tuple[int, str]:
        """Encrypt ``source`` into ``path`` (temporary name, fsync, rename, fsync the folder).
        Returns the plaintext size and sha256. Plaintext never touches the disk."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.part")
        try:
            with tmp.open("wb") as out:
                size, sha = self.vault.seal_stream(self.key, source, out, limit=limit)
                out.flush()
                os.fsync(out.fileno())
            tmp.replace(path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        fsync_dir(path.parent)
        return size, sha

    def seal_bytes(self, path: Path, data: bytes) -> str:
        return self.seal_durably(path, io.BytesIO(data))[1]


def read_sealed(engine: Engine, path: Path) -> bytes:
    """A sealed file's plaintext, in memory only."""
    return vault_for(engine).read_file(path)
