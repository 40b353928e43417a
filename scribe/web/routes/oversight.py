"""Oversight: emergency (break-the-glass) access and its review, the audit report, legal holds."""

from __future__ import annotations

from datetime import datetime
from itertools import islice
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse

from scribe.domain.consent import ConsentState
from scribe.domain.errors import InvalidInput
from scribe.services import audit_report, breakglass, retention
from scribe.web.bodies import BoundedRoute
from scribe.web.deps import ActorDep, CsrfDep, FormInt, LoginDep, PathId, RuntimeDep, SessionDep, allow, render

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
    breakglass.review(
        session,
        runtime.audit_key,
        runtime.policies.security,
        actor=actor,
        grant_id=grant_id,
        note=note,
        now=runtime.clock(),
    )
    return RedirectResponse("/admin#break-glass", status_code=303)


SHOWN = 500  # rows the page shows; the CSV carries every row


def _range(day_from: str, day_to: str) -> tuple[datetime | None, datetime | None]:
    try:
        return audit_report.day_bound(day_from[:10]), audit_report.day_bound(day_to[:10], end=True)
    except ValueError:
        raise InvalidInput("dates are YYYY-MM-DD") from None


@router.get("/admin/audit", response_class=HTMLResponse, dependencies=[allow("report.read")])
def audit_page(request: Request, runtime: RuntimeDep, session: SessionDep, login: LoginDep, mrn: str = "",
               day_from: str = Query("", alias="from", max_length=10),
               day_to: str = Query("", alias="to", max_length=10)) -> Response:
    """A client's access report: everything anyone did with their information, by whom, when, why."""
    actor, row = login
    rows: list[audit_report.AccessRow] = []
    if mrn.strip():
        since, until = _range(day_from, day_to)
        query = audit_report.resolve_query(session, runtime.audit_key, actor=actor, mrn=mrn[:40], since=since,
                                           until=until, now=runtime.clock())
        session.commit()  # the report's own audit row first, then the report (read in its own session)
        rows = list(islice(audit_report.access_rows(runtime.engine, actor.clinic_id, query), SHOWN + 1))
    return render(request, "audit.html", {"actor": actor, "csrf": row.csrf_token, "rows": rows[:SHOWN],
                                          "more": len(rows) > SHOWN, "mrn": mrn[:40], "from": day_from[:10],
                                          "to": day_to[:10]})


@router.get("/admin/audit.csv", dependencies=[allow("report.read")])
def audit_csv(runtime: RuntimeDep, session: SessionDep, actor: ActorDep, mrn: str = "",
              day_from: str = Query("", alias="from", max_length=10),
              day_to: str = Query("", alias="to", max_length=10)) -> Response:
    """Every row, streamed (no cap): a breach investigation needs the whole record."""
    since, until = _range(day_from, day_to)
    query = audit_report.resolve_query(session, runtime.audit_key, actor=actor, mrn=mrn[:40], since=since, until=until,
                                       now=runtime.clock())
    session.commit()
    lines = audit_report.csv_lines(audit_report.access_rows(runtime.engine, actor.clinic_id, query))
    return StreamingResponse(lines, media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": 'attachment; filename="access-report.csv"'})


@router.get("/admin/compliance", response_class=HTMLResponse, dependencies=[allow("report.read")])
def compliance(request: Request, runtime: RuntimeDep, session: SessionDep, login: LoginDep) -> Response:
    actor, row = login
    view = audit_report.overview(session, runtime.audit_key, runtime.policies, actor=actor, now=runtime.clock())
    return render(request, "compliance.html", {"actor": actor, "csrf": row.csrf_token, "v": view,
                                               "functions": runtime.policies.consent.functions,
                                               "consent_states": list(ConsentState)})


@router.post("/admin/clients/{client_id}/hold", dependencies=[allow("legal_hold.manage"), CsrfDep])
def legal_hold(runtime: RuntimeDep, session: SessionDep, actor: ActorDep, client_id: PathId,
               hold: Annotated[str, Form(max_length=5)], reason: Annotated[str, Form(max_length=200)] = "") -> Response:
    retention.set_legal_hold(session, runtime.audit_key, actor=actor, client_id=client_id, hold=hold == "on",
                             reason=reason, now=runtime.clock())
    return RedirectResponse("/admin#consent-report", status_code=303)
