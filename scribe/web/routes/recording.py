"""Recording in the browser: start, chunks (acknowledged once fsync'ed), finish."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from scribe.domain.errors import InvalidInput
from scribe.services import recording
from scribe.web.bodies import Body, BoundedRoute, takes
from scribe.web.deps import FORM_TYPES, ActorDep, CsrfDep, FormInt, FormVoices, PathId, RuntimeDep, SessionDep, allow

router = APIRouter(route_class=BoundedRoute)


@router.post("/recordings", dependencies=[allow("session.upload"), CsrfDep])
def start(runtime: RuntimeDep, session: SessionDep, actor: ActorDep, client_id: FormInt,
          note_type: Annotated[str, Form(max_length=40)], part2: Annotated[bool, Form()] = False,
          voices: FormVoices = 2) -> Response:
    encounter = recording.start(session, runtime.audit_key, runtime.policies, actor=actor, client_id=client_id,
                                note_type=note_type, now=runtime.clock(), part2=part2, voices=voices)
    return JSONResponse({"session_id": encounter.id}, status_code=201)


@router.post("/recordings/{encounter_id}/chunks/{seq}", dependencies=[allow("session.upload"), CsrfDep])
@takes(Body.CHUNK)
async def chunk(request: Request, runtime: RuntimeDep, session: SessionDep, actor: ActorDep, encounter_id: PathId,
                seq: PathId) -> Response:
    if request.headers.get("content-type", "").startswith(FORM_TYPES):
        raise InvalidInput("send the chunk as raw audio bytes with the X-CSRF-Token header")
    data = bytearray()
    async for piece in request.stream():
        data += piece
        if len(data) > recording.MAX_CHUNK_BYTES:
            raise InvalidInput(f"a chunk may hold at most {recording.MAX_CHUNK_BYTES >> 20} MB")
    row = recording.add_chunk(session, runtime.policies, actor=actor, encounter_id=encounter_id, seq=seq,
                              data=bytes(data), recordings_dir=runtime.settings.recordings_dir, now=runtime.clock())
    session.commit()  # durable before the acknowledgement
    return JSONResponse({"seq": row.seq, "bytes": row.bytes, "sha256": row.sha256})


@router.post("/recordings/{encounter_id}/finish", dependencies=[allow("session.upload"), CsrfDep])
def finish(runtime: RuntimeDep, session: SessionDep, actor: ActorDep, encounter_id: PathId) -> Response:
    recording.finish(session, runtime.audit_key, runtime.policies, actor=actor, encounter_id=encounter_id,
                     recordings_dir=runtime.settings.recordings_dir, decoder=runtime.decoder, now=runtime.clock())
    return RedirectResponse(f"/sessions/{encounter_id}", status_code=303)


@router.get("/recordings/{encounter_id}/live", dependencies=[allow("session.upload")])
def live(runtime: RuntimeDep, session: SessionDep, actor: ActorDep, encounter_id: PathId,
         after: Annotated[int, Query(ge=0, le=1_000_000)] = 0) -> Response:
    """The transcript so far while the session is recorded (polled by the recorder page)."""
    return JSONResponse(recording.live_transcript(session, runtime.audit_key, actor=actor, encounter_id=encounter_id,
                                                  after=after, now=runtime.clock()),
                        headers={"Cache-Control": "no-store"})
