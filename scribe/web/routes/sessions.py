"""The review queue, uploads, the review screen, signing and the signed note."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, File, Form, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from scribe.db.queries import clients_for_actor, get_encounter_for_actor, supervisees_for_actor, transcription_progress
from scribe.domain.clients import ClientStatus
from scribe.domain.consent import allowed_note_types, transcription_decision
from scribe.domain.errors import InvalidInput
from scribe.domain.notes import CLINICAL_ROLES, PROCESSING, EncounterStatus, Role, VersionKind, VoidReason
from scribe.services import consent, encounters, exports, fhir, purge, records, review, uploads
from scribe.web.bodies import Body, BoundedRoute, takes
from scribe.web.deps import (
    ActorDep,
    CsrfDep,
    FormInt,
    FormVoices,
    LoginDep,
    PathId,
    RuntimeDep,
    SessionDep,
    allow,
    is_htmx,
    render,
)
from scribe.web.pdf import render_pdf

router = APIRouter(route_class=BoundedRoute)


@router.get("/", response_class=HTMLResponse)
def queue(request: Request, runtime: RuntimeDep, session: SessionDep, login: LoginDep, q: str = "", status: str = "",
          day_from: str = Query("", alias="from", max_length=10), day_to: str = Query("", alias="to", max_length=10),
          page: int = Query(1, ge=1, le=100_000)) -> Response:
    """The review queue: the actor's sessions, newest first, searched and a page at a time."""
    actor, login_row = login
    if actor.role == Role.INTAKE:
        return RedirectResponse("/clients", status_code=303)
    filters = {"q": q[:100], "status": status if status in QUEUE_STATUSES else "", "from": _day(day_from),
               "to": _day(day_to)}
    found = encounters.queue(session, actor, query=filters["q"], status=filters["status"],
                             day_from=date.fromisoformat(filters["from"]) if filters["from"] else None,
                             day_to=date.fromisoformat(filters["to"]) if filters["to"] else None,
                             page=page, key=runtime.audit_key, now=runtime.clock()) if actor.role in CLINICAL_ROLES else None
    return render(request, "queue.html", {"actor": actor, "csrf": login_row.csrf_token, "v": found,
                                          "filters": filters, "statuses": QUEUE_STATUSES,
                                          "is_admin": actor.role == Role.ADMIN})


QUEUE_STATUSES = ("processing", "in_review", "pending_cosign", "returned", "signed", "failed", "stopped", "recording",
                  "voided")


def _day(value: str) -> str:
    """A YYYY-MM-DD filter, or "" for anything else (a filter is never an error)."""
    try:
        return date.fromisoformat(value).isoformat() if value else ""
    except ValueError:
        return ""


@router.get("/sessions/new", response_class=HTMLResponse, dependencies=[allow("session.upload")])
def new_session(request: Request, runtime: RuntimeDep, session: SessionDep, login: LoginDep) -> Response:
    """Upload and record controls appear only where transcription is on, and only for clients
    whose consents are in force; everywhere else the reason is shown instead."""
    actor, login_row = login
    now, policies = runtime.clock(), runtime.policies
    switches = consent.switches_for(session, actor)
    switched = transcription_decision(switches)
    clients = [(c, consent.capture_decision(session, policies, actor=actor, client_id=c.id, note_type=None,
                                            step="record", now=now)) for c in clients_for_actor(session, actor)]
    allowed = allowed_note_types(switches, policies.progress_note_types)
    return render(request, "new_session.html", {
        "actor": actor, "csrf": login_row.csrf_token, "clients": clients, "switched": switched,
        "eligible": [c for c, d in clients if d.allowed],
        "supervisees": supervisees_for_actor(session, actor),
        "note_types": [(k, policies.templates[k].name) for k in allowed],
        "formats": policies.pipeline.upload.formats})


@router.post("/sessions", dependencies=[allow("session.upload"), CsrfDep])
@takes(Body.UPLOAD)
def upload(runtime: RuntimeDep, session: SessionDep, actor: ActorDep, client_id: FormInt,
           note_type: Annotated[str, Form(max_length=40)], audio: Annotated[UploadFile, File()],
           part2: Annotated[bool, Form()] = False, voices: FormVoices = 2) -> Response:
    encounter = uploads.accept_upload(session, runtime.audit_key, runtime.policies,
                                      recordings_dir=runtime.settings.recordings_dir, decoder=runtime.decoder,
                                      actor=actor, client_id=client_id,
                                      note_type=note_type, filename=audio.filename or "", stream=audio.file,
                                      now=runtime.clock(), part2=part2, voices=voices)
    return RedirectResponse(f"/sessions/{encounter.id}", status_code=303)


