"""Oversight: emergency (break-the-glass) access and its review, the audit report, legal holds."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from scribe.services import audit_report, breakglass, retention
from scribe.web.bodies import BoundedRoute
from scribe.web.deps import ActorDep, allow, CsrfDep, FormInt, LoginDep, PathId, RuntimeDep, SessionDep
from scribe.web.routes.sessions import render

router = APIRouter(route_class=BoundedRoute)


@router.get("/break-glass", response_class=HTMLResponse, dependencies=[allow("breakglass.request")])
def page(request: Request, runtime: RuntimeDep, session: SessionDep, login: LoginDep) -> Response:
    actor, row = login
    return render(request, "breakglass.html", {"actor": actor, "csrf": row.csrf_token, "view": None,
                                               "grants": breakglass.grants_for(session, actor),
                                               "max_minutes": runtime.policies.security.break_glass.max_minutes,
                                               "now": runtime.clock()})


@router.post("/break-glass", dependencies=[allow("breakglass.request"), CsrfDep])
def request_grant(runtime: RuntimeDep, session: SessionDep, actor: ActorDep, mrn: Annotated[str, Form(max_length=40)],
                  reason: Annotated[str, Form(max_length=500)], minutes: FormInt) -> Response:
    grant = breakglass.request_grant(session, runtime.audit_key, runtime.policies.security, actor=actor, mrn=mrn,
                                     reason=reason, minutes=minutes, now=runtime.clock())
    return RedirectResponse(f"/break-glass/{grant.id}", status_code=303)


@router.get("/break-glass/{grant_id}", response_class=HTMLResponse, dependencies=[allow("breakglass.request")])
def grant_page(request: Request, runtime: RuntimeDep, session: SessionDep, login: LoginDep, grant_id: PathId) -> Response:
    actor, row = login
    view = breakglass.grant_view(session, runtime.audit_key, actor=actor, grant_id=grant_id, now=runtime.clock())
    return render(request, "breakglass.html", {"actor": actor, "csrf": row.csrf_token, "view": view, "grants": [],
                                               "max_minutes": runtime.policies.security.break_glass.max_minutes,
                                               "now": runtime.clock()})


@router.post("/admin/break-glass/{grant_id}/review", dependencies=[allow("breakglass.review"), CsrfDep])
def review(runtime: RuntimeDep, session: SessionDep, actor: ActorDep, grant_id: PathId,
           note: Annotated[str, Form(max_length=500)] = "") -> Response:
    breakglass.review(session, runtime.audit_key, runtime.policies.security, actor=actor, grant_id=grant_id, note=note, now=runtime.clock())
    return RedirectResponse("/admin#break-glass", status_code=303)


@router.get("/admin/audit", response_class=HTMLResponse, dependencies=[allow("report.read")])
def audit_page(request: Request, runtime: RuntimeDep, session: SessionDep, login: LoginDep, mrn: str = "") -> Response:
    actor, row = login
    rows = audit_report.access_report(session, runtime.audit_key, actor=actor, now=runtime.clock(), mrn=mrn[:40])
    return render(request, "audit.html", {"actor": actor, "csrf": row.csrf_token, "rows": rows, "mrn": mrn[:40]})


@router.get("/admin/audit.csv", dependencies=[allow("report.read")])
def audit_csv(runtime: RuntimeDep, session: SessionDep, actor: ActorDep, mrn: str = "") -> Response:
    rows = audit_report.access_report(session, runtime.audit_key, actor=actor, now=runtime.clock(), mrn=mrn[:40],
                                      limit=1_000_000)
    return Response(audit_report.report_csv(rows), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": 'attachment; filename="audit-report.csv"'})


@router.post("/admin/clients/{client_id}/hold", dependencies=[allow("legal_hold.manage"), CsrfDep])
def legal_hold(runtime: RuntimeDep, session: SessionDep, actor: ActorDep, client_id: PathId,
               hold: Annotated[str, Form(max_length=5)], reason: Annotated[str, Form(max_length=200)] = "") -> Response:
    retention.set_legal_hold(session, runtime.audit_key, actor=actor, client_id=client_id, hold=hold == "on",
                             reason=reason, now=runtime.clock())
    return RedirectResponse("/admin#consent-report", status_code=303)
