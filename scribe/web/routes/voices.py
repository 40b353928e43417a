"""Voices: enrolling the clinician's voice, and swapping a session's speaker labels."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from scribe.domain.errors import InvalidInput
from scribe.services import voices
from scribe.web.bodies import Body, BoundedRoute, takes
from scribe.web.deps import ActorDep, CsrfDep, FormInt, LoginDep, PathId, RuntimeDep, SessionDep, allow, render

router = APIRouter(route_class=BoundedRoute)

MAX_SAMPLE_SECONDS = 120.0
MAX_SAMPLE_BYTES = 20 << 20


@router.get("/account/voice", response_class=HTMLResponse)
def voice_page(request: Request, runtime: RuntimeDep, login: LoginDep) -> Response:
    return _page(request, runtime, login)


def _page(request: Request, runtime: RuntimeDep, login: LoginDep, error: str = "") -> Response:
    user, row = login
    return render(request, "voice.html", {"actor": user, "csrf": row.csrf_token, "enrolled": user.voice_enrolled_at,
                                          "clinician_first": runtime.policies.pipeline.clinician_is_first_speaker,
                                          "error": error})


@router.post("/account/voice", dependencies=[CsrfDep])
@takes(Body.UPLOAD)
async def enrol(request: Request, runtime: RuntimeDep, session: SessionDep, login: LoginDep,
                audio: Annotated[UploadFile, File()]) -> Response:
    data = await audio.read(MAX_SAMPLE_BYTES + 1)
    if len(data) > MAX_SAMPLE_BYTES:
        raise InvalidInput(f"a voice sample may be at most {MAX_SAMPLE_BYTES >> 20} MB")
    decoded = runtime.decoder.pcm(data, max_seconds=MAX_SAMPLE_SECONDS)  # sandboxed, like every upload
    try:
        voice = runtime.voices().enrol(decoded.samples)
    except ValueError as exc:  # too little speech: our own message, no input quoted
        raise InvalidInput(str(exc)) from None
    voices.enrol(session, runtime.audit_key, user=session.merge(login[0]), voice=voice, now=runtime.clock())
    return RedirectResponse("/account/voice", status_code=303)


@router.post("/account/voice/remove", dependencies=[CsrfDep])
def remove(runtime: RuntimeDep, session: SessionDep, login: LoginDep) -> Response:
    voices.remove(session, runtime.audit_key, user=session.merge(login[0]), now=runtime.clock())
    return RedirectResponse("/account/voice", status_code=303)


@router.post("/sessions/{encounter_id}/voices/swap", dependencies=[allow("draft.edit"), CsrfDep])
def swap(runtime: RuntimeDep, session: SessionDep, actor: ActorDep, encounter_id: PathId,
         lock_version: FormInt, first: Annotated[str, Form(max_length=20)] = "clinician",
         second: Annotated[str, Form(max_length=20)] = "client") -> Response:
    voices.swap(session, runtime.audit_key, runtime.policies, actor=actor, encounter_id=encounter_id, first=first,
                second=second, lock_version=lock_version, now=runtime.clock())
    return RedirectResponse(f"/sessions/{encounter_id}#flags", status_code=303)
