"""Supervision: the co-signature queue and decisions, supervision-meeting uploads, the
quality view, licensure hours and their CSV export."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from scribe.db.queries import get_version_for_actor
from scribe.db.tables import Clinic, User
from scribe.domain.supervision import HOURS_LABELS
from scribe.services import purge, supervision, uploads
from scribe.web.bodies import Body, BoundedRoute, takes
from scribe.web.deps import ActorDep, CsrfDep, LoginDep, PathId, RuntimeDep, SessionDep, allow, render
from scribe.web.pdf import render_pdf

router = APIRouter(route_class=BoundedRoute)


@router.get("/supervision", response_class=HTMLResponse, dependencies=[allow("note.cosign")])
def dashboard(request: Request, runtime: RuntimeDep, session: SessionDep, login: LoginDep) -> Response:
    actor, login_row = login
    now = runtime.clock()
    summaries = supervision.dashboard(session, runtime.audit_key, runtime.policies, actor=actor, now=now)
    pending = supervision.pending_for(session, runtime.audit_key, actor=actor, now=now)
    return render(request, "supervision.html", {"actor": actor, "csrf": login_row.csrf_token, "summaries": summaries,
                                                "pending": pending})


@router.post("/supervision/sessions", dependencies=[allow("supervision.record"), CsrfDep])
@takes(Body.UPLOAD)
def upload_meeting(runtime: RuntimeDep, session: SessionDep, actor: ActorDep,
                   participant_ids: Annotated[list[int], Form(max_length=50)], audio: Annotated[UploadFile, File()],
                   agreed: Annotated[str, Form(max_length=10)] = "") -> Response:
    encounter = uploads.accept_supervision_upload(
        session, runtime.audit_key, runtime.policies, recordings_dir=runtime.settings.recordings_dir, decoder=runtime.decoder,
        actor=actor,
        participant_ids=participant_ids, participants_agreed=agreed == "yes", stream=audio.file, now=runtime.clock())
    return RedirectResponse(f"/sessions/{encounter.id}", status_code=303)


@router.post("/supervision/versions/{version_id}/cosign", dependencies=[allow("note.cosign"), CsrfDep])
def cosign(runtime: RuntimeDep, session: SessionDep, actor: ActorDep, version_id: PathId, tasks: BackgroundTasks,
           password: Annotated[str, Form(max_length=200)], attest: Annotated[str, Form(max_length=10)] = "",
           back: Annotated[str, Form(max_length=10)] = "") -> Response:
    row = supervision.cosign(session, runtime.audit_key, runtime.policies, actor=actor, version_id=version_id,
                             password=password, attested=attest == "yes", now=runtime.clock())
    tasks.add_task(purge.sweep_files, runtime.engine, runtime.settings.recordings_dir)  # audio not to be kept
    return _back(back, row.note_version_id, session, actor)


@router.post("/supervision/versions/{version_id}/return", dependencies=[allow("note.cosign"), CsrfDep])
def return_note(runtime: RuntimeDep, session: SessionDep, actor: ActorDep, version_id: PathId,
                comment: Annotated[str, Form(max_length=supervision.MAX_COMMENT_CHARS)],
                back: Annotated[str, Form(max_length=10)] = "") -> Response:
    row = supervision.return_note(session, runtime.audit_key, actor=actor, version_id=version_id, comment=comment,
                                  now=runtime.clock())
    return _back(back, row.note_version_id, session, actor)


def _back(back: str, version_id: PathId, session: SessionDep, actor: ActorDep) -> Response:
    if back == "session":
        _, _, encounter = get_version_for_actor(session, actor, version_id)
        return RedirectResponse(f"/sessions/{encounter.id}#note", status_code=303)
    return RedirectResponse("/supervision", status_code=303)


@router.get("/hours/{user_id}", response_class=HTMLResponse, dependencies=[allow("hours.read")])
def hours(request: Request, runtime: RuntimeDep, session: SessionDep, login: LoginDep, user_id: PathId) -> Response:
    actor, login_row = login
    user, type_key, prog, entries = supervision.ledger(session, runtime.audit_key, runtime.policies, actor=actor,
                                                       user_id=user_id, now=runtime.clock())
    return render(request, "hours.html", {"actor": actor, "csrf": login_row.csrf_token, "user": user,
                                          "type_key": type_key, "progress": prog, "entries": entries,
                                          "labels": HOURS_LABELS})


@router.get("/hours/{user_id}/ledger.csv", dependencies=[allow("hours.read")])
def hours_csv(runtime: RuntimeDep, session: SessionDep, actor: ActorDep, user_id: PathId) -> Response:
    user, type_key, prog, entries = supervision.ledger(session, runtime.audit_key, runtime.policies, actor=actor,
                                                       user_id=user_id, now=runtime.clock())
    return Response(supervision.ledger_csv(user, type_key, prog, entries), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="hours-{user.id}.csv"'})


@router.get("/hours/{user_id}/ledger.pdf", dependencies=[allow("hours.read")])
def hours_pdf(request: Request, runtime: RuntimeDep, session: SessionDep, actor: ActorDep, user_id: PathId) -> Response:
    """The ledger as a PDF for a licensing board: totals against targets, then every line."""
    user, type_key, prog, entries = supervision.ledger(session, runtime.audit_key, runtime.policies, actor=actor,
                                                       user_id=user_id, now=runtime.clock())
    pdf = render_pdf(request.app.state.templates, "export/hours.html", {
        "user": user, "type_key": type_key, "progress": prog, "entries": entries, "labels": HOURS_LABELS,
        "clinic": session.get(Clinic, user.clinic_id), "now": runtime.clock(),
        "supervisor": session.get(User, user.supervisor_id) if user.supervisor_id else None})
    return Response(pdf, media_type="application/pdf",
                    headers={"Content-Disposition": f'attachment; filename="hours-{user.id}.pdf"'})
