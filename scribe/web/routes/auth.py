"""Log in and out, the second factor, passwords, keep-alive, and account management."""

from __future__ import annotations

from typing import Annotated

import segno
from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from scribe.db.tables import LoginSession, User
from scribe.domain.errors import InvalidInput, PermissionDenied
from scribe.runtime import Runtime
from scribe.services import accounts
from scribe.web.bodies import BoundedRoute
from scribe.web.deps import (
    COOKIE,
    CsrfDep,
    LoginDep,
    PathId,
    RuntimeDep,
    SessionDep,
    allow,
    render,
    same_origin,
)

router = APIRouter(route_class=BoundedRoute)


@router.get("/login", response_class=HTMLResponse)

def login_page(request: Request) -> Response:
    return render(request, "login.html", {"error": None})


@router.post("/login")

def login(request: Request, runtime: RuntimeDep, session: SessionDep,
          username: Annotated[str, Form(max_length=100)], password: Annotated[str, Form(max_length=200)],
          code: Annotated[str, Form(max_length=12)] = "") -> Response:
    if not same_origin(request):
        raise PermissionDenied("log-in must come from this site")
    try:
        done = accounts.log_in(session, runtime.audit_key, runtime.policies.security, username=username,
                               password=password, code=code.strip(), now=runtime.clock(),
                               address=request.client.host if request.client else "")
    except PermissionDenied as exc:
        session.commit()  # keep the failed-attempt count and its audit row
        return render(request, "login.html", {"error": exc.public_message},
                                                            status_code=401)
    response = RedirectResponse("/" if done.mfa_passed else "/account/mfa", status_code=303)
    set_session_cookie(response, runtime, done.token)
    return response


def set_session_cookie(response: Response, runtime: Runtime, token: str) -> None:
    response.set_cookie(COOKIE, token, httponly=True, samesite="strict", secure=runtime.settings.secure_cookies,
                        max_age=runtime.policies.security.sessions.absolute_hours * 3600, path="/")


@router.post("/logout", dependencies=[CsrfDep])

def logout(runtime: RuntimeDep, session: SessionDep, login: LoginDep) -> Response:
    accounts.log_out(session, runtime.audit_key, session.merge(login[1]), now=runtime.clock())
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


@router.post("/session/keepalive", dependencies=[CsrfDep])

def keepalive(login: LoginDep) -> Response:
    """The idle-timeout warning's "stay signed in": resolving the session refreshed it."""
    return Response(status_code=204)


@router.get("/account/mfa", response_class=HTMLResponse)

def mfa_page(request: Request, runtime: RuntimeDep, session: SessionDep, login: LoginDep) -> Response:
    user = session.merge(login[0])
    if user.totp_enrolled_at is not None:
        return render(request, "mfa.html", {"enrolled": True, "csrf": login[1].csrf_token})
    uri = accounts.enrolment_uri(user, runtime.policies.security)
    qr = segno.make(uri, error="m").svg_data_uri(scale=5, encode_minimal=False, omit_charset=True) if uri else None
    return render(request, "mfa.html", {
        "enrolled": False, "qr": qr, "secret": user.totp_secret, "csrf": login[1].csrf_token, "error": None})


@router.post("/account/mfa/start", dependencies=[CsrfDep])

def mfa_start(runtime: RuntimeDep, session: SessionDep, login: LoginDep) -> Response:
    accounts.start_enrolment(session, session.merge(login[0]))
    return RedirectResponse("/account/mfa", status_code=303)


@router.post("/account/mfa", dependencies=[CsrfDep])

def mfa_confirm(request: Request, runtime: RuntimeDep, session: SessionDep, login: LoginDep,
                code: Annotated[str, Form(max_length=12)]) -> Response:
    done = accounts.confirm_enrolment(session, runtime.audit_key, session.merge(login[0]), session.merge(login[1]),
                                      code=code.strip(), now=runtime.clock())
    response = RedirectResponse("/", status_code=303)
    set_session_cookie(response, runtime, done.token)
    return response


