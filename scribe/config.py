"""Settings from ``SCRIBE_*`` environment variables. Built once by the caller and
passed to ``create_app``/the worker; nothing reads a module-level settings object."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SCRIBE_", extra="ignore")

    data_dir: Path = Field(default=ROOT / "var", description="Database file, recordings, keys")
    database_url: str | None = Field(default=None, description="SQLAlchemy URL; default: SQLite file in data_dir")
    database_owner_url: str | None = Field(default=None, description="PostgreSQL: the role that owns the tables and "
                                           "migrates them; database_url then names a restricted app role")
    models_dir: Path = Field(default=ROOT / "models", description="Installed model weights")
    model_profile: Literal["default", "test"] = Field(default="default", description="Which pinned models to use")
    policies_dir: Path = Field(default=ROOT / "policies")
    web_dir: Path = Field(default=ROOT / "web")
    engines: Literal["real", "fake"] = Field(default="real", description="'fake' runs the UI without weights")
    fake_cost_seconds: float = Field(default=0.0, ge=0, description="Fake engines only: seconds each transcription "
                                     "and draft takes (benchmarks of the queue, crash tests)")
    drafter_remote: str = Field(default="", description="Draft on an on-prem model server: a destination in policies/egress.yaml")
    drafter_remote_model: str = Field(default="local", description="The model name sent to that server")
    drafter_backend: Literal["ct2", "transformers"] = Field(default="ct2", description="How the local drafter executes")
    drafter_model_dir: Path | None = Field(default=None, description="A practice's own larger model (HF directory)")
    cpu_threads: int = Field(default_factory=lambda: os.cpu_count() or 2)
    host: str = "127.0.0.1"
    port: int = 8000
    worker_in_process: bool = Field(default=True, description="Run the pipeline worker inside `scribe serve`")
    queue_engine: Literal["table", "procrastinate"] = Field(
        default="table", description="table: the embedded queue in the database; procrastinate: Procrastinate on "
        "PostgreSQL, for several worker hosts")
    queue_heartbeat_seconds: float = Field(default=5.0, gt=0, description="procrastinate: how often a worker "
                                           "says it is alive")
    queue_stalled_seconds: float = Field(default=30.0, gt=0, description="procrastinate: a worker silent this long "
                                         "(killed, cut off) has its stage run again by another")
    device: Literal["cpu", "cuda"] = Field(default="cpu", description="Where Whisper and the drafter run (cuda: a "
                                           "GPU worker host)")
    secure_cookies: bool = Field(default=False, description="Set on behind a TLS reverse proxy")
    key_dir: Path | None = Field(default=None, description="Master and audit keys; default scribe-keys beside (never "
                                 "inside) data_dir. Put it on another volume so a copy of the data alone opens nothing")
    anchor_dir: Path | None = Field(default=None, description="Where audit-chain anchors are written; default "
                                    "scribe-anchors beside data_dir. Point it at storage the database host cannot rewrite")
    storage_dir: Path | None = Field(default=None, description="Recordings, recording chunks and scanned forms "
                                     "(sealed); default data_dir. Several hosts: a shared filesystem mounted "
                                     "at the same path on each")
    keys_in_data_dir: bool = Field(default=False, description="Development only: allow keys or anchors inside data_dir")

    @property
    def sqlalchemy_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'scribe.db'}"

    @property
    def files_dir(self) -> Path:
        """Where the sealed files live (this host's data_dir, or the deployment's shared storage)."""
        return self.storage_dir or self.data_dir

    @property
    def recordings_dir(self) -> Path:
        return self.files_dir / "recordings"

    @property
    def forms_dir(self) -> Path:
        """Scanned consent forms."""
        return self.files_dir / "consent-forms"

    @property
    def audit_key_path(self) -> Path:
        return self.keys_dir / "audit.key"

    @property
    def master_key_path(self) -> Path:
        return self.keys_dir / "master.key"

    @property
    def keys_dir(self) -> Path:
        return self.key_dir or self.data_dir.parent / "scribe-keys"

    @property
    def anchors_dir(self) -> Path:
        return self.anchor_dir or self.data_dir.parent / "scribe-anchors"

    def key_placement_problems(self) -> list[str]:
        """Keys or anchors inside the data directory or the shared storage: one copy of it would
        open (or let someone rewrite) everything. Refused unless ``keys_in_data_dir`` (development)."""
        if self.keys_in_data_dir:
            return []
        problems = []
        folders = [("the data directory", self.data_dir)]
        if self.storage_dir is not None:  # shared storage: every host reads it; a key there opens it all
            folders.append(("the shared storage", self.storage_dir))
        for where, folder in folders:
            for what, path, setting in (("the keys", self.keys_dir, "SCRIBE_KEY_DIR"),
                                        ("the audit anchors", self.anchors_dir, "SCRIBE_ANCHOR_DIR")):
                if path.resolve().is_relative_to(folder.resolve()):
                    problems.append(f"{what} ({path}) are inside {where} {folder}: set {setting} to another volume")
        legacy = self.data_dir / "keys"
        if (legacy / "master.key").exists() and self.key_dir is None:
            problems.append(f"keys from an earlier version are in {legacy}: move them out "
                            f"(mv {legacy} {self.keys_dir}) or set SCRIBE_KEY_DIR")
        legacy_anchors = self.data_dir / "audit-anchors"
        if legacy_anchors.exists() and self.anchor_dir is None:
            problems.append(f"audit anchors from an earlier version are in {legacy_anchors}: move them out "
                            f"(mv {legacy_anchors} {self.anchors_dir}) or set SCRIBE_ANCHOR_DIR")
        return problems
