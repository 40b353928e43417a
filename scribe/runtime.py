"""The one composition root: everything a request, a job or a command needs, built once
from explicit arguments and passed everywhere (the web app, the worker, the CLI, tests).

Services that need it import the type only (``if TYPE_CHECKING``), so the dependency
direction of STYLE.md holds at run time: this module builds on services, not the reverse."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine

from scribe.config import Settings
from scribe.db.sealing.vault import Vault
from scribe.engines.protocols import Decoder, Engines, Voices
from scribe.policies import Policies

if TYPE_CHECKING:
    from scribe.queues import JobQueue


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Runtime:
    """Settings, policies, the database, the keys, the clock and (in a process that runs
    jobs) the engines. There is no second context object: the pipeline takes this."""

    settings: Settings
    policies: Policies
    engine: Engine
    audit_key: bytes
    clock: Callable[[], datetime]
    engines: Engines | None = None
    vault: Vault | None = None
    _decoder: Decoder | None = None
    queue: JobQueue | None = None
    _voices: Voices | None = None

    @property
    def decoder(self) -> Decoder:
        """The sandboxed audio decoder (a child process per file; cheap to build)."""
        if self._decoder is None:
            from scribe.engines.build import build_decoder

            self._decoder = build_decoder(self.policies)
        return self._decoder

    @property
    def recordings_dir(self) -> Path:
        return self.settings.recordings_dir

    @property
    def anchors_dir(self) -> Path:
        return self.settings.anchors_dir

    @property
    def spool_dir(self) -> Path:
        """Where in-flight upload bytes go (sealed), inside the protected data directory."""
        return self.settings.data_dir / "tmp"

    def require_engines(self) -> Engines:
        if self.engines is None:
            raise RuntimeError("engines are not loaded in this process")
        return self.engines

    def voices(self) -> Voices:
        """The speaker-turn engine: the loaded engines' own, or built on first use (the web app
        needs it only to enrol a clinician's voice; it is small)."""
        if self.engines is not None and self.engines.voices is not None:
            return self.engines.voices
        if self._voices is None:
            from scribe.engines.build import build_voices

            self._voices = build_voices(self.settings)
        return self._voices

    def load_engines(self) -> Engines:
        """The real engines, wired to this runtime's policies, egress ledger and clock."""
        from scribe.engines.build import build_engines
        from scribe.services.egress import SqlLedger

        self.engines = build_engines(self.settings, self.policies, egress_ledger=SqlLedger(self.engine),
                                     clock=self.clock)
        return self.engines


def _migrate_as_owner(settings: Settings, master: bytes) -> None:
    """PostgreSQL with two roles: migrate as the owner, then (re)grant the app's role."""
    from sqlalchemy.engine import make_url

    from scribe.db.engine import make_engine
    from scribe.db.migrate import upgrade
    from scribe.db.roles import grant_app_role
    from scribe.db.sealing.columns import install as install_sealing

    app_url = make_url(settings.sqlalchemy_url)
    if app_url.get_backend_name() != "postgresql" or not app_url.username:
        raise RuntimeError("SCRIBE_DATABASE_OWNER_URL is for PostgreSQL: SCRIBE_DATABASE_URL must then name the "
                           "app's own role")
    owner = make_engine(settings.database_owner_url or "")
    try:
        vault = Vault(master, owner)
        install_sealing(owner, vault)
        upgrade(owner, vault=vault)
        grant_app_role(owner, app_url.username)
    finally:
        owner.dispose()


def build_runtime(settings: Settings, *, policies: Policies | None = None, engines: Engines | None = None,
                  clock: Callable[[], datetime] = utc_now, migrate: bool = True) -> Runtime:
    """Open the database (migrating it), the keys and the policies. Imported lazily, so
    that a route module importing the Runtime type pulls in neither alembic nor services."""
    from scribe.db.engine import make_engine
    from scribe.policies import load_policies

    placement = settings.key_placement_problems()
    if placement:
        raise RuntimeError("refusing to start: " + "; ".join(placement) +
                           " (SCRIBE_KEYS_IN_DATA_DIR=true allows it, for development only)")
    policies = policies or load_policies(settings.policies_dir)
    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    engine = make_engine(settings.sqlalchemy_url)
    try:
        return _open(settings, policies, engine, engines, clock, migrate)
    except BaseException:
        engine.dispose()  # a refused start leaves no connection open behind it
        raise


def _open(settings: Settings, policies: Policies, engine: Engine, engines: Engines | None,
          clock: Callable[[], datetime], migrate: bool) -> Runtime:
    from sqlalchemy import text

    from scribe.db.engine import check_durability, make_engine
    from scribe.db.migrate import upgrade
    from scribe.db.sealing.columns import install as install_sealing
    from scribe.db.sealing.vault import has_data_keys
    from scribe.services.keys import load_or_create_key

    if not settings.master_key_path.exists() and has_data_keys(engine):
        raise RuntimeError(f"the master key {settings.master_key_path} is missing, and this database holds data "
                           "sealed with it: restore the key file (or set SCRIBE_KEY_DIR); scribe will not make a new one")
    master = load_or_create_key(settings.master_key_path)
    if settings.database_owner_url:
        from scribe.db.roles import ownership_problems

        owned = ownership_problems(engine)
        if owned:
            raise RuntimeError("refusing to start: " + "; ".join(owned))
        if migrate:
            _migrate_as_owner(settings, master)
    vault = Vault(master, engine)
    install_sealing(engine, vault)
    if not settings.database_owner_url and migrate:
        upgrade(engine, vault=vault)
    vault.check_opens_a_key()
    problems = check_durability(engine)
    if problems:
        raise RuntimeError("unsafe database settings: " + "; ".join(problems))
    with engine.connect() as conn:
        chained = conn.execute(text("SELECT 1 FROM audit_events LIMIT 1")).first() is not None
    key = load_or_create_key(settings.audit_key_path,
                             must_exist="this database's audit chain is signed with it" if chained else None)
    from scribe.queues import ProcrastinateQueue, build_queue

    queue = build_queue(settings)
    if isinstance(queue, ProcrastinateQueue) and migrate:
        owner = make_engine(settings.database_owner_url) if settings.database_owner_url else engine
        try:
            queue.ensure_schema(owner)
        finally:
            if owner is not engine:
                owner.dispose()
    queue.install(engine)
    runtime = Runtime(settings, policies, engine, key, clock, engines, vault, queue=queue)
    runtime.spool_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    return runtime
