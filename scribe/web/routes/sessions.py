"""The review queue, uploads, the review screen, signing and the signed note."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from scribe.db.queries import (
    clients_for_actor,
    encounters_for_actor,
    get_encounter_for_actor,
    queue_labels,
    supervisees_for_actor,
)
from scribe.domain.consent import allowed_note_types, transcription_decision
from scribe.domain.notes import PROCESSING, Role, VersionKind
from scribe.services import consent, purge, records, review, uploads
from scribe.web.bodies import Body, BoundedRoute, takes
from scribe.web.deps import ActorDep, allow, CsrfDep, FormInt, is_htmx, LoginDep, PathId, RuntimeDep, SessionDep

router = APIRouter(route_class=BoundedRoute)


def render(request: Request, name: str, context: dict[str, object], status_code: int = 200) -> Response:
    return request.app.state.templates.TemplateResponse(request, name, context, status_code=status_code)


@router.get("/", response_class=HTMLResponse)

def queue(request: Request, session: SessionDep, login: LoginDep) -> Response:
    actor, login_row = login
    encounters = encounters_for_actor(session, actor)
    rows = list(zip(encounters, queue_labels(session, encounters), strict=True))
    return render(request, "queue.html", {"actor": actor, "csrf": login_row.csrf_token, "rows": rows,
                                          "is_admin": actor.role == Role.ADMIN})


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
           part2: Annotated[bool, Form()] = False) -> Response:
    encounter = uploads.accept_upload(session, runtime.audit_key, runtime.policies,
                                      recordings_dir=runtime.settings.recordings_dir, decoder=runtime.decoder,
                                      actor=actor, client_id=client_id,
                                      note_type=note_type, filename=audio.filename or "", stream=audio.file,
                                      now=runtime.clock(), part2=part2)
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
        return render(request, "_status.html", {"encounter": encounter, "polling": True})
    view = review.review_view(session, runtime.audit_key, actor=actor, encounter_id=encounter_id, now=runtime.clock())
    return render(request, "session.html", {"actor": actor, "csrf": login_row.csrf_token, "v": view,
                                             "encounter": view.encounter, "polling": view.encounter.status in PROCESSING,
                                             "attestation": runtime.policies.signing.attestation,
                                             "sign_reason": view.can_sign.reason,
                                             "pending": review.pending_here(session, actor, view)})


@router.post("/sessions/{encounter_id}/sections/{section_key}", dependencies=[allow("draft.edit"), CsrfDep])
def save_section(request: Request, runtime: RuntimeDep, session: SessionDep, actor: ActorDep, encounter_id: PathId,
                 section_key: str, text: Annotated[str, Form(max_length=20_000)],
                 lock_version: FormInt) -> Response:
    review.save_section(session, runtime.audit_key, actor=actor, encounter_id=encounter_id, section_key=section_key,
                        text=text, lock_version=lock_version, now=runtime.clock())
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
    records.correct(session, runtime.audit_key, runtime.policies, actor=actor, encounter_id=encounter_id, kind=VersionKind.ADDENDUM,
                    password=password, attested=attest == "yes", now=runtime.clock(), addendum=text)
    return RedirectResponse(f"/sessions/{encounter_id}#note", status_code=303)


@router.post("/sessions/{encounter_id}/amendment", dependencies=[allow("note.sign"), CsrfDep])
async def amendment(request: Request, runtime: RuntimeDep, session: SessionDep, actor: ActorDep,
                    encounter_id: PathId, password: Annotated[str, Form(max_length=200)],
                    attest: Annotated[str, Form(max_length=10)] = "") -> Response:
    form = await request.form()
    texts = {k[len("section_"):]: str(v) for k, v in form.items() if k.startswith("section_") and len(k) < 60}
    records.correct(session, runtime.audit_key, runtime.policies, actor=actor, encounter_id=encounter_id, kind=VersionKind.AMENDMENT,
                    password=password, attested=attest == "yes", now=runtime.clock(), texts=texts)
    return RedirectResponse(f"/sessions/{encounter_id}#note", status_code=303)


@router.post("/sessions/{encounter_id}/note.txt", dependencies=[allow("note.export"), CsrfDep])
def export(runtime: RuntimeDep, session: SessionDep, actor: ActorDep, encounter_id: PathId,
           password: Annotated[str, Form(max_length=200)]) -> Response:
    text = records.export_text(session, runtime.audit_key, runtime.policies, actor=actor, encounter_id=encounter_id, password=password,
                               now=runtime.clock())
    return Response(text, media_type="text/plain; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="note-{encounter_id}.txt"'})


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
