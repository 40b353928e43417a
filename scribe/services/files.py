"""Durable, sealed files: written to a temporary name, fsync'ed, renamed into place, and the
folder fsync'ed, so that what we acknowledge survives a power cut and no half-written file
is ever seen under its final name. Each file is sealed under its owner's data key and bound
to its name in its store (db/sealing/FORMAT.md), so a file put in another's place does not
open."""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from sqlalchemy import Engine
from sqlmodel import Session

from scribe.db.sealing.columns import vault_for
from scribe.db.sealing.envelope import Scope
from scribe.db.sealing.vault import DataKeyRef, Vault

RECORDINGS = "recordings"
FORMS = "consent-forms"


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
    key: DataKeyRef

    @classmethod
    def for_owner(cls, session: Session, owner: str, kind: str, now: datetime) -> FileKey:
        vault = vault_for(session.get_bind())
        return cls(vault, vault.key_for(session, Scope(owner, kind), now))


@dataclass(frozen=True)
class Store:
    """One folder of sealed files (the recordings, the scanned consent forms). A file is
    named by its path relative to the folder, and that name is sealed into it."""

    root: Path
    name: str

    def path(self, rel: str) -> Path:
        return self.root / rel

    def context(self, rel: str) -> str:
        return f"{self.name}/{rel}"

    def write(self, sealer: FileKey, rel: str, source: BinaryIO, *, limit: int | None = None) -> tuple[int, str]:
        """Encrypt ``source`` into the file ``rel`` (temporary name, fsync, rename, fsync the
        folder). Returns the plaintext size and sha256. Plaintext never touches the disk."""
        path = self.path(rel)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.part")
        try:
            with tmp.open("wb") as out:
                size, sha = sealer.vault.seal_stream(sealer.key, source, out, context=self.context(rel), limit=limit)
                out.flush()
                os.fsync(out.fileno())
            tmp.replace(path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        fsync_dir(path.parent)
        return size, sha

    def write_bytes(self, sealer: FileKey, rel: str, data: bytes) -> str:
        return self.write(sealer, rel, io.BytesIO(data))[1]

    def read(self, engine: Engine, rel: str) -> bytes:
        """A sealed file's plaintext, in memory only."""
        return vault_for(engine).read_file(self.path(rel), context=self.context(rel))


def recordings(recordings_dir: Path) -> Store:
    return Store(recordings_dir, RECORDINGS)


def forms(forms_dir: Path) -> Store:
    return Store(forms_dir, FORMS)
