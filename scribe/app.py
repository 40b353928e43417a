"""The composition root: the one place everything is wired, from explicit arguments."""

from __future__ import annotations

import logging
import tempfile
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from sqlalchemy import Engine

from scribe.config import Settings
from scribe.db.engine import check_durability, make_engine
from scribe.db.migrate import upgrade
from scribe.db.sealing import Vault, has_data_keys
from scribe.domain.egress import PART2_NOTICE
from scribe.engines.protocols import Engines
from scribe.policies import Policies, load_policies
from scribe.services.keys import load_or_create_key
from scribe.services.pipeline import PipelineContext
from scribe.worker import Worker

log = logging.getLogger("scribe.app")


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Runtime:
    """Everything a request or a job needs, built once."""

    settings: Settings
    policies: Policies
    engine: Engine
    audit_key: bytes
    clock: Callable[[], datetime]
    engines: Engines | None = None
    vault: Vault | None = None

    def load_engines(self) -> Engines:
        """The real engines, wired to this runtime's egress ledger and clock."""
        from scribe.engines.build import build_engines
        from scribe.services.egress import SqlLedger

        self.engines = build_engines(self.settings, clinician_first=self.policies.pipeline.clinician_is_first_speaker,
                                     egress_ledger=SqlLedger(self.engine), clock=self.clock)
        return self.engines

    def pipeline(self) -> PipelineContext:
        if self.engines is None:
            raise RuntimeError("engines are not loaded in this process")
        return PipelineContext(self.engine, self.engines, self.policies, self.settings.recordings_dir,
                               self.audit_key, self.clock, self.settings.anchors_dir)


def build_runtime(settings: Settings, *, policies: Policies | None = None, engines: Engines | None = None,
                  clock: Callable[[], datetime] = utc_now, migrate: bool = True) -> Runtime:
    policies = policies or load_policies(settings.policies_dir)
    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    engine = make_engine(settings.sqlalchemy_url)
    if not settings.master_key_path.exists() and has_data_keys(engine):
        raise RuntimeError(f"the master key {settings.master_key_path} is missing, and this database holds data "
                           "sealed with it: restore the key file (or set SCRIBE_KEY_DIR); scribe will not make a new one")
    vault = Vault(load_or_create_key(settings.master_key_path), engine)
    if migrate:
        upgrade(engine, vault=vault)
    vault.check_opens_a_key()
    problems = check_durability(engine)
    if problems:
        raise RuntimeError("unsafe database settings: " + "; ".join(problems))
    key = load_or_create_key(settings.audit_key_path)
    return Runtime(settings, policies, engine, key, clock, engines, vault)


def create_app(settings: Settings, *, runtime: Runtime | None = None, engines: Engines | None = None,
               policies: Policies | None = None, clock: Callable[[], datetime] = utc_now,
               start_worker: bool | None = None) -> FastAPI:
    """Build the web app. Engines are only needed when this process runs the worker."""
    from scribe.web import errors, security
    from scribe.web.routes import auth, consent, oversight, recording, sessions, supervision
    from scribe.web.templating import make_templates

    rt = runtime or build_runtime(settings, policies=policies, engines=engines, clock=clock)
    run_worker = settings.worker_in_process if start_worker is None else start_worker

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        worker = None
        if run_worker:
            if rt.engines is None:
                rt.load_engines()
            worker = Worker(rt.pipeline())
            worker.start_thread()
        yield
        if worker is not None:
            worker.stop()

    # Multipart uploads spool to temporary files: keep them inside the protected data
    # directory, never in the shared system temp dir.
    spool = settings.data_dir / "tmp"
    spool.mkdir(parents=True, exist_ok=True, mode=0o700)
    tempfile.tempdir = str(spool)

    app = FastAPI(title="scribe", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.state.runtime = rt
    app.state.templates = make_templates(settings.web_dir / "templates")
    rules = rt.policies.security.sessions
    app.state.templates.env.globals.update(idle_seconds=rules.idle_minutes * 60, warn_seconds=rules.warn_seconds,
                                           part2_notice=PART2_NOTICE)
    app.mount("/static", StaticFiles(directory=settings.web_dir / "static"), name="static")
    errors.install(app)  # first: its error-containing middleware sits inside the security headers
    security.install(app, settings, max_body=rt.policies.pipeline.upload.max_bytes + (1 << 20))
    app.include_router(auth.router)
    app.include_router(sessions.router)
    app.include_router(supervision.router)
    app.include_router(consent.router)
    app.include_router(recording.router)
    app.include_router(oversight.router)
    return app