@router.get("/account/password", response_class=HTMLResponse)

def password_page(request: Request, login: LoginDep) -> Response:
    return render(request, "password.html", {"csrf": login[1].csrf_token,
                                                                                   "done": False})


@router.post("/account/password", dependencies=[CsrfDep])

def password_change(request: Request, runtime: RuntimeDep, session: SessionDep, login: LoginDep,
                    current: Annotated[str, Form(max_length=200)], new: Annotated[str, Form(max_length=200)]) -> Response:
    accounts.change_password(session, runtime.audit_key, runtime.policies.security, user=session.merge(login[0]),
                             current=current, new=new, now=runtime.clock(), keep_login_id=login[1].id)
    return render(request, "password.html", {"csrf": login[1].csrf_token,
                                                                                   "done": True})


@router.post("/admin/users", dependencies=[allow("user.manage"), CsrfDep])
def create_user(request: Request, runtime: RuntimeDep, session: SessionDep, login: LoginDep,
                username: Annotated[str, Form(max_length=40)], full_name: Annotated[str, Form(max_length=100)],
                role: Annotated[str, Form(max_length=20)], credential: Annotated[str, Form(max_length=40)] = "",
                licence_number: Annotated[str, Form(max_length=40)] = "") -> Response:
    invited = accounts.create_user(session, runtime.audit_key, runtime.policies.security, actor=login[0],
                                   username=username, full_name=full_name, role=role, credential=credential,
                                   licence_number=licence_number, now=runtime.clock())
    return invitation_page(request, login, invited)


def invitation_page(request: Request, login: tuple[User, LoginSession], invited: accounts.Invited) -> Response:
    """The link, shown to the admin once, to hand to the person (never by the same channel
    as anything else that identifies them)."""
    link = str(request.url_for("invitation_form").include_query_params(token=invited.link_token))
    return render(request, "invitation.html", {
        "actor": login[0], "csrf": login[1].csrf_token, "invited": invited, "link": link})


@router.post("/admin/users/{user_id}", dependencies=[allow("user.manage"), CsrfDep])
def manage_user(request: Request, runtime: RuntimeDep, session: SessionDep, login: LoginDep, user_id: PathId,
                action: Annotated[str, Form(max_length=20)]) -> Response:
    if action not in ("disable", "enable", "unlock", "reset_mfa", "reset_password"):
        raise InvalidInput("unknown action")
    invited = accounts.manage_user(session, runtime.audit_key, runtime.policies.security, actor=login[0],
                                   user_id=user_id, action=action, now=runtime.clock())
    if invited is not None:
        return invitation_page(request, login, invited)
    return RedirectResponse("/admin#users", status_code=303)


@router.get("/invite", response_class=HTMLResponse, name="invitation_form")
def invitation_form(request: Request, runtime: RuntimeDep, session: SessionDep,
                    token: Annotated[str, Query(max_length=100)] = "") -> Response:
    valid = accounts.pending_invitation(session, token, runtime.clock()) is not None
    return render(request, "invite.html", {"token": token, "valid": valid,
                                                                                "error": None},
                                                        status_code=200 if valid else 404)


@router.post("/invite")
def accept_invitation(request: Request, runtime: RuntimeDep, session: SessionDep,
                      token: Annotated[str, Form(max_length=100)] = "", password: Annotated[str, Form(max_length=200)] = "",
                      confirm: Annotated[str, Form(max_length=200)] = "") -> Response:
    if not same_origin(request):
        raise PermissionDenied("the link must be opened on this site")
    if password != confirm:
        raise InvalidInput("the two passwords differ")
    accounts.accept_invitation(session, runtime.audit_key, runtime.policies.security, token=token, password=password,
                               now=runtime.clock())
    return RedirectResponse("/login", status_code=303)
