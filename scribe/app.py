"""The web app, built on the one runtime (scribe/runtime.py)."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from scribe.config import Settings
from scribe.db.engine import session_scope
from scribe.db.tables import User
from scribe.domain.egress import PART2_NOTICE
from scribe.engines.protocols import Engines
from scribe.policies import Policies
from scribe.queues import ALL_QUEUES, TableQueue
from scribe.runtime import Runtime, build_runtime, utc_now
from scribe.services import breakglass
from scribe.web import errors, security
from scribe.web.routes import auth, clients, consent, oversight, recording, sessions, supervision, voices
from scribe.web.templating import make_templates

log = logging.getLogger("scribe.app")


def _review_notices(rt: Runtime) -> Callable[[User], int]:
    """The break-glass reviewer's notice, on whatever page they open (not only the admin
    screen): counted from the grants themselves, so it cannot be lost or go stale."""
    def count(actor: User) -> int:
        with session_scope(rt.engine) as s:  # awaiting_review answers 0 for a non-reviewer before any query
            return breakglass.awaiting_review(s, actor, rt.policies.security)

    return count


def _menu(rt: Runtime) -> Callable[[User], list[tuple[str, str]]]:
    """The menu each role sees, from the permissions policies/roles.yaml gives it (no role
    names in templates)."""
    items = (("/", "Review queue", "session.read"), ("/sessions/new", "New session", "session.upload"),
             ("/clients", "Clients", "client.read"), ("/supervision", "Supervision", "note.cosign"),
             ("/break-glass", "Emergency access", "breakglass.request"), ("/admin", "Administration", "user.manage"))

    def menu(actor: User) -> list[tuple[str, str]]:
        role = rt.policies.roles.roles.get(actor.role)  # type: ignore[call-overload]
        can = set(role.can) if role else set()
        out = [(href, label) for href, label, permission in items if permission in can]
        if actor.supervisor_id and "hours.read" in can:
            out.append((f"/hours/{actor.id}", "My licensure hours"))
        return out

    return menu


def create_app(settings: Settings, *, runtime: Runtime | None = None, engines: Engines | None = None,
               policies: Policies | None = None, clock: Callable[[], datetime] = utc_now,
               start_worker: bool | None = None) -> FastAPI:
    """Build the web app. Engines are only needed when this process runs the worker."""
    rt = runtime or build_runtime(settings, policies=policies, engines=engines, clock=clock)
    run_worker = settings.worker_in_process if start_worker is None else start_worker

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        stop = threading.Event()
        if run_worker:  # the stages run in this process, fed by whichever queue is configured
            if rt.engines is None:
                rt.load_engines()
            rt.require_engines()
            queue = rt.queue or TableQueue()
            threading.Thread(target=queue.run_worker, kwargs={"rt": rt, "queues": ALL_QUEUES, "stop": stop},
                             name="scribe-worker", daemon=True).start()
        yield
        stop.set()

    app = FastAPI(title="scribe", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.state.runtime = rt
    app.state.templates = make_templates(settings.web_dir / "templates")
    rules = rt.policies.security.sessions
    app.state.templates.env.globals.update(idle_seconds=rules.idle_minutes * 60, warn_seconds=rules.warn_seconds,
                                           part2_notice=PART2_NOTICE, review_notices=_review_notices(rt),
                                           menu=_menu(rt))
    app.mount("/static", StaticFiles(directory=settings.web_dir / "static"), name="static")
    errors.install(app)  # first: its error-containing middleware sits inside the security headers
    security.install(app, settings, max_body=rt.policies.pipeline.upload.max_bytes + (1 << 20))
    app.include_router(auth.router)
    app.include_router(sessions.router)
    app.include_router(supervision.router)
    app.include_router(consent.router)
    app.include_router(recording.router)
    app.include_router(oversight.router)
    app.include_router(clients.router)
    app.include_router(voices.router)
    return app
