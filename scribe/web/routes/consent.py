"""The consent ledger per client, withdrawals with their receipts, and the admin screen."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import col, select

from scribe.db.tables import DeletionReceipt
from scribe.domain.consent import Part2Terms
from scribe.domain.errors import InvalidInput
from scribe.services import admin, breakglass, consent, egress, purge
from scribe.services.scrub import MediaTools
from scribe.web.bodies import Body, BoundedRoute, takes
from scribe.web.deps import MAX_ID, ActorDep, CsrfDep, LoginDep, PathId, RuntimeDep, SessionDep, allow, render

router = APIRouter(route_class=BoundedRoute)


def _day(value: str, *, end: bool = False) -> datetime | None:
    if not value:
        return None
    try:
        d = date.fromisoformat(value)
    except ValueError:
        raise InvalidInput("dates are YYYY-MM-DD") from None
    return datetime.combine(d, time.max if end else time.min, tzinfo=UTC)


@router.get("/clients/{client_id}/consents", response_class=HTMLResponse, dependencies=[allow("consent.manage")])
def ledger(request: Request, runtime: RuntimeDep, session: SessionDep, login: LoginDep, client_id: PathId) -> Response:
    actor, login_row = login
    view = consent.ledger_view(session, runtime.audit_key, runtime.policies, actor=actor, client_id=client_id,
                               now=runtime.clock())
    receipts = session.exec(select(DeletionReceipt).where(DeletionReceipt.client_id == client_id)
                            .order_by(col(DeletionReceipt.id).desc())).all()
    return render(request, "consents.html", {"actor": actor, "csrf": login_row.csrf_token, "v": view,
                                             "receipts": receipts, "policy": runtime.policies.consent,
                                             "today": runtime.clock().date().isoformat()})


@router.post("/clients/{client_id}/consents", dependencies=[allow("consent.manage"), CsrfDep])
@takes(Body.SCAN)
async def grant(request: Request, runtime: RuntimeDep, session: SessionDep, actor: ActorDep, client_id: PathId,
                functions: Annotated[list[str], Form(max_length=20)], effective_from: Annotated[str, Form(max_length=10)],
                expires_on: Annotated[str, Form(max_length=10)] = "", guardian: Annotated[str, Form(max_length=3)] = "",
                scan: Annotated[UploadFile | None, File()] = None) -> Response:
    data = await scan.read(consent.MAX_SCAN_BYTES + 1) if scan is not None and scan.filename else None
    form = await request.form()

    def field(name: str) -> str:
        value = form.get(f"p2_{name}", "")
        return value[:400] if isinstance(value, str) else ""

    terms = Part2Terms(field("recipient"), field("purpose"), field("information"), field("expiry"), field("signed_by"),
                       field("signed_on"), field("revocation") == "yes") if "part2_disclosure" in functions else None
    consent.record_consent(session, runtime.audit_key, runtime.policies, actor=actor, client_id=client_id,
                           functions=functions, effective_from=_day(effective_from) or runtime.clock(),
                           expires_at=_day(expires_on, end=True), guardian=int(guardian) if guardian.isdigit() else None,
                           part2=terms, forms_dir=runtime.settings.forms_dir, scan=data, now=runtime.clock())
    return RedirectResponse(f"/clients/{client_id}/consents", status_code=303)


@router.get("/clients/{client_id}/consents/{consent_id}/form", dependencies=[allow("consent.manage")])
def scanned_form(runtime: RuntimeDep, session: SessionDep, actor: ActorDep, client_id: PathId, consent_id: PathId) -> Response:
    data, media = consent.scanned_form(session, runtime.audit_key, actor=actor, client_id=client_id,
                                       consent_id=consent_id, forms_dir=runtime.settings.forms_dir, now=runtime.clock())
    return Response(data, media_type=media, headers={"Content-Disposition": f'inline; filename="consent-{consent_id}"'})


@router.post("/clients/{client_id}/consents/withdraw", dependencies=[allow("consent.manage"), CsrfDep])
def withdraw(runtime: RuntimeDep, session: SessionDep, actor: ActorDep, client_id: PathId, tasks: BackgroundTasks,
             function: Annotated[str, Form(max_length=40)]) -> Response:
    done = purge.withdraw(session, runtime.audit_key, runtime.policies, actor=actor, client_id=client_id,
                          function=function, tools=MediaTools(runtime.settings.recordings_dir, runtime.decoder),
                          now=runtime.clock())
    tasks.add_task(purge.sweep_files, runtime.engine, runtime.settings.recordings_dir)  # after the commit
    tasks.add_task(purge.remove_unreferenced, runtime.engine, runtime.settings.recordings_dir, done.stale_files)
    return RedirectResponse(f"/receipts/{done.receipt.id}", status_code=303)


@router.get("/receipts/{receipt_id}", response_class=HTMLResponse, dependencies=[allow("receipt.read")])
def receipt(request: Request, runtime: RuntimeDep, session: SessionDep, login: LoginDep, receipt_id: PathId) -> Response:
    actor, login_row = login
    row, client = admin.receipt_for(session, runtime.audit_key, actor=actor, receipt_id=receipt_id, now=runtime.clock())
    return render(request, "receipt.html", {"actor": actor, "csrf": login_row.csrf_token, "r": row, "client": client})


@router.get("/admin", response_class=HTMLResponse, dependencies=[allow("user.manage")])
def admin_page(request: Request, runtime: RuntimeDep, session: SessionDep, login: LoginDep) -> Response:
    actor, login_row = login
    view = admin.admin_view(session, runtime.audit_key, runtime.policies, actor=actor, now=runtime.clock())
    rows = breakglass.grants_for_review(session, actor, runtime.policies.security)
    grants = [(r, r.may_review(actor)) for r in rows]
    unreviewed = sum(1 for r in rows if r.grant.reviewed_at is None)
    return render(request, "admin.html", {"actor": actor, "csrf": login_row.csrf_token, "v": view, "grants": grants,
                                          "unreviewed": unreviewed,
                                          "functions": list(runtime.policies.consent.functions),
                                          "note_types": runtime.policies.progress_note_types})


@router.get("/admin/egress", response_class=HTMLResponse, dependencies=[allow("report.read")])
def egress_ledger(request: Request, runtime: RuntimeDep, session: SessionDep, login: LoginDep) -> Response:
    actor, login_row = login
    rows = egress.ledger(session, runtime.audit_key, actor=actor, now=runtime.clock())
    return render(request, "egress.html", {"actor": actor, "csrf": login_row.csrf_token, "rows": rows,
                                           "destinations": runtime.policies.egress.destinations,
                                           "policy_version": runtime.policies.egress.version})


@router.get("/admin/egress.csv", dependencies=[allow("report.read")])
def egress_csv(runtime: RuntimeDep, session: SessionDep, actor: ActorDep) -> Response:
    rows = egress.ledger(session, runtime.audit_key, actor=actor, now=runtime.clock(), limit=1_000_000)
    return Response(egress.ledger_csv(rows), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": 'attachment; filename="egress-ledger.csv"'})


@router.post("/admin/switches", dependencies=[allow("user.manage"), CsrfDep])
def set_switch(runtime: RuntimeDep, session: SessionDep, actor: ActorDep, scope: Annotated[str, Form(max_length=20)],
               enabled: Annotated[str, Form(max_length=5)], target_id: Annotated[int | None, Form(ge=0, le=MAX_ID)] = None,
               note_types: Annotated[list[str] | None, Form(max_length=20)] = None) -> Response:
    admin.set_switch(session, runtime.audit_key, runtime.policies, actor=actor, scope=scope, target_id=target_id,
                     enabled=enabled == "on", note_types=note_types or [], now=runtime.clock())
    return RedirectResponse("/admin#switches", status_code=303)
