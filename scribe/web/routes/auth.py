"""Log in and out."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from scribe.domain.errors import PermissionDenied
from scribe.services import accounts
from scribe.web.deps import COOKIE, CsrfDep, LoginDep, RuntimeDep, SessionDep, same_origin

router = APIRouter()


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request) -> Response:
    return request.app.state.templates.TemplateResponse(request, "login.html", {"error": None})


@router.post("/login")
def login(request: Request, runtime: RuntimeDep, session: SessionDep,
          username: Annotated[str, Form(max_length=100)], password: Annotated[str, Form(max_length=200)]) -> Response:
    if not same_origin(request):
        raise PermissionDenied("log-in must come from this site")
    try:
        done = accounts.log_in(session, runtime.audit_key, username=username, password=password, now=runtime.clock())
    except PermissionDenied as exc:
        session.commit()  # keep the failed-attempt count and its audit row
        return request.app.state.templates.TemplateResponse(request, "login.html", {"error": exc.public_message}, status_code=401)
    response = RedirectResponse("/", status_code=303)
    response.set_cookie(COOKIE, done.token, httponly=True, samesite="strict", secure=runtime.settings.secure_cookies,
                        max_age=runtime.settings.session_absolute_hours * 3600, path="/")
    return response


@router.post("/logout", dependencies=[CsrfDep])
def logout(runtime: RuntimeDep, session: SessionDep, login: LoginDep) -> Response:
    accounts.log_out(session, runtime.audit_key, session.merge(login[1]), now=runtime.clock())
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response
