"""Request dependencies, declared once as Annotated aliases."""

from __future__ import annotations

import hmac
from collections.abc import Iterator
from datetime import timedelta
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import Depends, Form, Path, Request
from fastapi.responses import Response
from fastapi.templating import Jinja2Templates
from sqlmodel import Session

from scribe.db.engine import session_scope
from scribe.db.tables import LoginSession, User
from scribe.domain.errors import PermissionDenied
from scribe.domain.permissions import PERMISSIONS
from scribe.runtime import Runtime
from scribe.services import accounts

COOKIE = "scribe_session"
MAX_ID = 2**31 - 1  # the largest id PostgreSQL's integer holds; larger is "not found", never an overflow
# Ids in paths and integers in forms are bounded, so that no input reaches the database as
# a number it cannot hold (a 500 found by the API fuzzer).
PathId = Annotated[int, Path(ge=0, le=MAX_ID)]
FormInt = Annotated[int, Form(ge=-MAX_ID, le=MAX_ID)]
# People speaking in a session, the clinician included (speaker turns find that many voices).
FormVoices = Annotated[int, Form(ge=1, le=5)]
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def is_htmx(request: Request) -> bool:
    """A request htmx made (it sends HX-Request: true): answer with a fragment, not a page."""
    return request.headers.get("hx-request") == "true"


class LoginRequired(Exception):
    """No valid log-in session: the error handler redirects to /login."""


class MfaRequired(Exception):
    """Logged in with the password, second factor not yet set up: the handler redirects."""


class CsrfFailed(Exception):
    """Missing/invalid CSRF token or a cross-site Origin on a state-changing request."""


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def get_session(runtime: RuntimeDep) -> Iterator[Session]:
    with session_scope(runtime.engine) as session:
        yield session


# scope="function": the unit of work commits *before* the response is sent. With the
# default scope FastAPI would commit after sending, so a browser following the redirect
# could read the database before the write landed (a lost login, a stale draft version).
SessionDep = Annotated[Session, Depends(get_session, scope="function")]


# What a session that has not yet passed its second factor may reach: enrolment, log-out.
BEFORE_MFA = ("/account/mfa", "/account/mfa/start", "/logout")


def get_login(request: Request, runtime: RuntimeDep) -> tuple[User, LoginSession]:
    token = request.cookies.get(COOKIE)
    if not token:
        raise LoginRequired()
    rules = runtime.policies.security.sessions
    with Session(runtime.engine, expire_on_commit=False) as session:
        found = accounts.resolve(session, token, now=runtime.clock(), idle=timedelta(minutes=rules.idle_minutes),
                                 absolute=timedelta(hours=rules.absolute_hours))
        session.commit()
    if found is None:
        raise LoginRequired()
    if not found[1].mfa_passed and request.url.path not in BEFORE_MFA:
        raise MfaRequired()
    return found


LoginDep = Annotated[tuple[User, LoginSession], Depends(get_login)]


def get_actor(login: LoginDep) -> User:
    return login[0]


ActorDep = Annotated[User, Depends(get_actor)]


def same_origin(request: Request) -> bool:
    origin = request.headers.get("origin") or request.headers.get("referer")
    if not origin:
        return True  # non-browser clients; the CSRF token still applies
    return urlsplit(origin).netloc == request.headers.get("host", "")


async def check_csrf(request: Request, login: LoginDep) -> None:
    """Every state-changing request carries the session's CSRF token (form field or the
    X-CSRF-Token header that htmx sends) and comes from our own origin."""
    if not same_origin(request):
        raise CsrfFailed()
    token = request.headers.get("x-csrf-token")
    if token is None and request.headers.get("content-type", "").startswith(FORM_TYPES):
        form = await request.form()
        value = form.get("csrf_token")
        token = value if isinstance(value, str) else None
    if not token or not hmac.compare_digest(token.encode(), login[1].csrf_token.encode()):  # bytes: any text
        raise CsrfFailed()


CsrfDep = Depends(check_csrf)


def allow(permission: str) -> Any:
    """A route's permission, granted to roles by policies/roles.yaml. Object-level checks
    (whose client, whose supervisee) are the services' ``*_for_actor`` queries, on top."""
    if permission not in PERMISSIONS:
        raise ValueError(f"unknown permission {permission!r}")

    def check(login: LoginDep, runtime: RuntimeDep) -> None:
        role = runtime.policies.roles.roles.get(login[0].role)  # type: ignore[call-overload]
        if role is None or permission not in role.can:
            raise PermissionDenied(f"your role may not {PERMISSIONS[permission]}")

    check.permission = permission  # type: ignore[attr-defined]
    return Depends(check)


def render(request: Request, name: str, context: dict[str, object], status_code: int = 200) -> Response:
    """A page from the app's templates."""
    templates: Jinja2Templates = request.app.state.templates
    return templates.TemplateResponse(request, name, context, status_code=status_code)