@router.get("/sessions/{encounter_id}", response_class=HTMLResponse, dependencies=[allow("session.read")])
def review_page(request: Request, runtime: RuntimeDep, session: SessionDep, login: LoginDep, encounter_id: PathId) -> Response:
    actor, login_row = login
    if is_htmx(request) and request.query_params.get("poll"):
        # The status fragment, polled every 2 s while the pipeline runs: status only, no
        # clinical content loaded; once processing ends the whole page reloads.
        encounter, _ = get_encounter_for_actor(session, actor, encounter_id)
        if encounter.status not in PROCESSING:
            return Response(status_code=200, headers={"HX-Refresh": "true"})
        return render(request, "_status.html", {"encounter": encounter, "polling": True,
                                                "progress": transcription_progress(session, encounter)})
    view = review.review_view(session, runtime.audit_key, runtime.policies, actor=actor, encounter_id=encounter_id,
                              now=runtime.clock())
    e = view.encounter
    own_open = e.clinician_id == actor.id and not view.versions and e.status != EncounterStatus.VOIDED
    return render(request, "session.html", {
        "actor": actor, "csrf": login_row.csrf_token, "v": view, "encounter": e, "polling": e.status in PROCESSING,
        "progress": transcription_progress(session, e),
        "attestation": review.attestation(runtime.policies, view.sections),
        "correction_attestation": runtime.policies.signing.attestation, "sign_reason": view.can_sign.reason,
        "typed_confirmation": review.typed_confirmation(runtime.policies),
        "pending": review.pending_here(session, actor, view),
        "can_void": own_open, "void_reasons": [r.value for r in VoidReason],
        "can_retry": own_open and e.status in (EncounterStatus.FAILED, EncounterStatus.STOPPED),
        "move_to": [c for c in clients_for_actor(session, actor) if c.id != e.client_id and c.status == ClientStatus.ACTIVE]
        if own_open and e.client_id and e.status != EncounterStatus.RECORDING else [],
        "ehr": [d.name for d in runtime.policies.egress.destinations if "identified_record" in d.receives],
        "sent": request.query_params.get("sent", "")[:80]})


@router.post("/sessions/{encounter_id}/sections/{section_key}", dependencies=[allow("draft.edit"), CsrfDep])
def save_section(request: Request, runtime: RuntimeDep, session: SessionDep, actor: ActorDep, encounter_id: PathId,
                 section_key: str, text: Annotated[str, Form(max_length=20_000)],
                 lock_version: FormInt, confirmation: Annotated[str, Form(max_length=40)] = "") -> Response:
    review.save_section(session, runtime.audit_key, actor=actor, encounter_id=encounter_id, section_key=section_key,
                        text=text, lock_version=lock_version, now=runtime.clock(),
                        medicines=runtime.policies.pipeline.medicines,
                        typed_required=review.typed_confirmation(runtime.policies), confirmation=confirmation)
    return RedirectResponse(f"/sessions/{encounter_id}#section-{section_key}", status_code=303)


@router.post("/sessions/{encounter_id}/flags", dependencies=[allow("draft.edit"), CsrfDep])
def resolve_flag(runtime: RuntimeDep, session: SessionDep, actor: ActorDep, encounter_id: PathId,
                 target: Annotated[str, Form(max_length=40)], reason: Annotated[str, Form(max_length=500)],
                 lock_version: FormInt) -> Response:
    review.resolve_flag(session, runtime.audit_key, actor=actor, encounter_id=encounter_id, target=target,
                        reason=reason, lock_version=lock_version, now=runtime.clock())
    return RedirectResponse(f"/sessions/{encounter_id}#flags", status_code=303)


@router.post("/sessions/{encounter_id}/sign", dependencies=[allow("note.sign"), CsrfDep])
def sign(runtime: RuntimeDep, session: SessionDep, actor: ActorDep, encounter_id: PathId, tasks: BackgroundTasks,
         password: Annotated[str, Form(max_length=200)], lock_version: FormInt,
         attest: Annotated[str, Form(max_length=10)] = "") -> Response:
    review.sign(session, runtime.audit_key, runtime.policies, actor=actor, encounter_id=encounter_id,
                password=password, attested=attest == "yes", lock_version=lock_version, now=runtime.clock())
    tasks.add_task(purge.sweep_files, runtime.engine, runtime.settings.recordings_dir)  # audio not to be kept
    return RedirectResponse(f"/sessions/{encounter_id}#note", status_code=303)


@router.post("/sessions/{encounter_id}/addendum", dependencies=[allow("note.sign"), CsrfDep])
def addendum(runtime: RuntimeDep, session: SessionDep, actor: ActorDep, encounter_id: PathId,
             text: Annotated[str, Form(max_length=records.MAX_CORRECTION_CHARS)],
             password: Annotated[str, Form(max_length=200)], attest: Annotated[str, Form(max_length=10)] = "") -> Response:
    return _correct(runtime, session, actor, encounter_id, VersionKind.ADDENDUM, password, attest, addendum=text)


