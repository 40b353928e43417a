"""Client charts: the list (search, status, pages), a new client, a client's page (a timeline
in date order), editing, transfer to another clinician, discharge and reactivation."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import FormData

from scribe.domain.clients import (
    ChartInput,
    ClientStatus,
    Diagnosis,
    GuardianAuthority,
    Person,
    TransferReason,
)
from scribe.domain.errors import InvalidInput
from scribe.domain.notes import CLINICAL_ROLES
from scribe.services import clients
from scribe.web.bodies import BoundedRoute
from scribe.web.deps import MAX_ID, ActorDep, CsrfDep, FormInt, LoginDep, PathId, RuntimeDep, SessionDep, allow, render

router = APIRouter(route_class=BoundedRoute)
PEOPLE_ROWS = 3  # empty rows the form offers for contacts, guardians and diagnoses


def _text(form: FormData, name: str, limit: int = 200) -> str:
    value = form.get(name, "")
    if not isinstance(value, str) or len(value) > limit:
        raise InvalidInput(f"{name.replace('_', ' ')} is too long")
    return value


def _texts(form: FormData, name: str) -> list[str]:
    values = form.getlist(name)
    if len(values) > 20 or any(not isinstance(v, str) or len(v) > 200 for v in values):
        raise InvalidInput(f"too many or too long {name.replace('_', ' ')} entries")
    return [str(v) for v in values]


def chart_from_form(form: FormData) -> ChartInput:
    """The client form, parsed (checking is the domain's, in check_chart)."""
    dob = _text(form, "date_of_birth", 10)
    try:
        born = date.fromisoformat(dob) if dob else None
    except ValueError:
        raise InvalidInput("the date of birth is YYYY-MM-DD") from None

    def people(prefix: str, fields: tuple[str, ...]) -> tuple[Person, ...]:
        columns = [_texts(form, f"{prefix}_{f}") for f in fields]
        return tuple(Person(**dict(zip(fields, row, strict=False))) for row in zip(*columns, strict=False))

    codes, descriptions = _texts(form, "dx_code"), _texts(form, "dx_description")
    return ChartInput(
        given_name=_text(form, "given_name"), family_name=_text(form, "family_name"),
        preferred_name=_text(form, "preferred_name"), date_of_birth=born, mrn=_text(form, "mrn"),
        address=_text(form, "address"), city=_text(form, "city"), phone=_text(form, "phone"),
        email=_text(form, "email"), employer=_text(form, "employer"), school=_text(form, "school"),
        contacts=people("contact", ("name", "relation", "phone")),
        guardians=people("guardian", ("name", "relation", "phone", "authority", "documents")),
        diagnoses=tuple(Diagnosis(c, d) for c, d in zip(codes, descriptions, strict=False)),
        part2_program=form.get("part2_program") == "yes")


def _form_context(request: Request, login: tuple[Any, Any], session: SessionDep, client: object | None) -> dict[str, object]:
    actor, row = login
    return {"actor": actor, "csrf": row.csrf_token, "client": client, "rows": PEOPLE_ROWS,
            "authorities": [a.value for a in GuardianAuthority], "clinical": actor.role in CLINICAL_ROLES,
            "clinicians": clients.clinicians_of(session, actor) if actor.role not in CLINICAL_ROLES else []}


@router.get("/clients", response_class=HTMLResponse, dependencies=[allow("client.read")])
def client_list(request: Request, runtime: RuntimeDep, session: SessionDep, login: LoginDep, q: str = "",
                status: str = "", page: int = 1) -> Response:
    actor, row = login
    if status and status not in {s.value for s in ClientStatus}:
        status = ""
    found = clients.list_clients(session, runtime.audit_key, actor=actor, query=q[:100], status=status,
                                 page=max(1, min(page, 10_000)), now=runtime.clock())
    return render(request, "clients.html", {"actor": actor, "csrf": row.csrf_token, "v": found, "q": q[:100],
                                            "status": status, "statuses": list(ClientStatus)})


@router.get("/clients/new", response_class=HTMLResponse, dependencies=[allow("client.manage")])
def new_client(request: Request, session: SessionDep, login: LoginDep) -> Response:
    return render(request, "client_form.html", _form_context(request, login, session, None))


@router.post("/clients", dependencies=[allow("client.manage"), CsrfDep])
async def create(request: Request, runtime: RuntimeDep, session: SessionDep, actor: ActorDep) -> Response:
    form = await request.form()
    raw_id = _text(form, "clinician_id", 12)
    clinician_id = int(raw_id) if raw_id.isdigit() and int(raw_id) <= MAX_ID else None
    client = clients.create_client(session, runtime.audit_key, actor=actor, chart=chart_from_form(form),
                                   clinician_id=clinician_id, now=runtime.clock())
    return RedirectResponse(f"/clients/{client.id}", status_code=303)


@router.get("/clients/{client_id}", response_class=HTMLResponse, dependencies=[allow("client.read")])
def client_page(request: Request, runtime: RuntimeDep, session: SessionDep, login: LoginDep,
                client_id: PathId) -> Response:
    actor, row = login
    view = clients.client_page(session, runtime.audit_key, actor=actor, client_id=client_id, now=runtime.clock())
    return render(request, "client.html", {"actor": actor, "csrf": row.csrf_token, "v": view,
                                           "reasons": [r.value for r in TransferReason],
                                           "clinicians": clients.clinicians_of(session, actor)})


@router.get("/clients/{client_id}/edit", response_class=HTMLResponse, dependencies=[allow("client.manage")])
def edit_client(request: Request, runtime: RuntimeDep, session: SessionDep, login: LoginDep,
                client_id: PathId) -> Response:
    view = clients.client_page(session, runtime.audit_key, actor=login[0], client_id=client_id, now=runtime.clock())
    return render(request, "client_form.html", _form_context(request, login, session, view.client))


@router.post("/clients/{client_id}", dependencies=[allow("client.manage"), CsrfDep])
async def update(request: Request, runtime: RuntimeDep, session: SessionDep, actor: ActorDep,
                 client_id: PathId) -> Response:
    form = await request.form()
    clients.update_client(session, runtime.audit_key, actor=actor, client_id=client_id, chart=chart_from_form(form),
                          now=runtime.clock())
    return RedirectResponse(f"/clients/{client_id}", status_code=303)


@router.post("/clients/{client_id}/transfer", dependencies=[allow("client.manage"), CsrfDep])
def transfer(runtime: RuntimeDep, session: SessionDep, actor: ActorDep, client_id: PathId, clinician_id: FormInt,
             reason: Annotated[str, Form(max_length=80)]) -> Response:
    clients.transfer_client(session, runtime.audit_key, actor=actor, client_id=client_id, to_clinician_id=clinician_id,
                            reason=reason, now=runtime.clock())
    # A clinician who hands a client on no longer sees the chart: back to their list.
    still = actor.role not in CLINICAL_ROLES
    return RedirectResponse(f"/clients/{client_id}" if still else "/clients", status_code=303)


@router.post("/clients/{client_id}/status", dependencies=[allow("client.manage"), CsrfDep])
def set_status(runtime: RuntimeDep, session: SessionDep, actor: ActorDep, client_id: PathId,
               status: Annotated[str, Form(max_length=20)]) -> Response:
    clients.set_status(session, runtime.audit_key, actor=actor, client_id=client_id, status=status,
                       now=runtime.clock())
    return RedirectResponse(f"/clients/{client_id}", status_code=303)
