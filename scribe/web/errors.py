"""Map errors to HTTP in exactly one place, with template fallbacks.

Error pages say what went wrong in plain words; they never echo the request (FastAPI's
default 422 handler does) and never carry clinical text."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.exc import IntegrityError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from scribe.domain.errors import (
    Conflict,
    ConsentMissing,
    EngineError,
    InvalidInput,
    NotFound,
    PermissionDenied,
    PolicyError,
    ReauthFailed,
    ScribeError,
)
from scribe.web.deps import CsrfFailed, LoginRequired, MfaRequired, is_htmx

log = logging.getLogger("scribe.web")

STATUS: list[tuple[type[ScribeError], int, str]] = [
    (NotFound, 404, "Not found"),
    (PermissionDenied, 403, "Not allowed"),
    (ConsentMissing, 403, "Consent not in force"),
    (InvalidInput, 400, "Cannot accept this"),
    (Conflict, 409, "Changed in the meantime"),
    (PolicyError, 500, "Configuration error"),
    (EngineError, 502, "Not sent"),  # the egress gateway refused, or a destination did not answer
]


# Words in the drivers' messages for lock contention (SQLite, PostgreSQL): answered 503.
CONTENTION = ("database is locked", "deadlock detected", "could not serialize", "lock timeout",
              "canceling statement due to lock timeout")


def render_error(request: Request, status: int, title: str, message: str) -> Response:
    templates = request.app.state.templates
    fragment = is_htmx(request)
    names = ["errors/_error.html"] if fragment else [f"errors/{status}.html", "errors/error.html"]
    template = templates.env.select_template(names)
    html = template.render(request=request, status=status, title=title, message=message)
    headers = {"HX-Retarget": "#messages", "HX-Reswap": "innerHTML"} if fragment else {}
    return HTMLResponse(html, status_code=status, headers=headers)


def install(app: FastAPI) -> None:
    @app.exception_handler(ScribeError)
    async def scribe_error(request: Request, exc: ScribeError) -> Response:
        for cls, status, title in STATUS:
            if isinstance(exc, cls):
                return render_error(request, status, title, exc.public_message)
        return render_error(request, 500, "Something went wrong", exc.public_message)

    @app.exception_handler(ReauthFailed)
    async def reauth_failed(request: Request, exc: ReauthFailed) -> Response:
        # The action rolled back; count and audit the wrong password in a transaction of its own.
        from scribe.services.accounts import count_reauth_failure

        rt = request.app.state.runtime
        count_reauth_failure(rt.engine, rt.audit_key, rt.policies.security, user_id=exc.user_id, purpose=exc.purpose,
                             now=rt.clock())
        return render_error(request, 403, "Not allowed", exc.public_message)

    @app.exception_handler(LoginRequired)
    async def login_required(request: Request, exc: LoginRequired) -> Response:
        if is_htmx(request):
            return Response(status_code=401, headers={"HX-Redirect": "/login"})
        return RedirectResponse("/login", status_code=303)

    @app.exception_handler(MfaRequired)
    async def mfa_required(request: Request, exc: MfaRequired) -> Response:
        if is_htmx(request):
            return Response(status_code=401, headers={"HX-Redirect": "/account/mfa"})
        return RedirectResponse("/account/mfa", status_code=303)

    @app.exception_handler(CsrfFailed)
    async def csrf_failed(request: Request, exc: CsrfFailed) -> Response:
        return render_error(
            request,
            403,
            "Request refused",
            "The form expired or came from another site. Reload the page and try again.",
        )

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        fields = sorted({".".join(str(p) for p in e["loc"][1:]) or "request" for e in exc.errors()})
        return render_error(request, 422, "Incomplete form", "Missing or invalid field(s): " + ", ".join(fields))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        titles = {404: "Not found", 405: "Not allowed", 413: "Too large"}
        return render_error(
            request,
            exc.status_code,
            titles.get(exc.status_code, "Error"),
            titles.get(exc.status_code, "The request could not be served."),
        )

    @app.exception_handler(IntegrityError)
    async def integrity(request: Request, exc: IntegrityError) -> Response:
        # Two requests raced on one record and the database kept the first: a conflict, not a crash.
        log.warning("integrity conflict on %s %s", request.method, request.url.path)
        return render_error(request, 409, "Changed in the meantime",
                            "Someone else changed this at the same moment. Nothing you sent was saved; reload.")

    @app.exception_handler(OperationalError)
    async def contended(request: Request, exc: OperationalError) -> Response:
        # Lock timeouts, deadlocks and serialization failures are contention: try again shortly.
        kind = exc.orig.__class__.__name__
        if not any(word in str(exc.orig).lower() for word in CONTENTION):
            log.error("database error %s on %s %s", kind, request.method, request.url.path)
            return render_error(request, 500, "Something went wrong",
                                "The server hit an error. Nothing you saved was lost; try again.")
        log.warning("database contention %s on %s %s", kind, request.method, request.url.path)
        response = render_error(request, 503, "Busy", "The server is busy with other work. Nothing was saved; "
                                "try again in a moment.")
        response.headers["Retry-After"] = "2"
        return response

    app.add_middleware(ContainErrors)


class ContainErrors:
    """The last line: an unexpected exception becomes the plain 500 page and a log line with
    its class only. It does not travel on to the server, whose traceback would print the
    exception's message, and a message can hold clinical text (Starlette re-raises after
    its own 500 handler precisely so that the server logs it)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            log.error("unhandled %s on %s %s", exc.__class__.__name__, scope.get("method"), scope.get("path"))
            if not started:
                response = render_error(Request(scope), 500, "Something went wrong",
                                        "The server hit an error. Nothing you saved was lost; try again.")
                await response(scope, receive, send)