@router.post("/sessions/{encounter_id}/amendment", dependencies=[allow("note.sign"), CsrfDep])
async def amendment(request: Request, runtime: RuntimeDep, session: SessionDep, actor: ActorDep,
                    encounter_id: PathId, password: Annotated[str, Form(max_length=200)],
                    attest: Annotated[str, Form(max_length=10)] = "") -> Response:
    form = await request.form()
    texts = {k[len("section_"):]: str(v) for k, v in form.items() if k.startswith("section_") and len(k) < 60}
    return _correct(runtime, session, actor, encounter_id, VersionKind.AMENDMENT, password, attest, texts=texts)


def _correct(runtime: RuntimeDep, session: SessionDep, actor: ActorDep, encounter_id: int, kind: VersionKind,
             password: str, attest: str, **change: Any) -> Response:
    """An addendum or an amendment, signed with the password and the attestation; back to the note."""
    records.correct(session, runtime.audit_key, runtime.policies, actor=actor, encounter_id=encounter_id, kind=kind,
                    password=password, attested=attest == "yes", now=runtime.clock(), **change)
    return RedirectResponse(f"/sessions/{encounter_id}#note", status_code=303)


@router.post("/sessions/{encounter_id}/note.txt", dependencies=[allow("note.export"), CsrfDep])
def export(runtime: RuntimeDep, session: SessionDep, actor: ActorDep, encounter_id: PathId,
           password: Annotated[str, Form(max_length=200)]) -> Response:
    text = records.export_text(
        session,
        runtime.audit_key,
        runtime.policies,
        actor=actor,
        encounter_id=encounter_id,
        password=password,
        now=runtime.clock(),
    )
    return Response(text, media_type="text/plain; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="note-{encounter_id}.txt"'})


@router.post("/sessions/{encounter_id}/note.pdf", dependencies=[allow("note.export"), CsrfDep])
def export_pdf(request: Request, runtime: RuntimeDep, session: SessionDep, actor: ActorDep, encounter_id: PathId,
               password: Annotated[str, Form(max_length=200)]) -> Response:
    """The signed note as a PDF for the chart or a records request (signed records only)."""
    x = exports.prepare_export(session, runtime.audit_key, runtime.policies, actor=actor, encounter_id=encounter_id,
                               password=password, now=runtime.clock(), fmt="pdf")
    pdf = render_pdf(request.app.state.templates, "export/note.html", {"x": x})
    return Response(pdf, media_type="application/pdf",
                    headers={"Content-Disposition": f'attachment; filename="note-{encounter_id}.pdf"'})


@router.post("/sessions/{encounter_id}/note.fhir.json", dependencies=[allow("note.export"), CsrfDep])
def export_fhir(runtime: RuntimeDep, session: SessionDep, actor: ActorDep, encounter_id: PathId,
                password: Annotated[str, Form(max_length=200)]) -> Response:
    """The signed note as a FHIR document Bundle (Composition, DocumentReference, Provenance)."""
    x = exports.prepare_export(session, runtime.audit_key, runtime.policies, actor=actor, encounter_id=encounter_id,
                               password=password, now=runtime.clock(), fmt="fhir")
    return JSONResponse(fhir.note_bundle(x, drafted_by=x.drafted_by), media_type="application/fhir+json",
                        headers={"Content-Disposition": f'attachment; filename="note-{encounter_id}.fhir.json"'})


@router.post("/sessions/{encounter_id}/send", dependencies=[allow("note.export"), CsrfDep])
def send_to_ehr(runtime: RuntimeDep, session: SessionDep, actor: ActorDep, encounter_id: PathId,
                destination: Annotated[str, Form(max_length=80)],
                password: Annotated[str, Form(max_length=200)]) -> Response:
    """Push the signed note to the practice's EHR through the egress gateway (ledgered)."""
    from scribe.engines.build import build_record_gateway
    from scribe.services.egress import SqlLedger

    gateway = build_record_gateway(runtime.policies.egress, SqlLedger(runtime.engine), runtime.clock)
    exports.send_to_ehr(session, runtime.audit_key, runtime.policies, actor=actor, encounter_id=encounter_id,
                        destination=destination, password=password, gateway=gateway, now=runtime.clock())
    return RedirectResponse(f"/sessions/{encounter_id}?sent={destination}#note", status_code=303)


@router.post("/sessions/{encounter_id}/service", dependencies=[allow("draft.edit"), CsrfDep])
async def service(request: Request, runtime: RuntimeDep, session: SessionDep, actor: ActorDep,
                  encounter_id: PathId) -> Response:
    """Set the time, place, type and attendees of the service and confirm its code."""
    form = await request.form()
    start, end = _moment(form, "start"), _moment(form, "end")
    names, relations = form.getlist("attendee_name"), form.getlist("attendee_relation")
    if len(names) > 20 or len(relations) != len(names):
        raise InvalidInput("the list of other participants is malformed")
    encounters.set_service(session, runtime.audit_key, runtime.policies, actor=actor, encounter_id=encounter_id,
                           start=start, end=end, place=_field(form, "place"), service_type=_field(form, "service_type"),
                           code=_field(form, "code"),
                           attendees=[(str(n)[:200], str(r)[:200]) for n, r in zip(names, relations, strict=False)],
                           now=runtime.clock())
    return RedirectResponse(f"/sessions/{encounter_id}#service", status_code=303)


def _field(form: Any, name: str) -> str:
    value = form.get(name, "")
    return value[:40] if isinstance(value, str) else ""


def _moment(form: Any, prefix: str) -> datetime:
    """A date and a time from the service form (UTC, as every time scribe shows)."""
    try:
        day = date.fromisoformat(_field(form, f"{prefix}_date"))
        at = time.fromisoformat(_field(form, f"{prefix}_time"))
    except ValueError:
        raise InvalidInput(f"the {prefix} of service needs a date (YYYY-MM-DD) and a time (HH:MM)") from None
    return datetime.combine(day, at.replace(tzinfo=None), tzinfo=UTC)


@router.post("/sessions/{encounter_id}/void", dependencies=[allow("draft.edit"), CsrfDep])
def void(runtime: RuntimeDep, session: SessionDep, actor: ActorDep, encounter_id: PathId, tasks: BackgroundTasks,
         reason: Annotated[str, Form(max_length=80)]) -> Response:
    receipt = encounters.void_session(session, runtime.audit_key, actor=actor, encounter_id=encounter_id,
                                      reason=reason, now=runtime.clock())
    tasks.add_task(purge.sweep_files, runtime.engine, runtime.settings.recordings_dir)  # after the commit
    return RedirectResponse(f"/receipts/{receipt.id}" if receipt else f"/sessions/{encounter_id}", status_code=303)


@router.post("/sessions/{encounter_id}/move", dependencies=[allow("draft.edit"), CsrfDep])
def move(runtime: RuntimeDep, session: SessionDep, actor: ActorDep, encounter_id: PathId, tasks: BackgroundTasks,
         client_id: FormInt) -> Response:
    moved = encounters.move_session(session, runtime.audit_key, runtime.policies, actor=actor,
                                    encounter_id=encounter_id, client_id=client_id,
                                    recordings_dir=runtime.settings.recordings_dir, now=runtime.clock())
    tasks.add_task(purge.remove_unreferenced, runtime.engine, runtime.settings.recordings_dir,
                   moved.stale_files)  # the wrong client's copy, once the move has committed
    return RedirectResponse(f"/sessions/{moved.encounter.id}", status_code=303)


@router.post("/sessions/{encounter_id}/retry", dependencies=[allow("draft.edit"), CsrfDep])
def retry(runtime: RuntimeDep, session: SessionDep, actor: ActorDep, encounter_id: PathId) -> Response:
    encounters.retry_stage(session, runtime.audit_key, runtime.policies, actor=actor, encounter_id=encounter_id,
                           now=runtime.clock())
    return RedirectResponse(f"/sessions/{encounter_id}", status_code=303)


@router.get("/sessions/{encounter_id}/audio", dependencies=[allow("session.read")])
def audio(request: Request, runtime: RuntimeDep, session: SessionDep, actor: ActorDep, encounter_id: PathId) -> Response:
    data, media = review.recording_for_actor(session, runtime.audit_key, actor=actor, encounter_id=encounter_id,
                                             recordings_dir=runtime.settings.recordings_dir, now=runtime.clock())
    return byte_range(request, data, media)


def byte_range(request: Request, data: bytes, media: str) -> Response:
    """The whole body, or the one range asked for (so the player can seek)."""
    wanted = request.headers.get("range", "")
    match = re.fullmatch(r"bytes=(\d*)-(\d*)", wanted.strip())
    if not match or not (match.group(1) or match.group(2)):
        return Response(data, media_type=media, headers={"Accept-Ranges": "bytes"})
    size = len(data)
    if match.group(1):
        start, end = int(match.group(1)), min(int(match.group(2) or size - 1), size - 1)
    else:
        start, end = max(size - int(match.group(2)), 0), size - 1
    if start > end or start >= size:
        return Response(status_code=416, headers={"Content-Range": f"bytes */{size}"})
    return Response(data[start:end + 1], status_code=206, media_type=media,
                    headers={"Accept-Ranges": "bytes", "Content-Range": f"bytes {start}-{end}/{size}"})


@router.get("/healthz")

def healthz() -> dict[str, str]:
    return {"status": "ok"}
