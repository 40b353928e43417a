"""The review queue, uploads, the review screen, signing and the signed note."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from sqlmodel import select

from scribe.db.queries import clients_for_actor, encounters_for_actor, get_encounter_for_actor
from scribe.db.tables import Client, Recording
from scribe.domain.errors import NotFound
from scribe.domain.notes import PROCESSING, Role
from scribe.services import audit, review, uploads
from scribe.web.deps import ActorDep, CsrfDep, LoginDep, RuntimeDep, SessionDep

router = APIRouter()


def _render(request: Request, name: str, context: dict[str, object], status_code: int = 200) -> Response:
    return request.app.state.templates.TemplateResponse(request, name, context, status_code=status_code)


@router.get("/", response_class=HTMLResponse)
def queue(request: Request, session: SessionDep, login: LoginDep) -> Response:
    actor, login_row = login
    encounters = encounters_for_actor(session, actor)
    clients = {c.id: c for c in session.exec(select(Client).where(Client.clinic_id == actor.clinic_id)).all()}
    rows = [(e, clients.get(e.client_id)) for e in encounters]
    return _render(request, "queue.html", {"actor": actor, "csrf": login_row.csrf_token, "rows": rows,
                                           "is_admin": actor.role == Role.ADMIN})


@router.get("/sessions/new", response_class=HTMLResponse)
def new_session(request: Request, runtime: RuntimeDep, session: SessionDep, login: LoginDep) -> Response:
    actor, login_row = login
    return _render(request, "new_session.html", {
        "actor": actor, "csrf": login_row.csrf_token, "clients": clients_for_actor(session, actor),
        "note_types": [(k, runtime.policies.templates[k].name) for k in runtime.policies.progress_note_types],
        "formats": runtime.policies.pipeline.upload.formats})


@router.post("/sessions", dependencies=[CsrfDep])
def upload(runtime: RuntimeDep, session: SessionDep, actor: ActorDep, client_id: Annotated[int, Form()],
           note_type: Annotated[str, Form(max_length=40)], audio: Annotated[UploadFile, File()]) -> Response:
    encounter = uploads.accept_upload(session, runtime.audit_key, runtime.policies,
                                      recordings_dir=runtime.settings.recordings_dir, actor=actor, client_id=client_id,
                                      note_type=note_type, filename=audio.filename or "", stream=audio.file,
                                      now=runtime.clock())
    return RedirectResponse(f"/sessions/{encounter.id}", status_code=303)


@router.get("/sessions/{encounter_id}", response_class=HTMLResponse)
def review_page(request: Request, runtime: RuntimeDep, session: SessionDep, login: LoginDep, encounter_id: int) -> Response:
    actor, login_row = login
    if request.headers.get("hx-request") == "true" and request.query_params.get("poll"):
        # The status fragment, polled every 2 s while the pipeline runs: status only, no
        # clinical content loaded; once processing ends the whole page reloads.
        encounter, _ = get_encounter_for_actor(session, actor, encounter_id)
        if encounter.status not in PROCESSING:
            return Response(status_code=200, headers={"HX-Refresh": "true"})
        return _render(request, "_status.html", {"encounter": encounter, "polling": True})
    view = review.review_view(session, runtime.audit_key, actor=actor, encounter_id=encounter_id, now=runtime.clock())
    return _render(request, "session.html", {"actor": actor, "csrf": login_row.csrf_token, "v": view,
                                             "encounter": view.encounter, "polling": view.encounter.status in PROCESSING,
                                             "attestation": runtime.policies.signing.attestation,
                                             "sign_reason": view.can_sign.reason})


@router.post("/sessions/{encounter_id}/sections/{section_key}", dependencies=[CsrfDep])
def save_section(request: Request, runtime: RuntimeDep, session: SessionDep, actor: ActorDep, encounter_id: int,
                 section_key: str, text: Annotated[str, Form(max_length=20_000)],
                 lock_version: Annotated[int, Form()]) -> Response:
    review.save_section(session, runtime.audit_key, actor=actor, encounter_id=encounter_id, section_key=section_key,
                        text=text, lock_version=lock_version, now=runtime.clock())
    return RedirectResponse(f"/sessions/{encounter_id}#section-{section_key}", status_code=303)


@router.post("/sessions/{encounter_id}/flags", dependencies=[CsrfDep])
def resolve_flag(runtime: RuntimeDep, session: SessionDep, actor: ActorDep, encounter_id: int,
                 target: Annotated[str, Form(max_length=40)], reason: Annotated[str, Form(max_length=500)],
                 lock_version: Annotated[int, Form()]) -> Response:
    review.resolve_flag(session, runtime.audit_key, actor=actor, encounter_id=encounter_id, target=target,
                        reason=reason, lock_version=lock_version, now=runtime.clock())
    return RedirectResponse(f"/sessions/{encounter_id}#flags", status_code=303)


@router.post("/sessions/{encounter_id}/sign", dependencies=[CsrfDep])
def sign(runtime: RuntimeDep, session: SessionDep, actor: ActorDep, encounter_id: int,
         password: Annotated[str, Form(max_length=200)], lock_version: Annotated[int, Form()],
         attest: Annotated[str, Form(max_length=10)] = "") -> Response:
    review.sign(session, runtime.audit_key, runtime.policies, actor=actor, encounter_id=encounter_id,
                password=password, attested=attest == "yes", lock_version=lock_version, now=runtime.clock())
    return RedirectResponse(f"/sessions/{encounter_id}#note", status_code=303)


@router.get("/sessions/{encounter_id}/audio")
def audio(runtime: RuntimeDep, session: SessionDep, actor: ActorDep, encounter_id: int) -> Response:
    encounter, decision = get_encounter_for_actor(session, actor, encounter_id)
    recording = session.exec(select(Recording).where(Recording.encounter_id == encounter.id)).first()
    if recording is None or recording.purged_at is not None:
        raise NotFound("the audio is no longer retained")
    audit.record(session, runtime.audit_key, now=runtime.clock(), actor_id=actor.id, action="recording.play",
                 object_type="encounter", object_id=encounter.id, reason=decision.reason)
    media = {"wav": "audio/wav", "mp3": "audio/mpeg", "m4a": "audio/mp4", "webm": "audio/webm", "ogg": "audio/ogg"}
    return FileResponse(runtime.settings.recordings_dir / recording.path, media_type=media.get(recording.format))


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}
