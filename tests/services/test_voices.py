"""Voices: how many people speak and whose voice is the clinician's reach the speaker turns; a
clinician's enrolled voice is sealed; swapping two voices relabels the session and runs the
checks that depend on who said what again."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlmodel import col, select

from scribe.app import create_app
from scribe.config import Settings
from scribe.db.engine import session_scope
from scribe.db.tables import AuditEvent, DraftSentence, Encounter, Pseudonymization, TranscriptSegment, User
from scribe.domain.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from scribe.domain.notes import Resolution
from scribe.runtime import Runtime
from scribe.services import voices
from scribe.services.review import ReviewView, review_view
from tests.conftest import Fakes, Practice, wav_bytes
from tests.helpers import must_search, run_pipeline, upload
from tests.services.test_review import draft_lock
from tests.web.test_web import client_for, csrf

# The voices came out the wrong way round: the client's words are labelled as the clinician's.
REVERSED = """CLIENT: How have you been since last week?
CLINICIAN: Not good. I have been feeling hopeless and I cry most nights.
CLIENT: How is your sleep?
CLINICIAN: I sleep about four hours and I wake up at three every morning.
CLIENT: Let us meet again on Friday and keep the sleep diary."""


def view(runtime: Runtime, actor: User, encounter: Encounter) -> ReviewView:
    with session_scope(runtime.engine) as s:
        return review_view(s, runtime.audit_key, runtime.policies, actor=actor, encounter_id=encounter.id or 0,
                           now=runtime.clock())


def swap(runtime: Runtime, actor: User, encounter: Encounter, lock_version: int, first: str = "clinician",
         second: str = "client") -> int:
    with session_scope(runtime.engine) as s:
        return voices.swap(s, runtime.audit_key, runtime.policies, actor=actor, encounter_id=encounter.id or 0,
                           first=first, second=second, lock_version=lock_version, now=runtime.clock()).lock_version


def open_kinds(runtime: Runtime, actor: User, encounter: Encounter) -> list[str]:
    return sorted(f.kind for f in view(runtime, actor, encounter).open_flags)


def test_a_swap_relabels_the_transcript_and_what_the_model_saw_and_rechecks_the_note(
    runtime: Runtime, practice: Practice, wav: bytes
) -> None:
    encounter = upload(runtime, practice.dr_ada, practice.maya.id, wav, transcript=REVERSED)
    run_pipeline(runtime)
    v = view(runtime, practice.dr_ada, encounter)
    objective = next(x for x in v.sections if x.key == "objective")
    assert "feeling hopeless" in objective.text  # the model took the mislabelled words for the clinician's
    assert "misplaced" not in open_kinds(runtime, practice.dr_ada, encounter)
    version = swap(runtime, practice.dr_ada, encounter, draft_lock(runtime, practice.dr_ada, encounter))
    with session_scope(runtime.engine) as s:
        rows = s.exec(select(TranscriptSegment).order_by(col(TranscriptSegment.idx))).all()
        assert [r.speaker for r in rows] == ["clinician", "client", "clinician", "client", "clinician"]
        lines = s.exec(select(Pseudonymization)).one().lines
        assert lines[0].startswith("CLINICIAN: How have you") and lines[1].startswith("CLIENT: Not good")
        assert s.exec(select(AuditEvent).where(AuditEvent.action == "transcript.voices.swap")).one()
    # Now the Objective sentence quotes the client: a report where observations belong.
    assert "misplaced" in open_kinds(runtime, practice.dr_ada, encounter)
    swap(runtime, practice.dr_ada, encounter, version)  # swapped back: that flag no longer holds
    assert "misplaced" not in open_kinds(runtime, practice.dr_ada, encounter)
    with session_scope(runtime.engine) as s:
        assert any(x.resolution == Resolution.RECHECKED for x in s.exec(select(DraftSentence)).all())


def test_a_swap_is_refused_from_a_stale_page_by_someone_else_or_for_one_voice(
    runtime: Runtime, practice: Practice, wav: bytes
) -> None:
    encounter = upload(runtime, practice.dr_ada, practice.maya.id, wav, transcript=REVERSED)
    run_pipeline(runtime)
    version = draft_lock(runtime, practice.dr_ada, encounter)
    with pytest.raises((PermissionDenied, NotFound)):  # another clinician does not even see it
        swap(runtime, practice.dr_cole, encounter, version)
    with pytest.raises(InvalidInput):
        swap(runtime, practice.dr_ada, encounter, version, "client", "client")
    with pytest.raises(InvalidInput):
        swap(runtime, practice.dr_ada, encounter, version, "clinician", "nobody")
    swap(runtime, practice.dr_ada, encounter, version)
    with pytest.raises(Conflict, match="changed since you opened it"):
        swap(runtime, practice.dr_ada, encounter, version)  # the page before the first swap
    with session_scope(runtime.engine) as s:  # refused swaps changed nothing: one swap happened
        assert s.exec(select(TranscriptSegment).where(TranscriptSegment.idx == 1)).one().speaker == "client"


def test_the_session_s_voices_and_the_enrolled_clinician_reach_the_speaker_turns(runtime: Runtime, practice: Practice, wav: bytes,
                                                                              fakes: Fakes) -> None:
    import io

    from scribe.services.uploads import accept_upload

    with session_scope(runtime.engine) as s:
        voices.enrol(s, runtime.audit_key, user=s.get_one(User, practice.dr_ada.id), voice=tuple([1 / 16] * 256),
                     now=runtime.clock())
        accept_upload(s, runtime.audit_key, runtime.policies, recordings_dir=runtime.settings.recordings_dir,
                      decoder=runtime.decoder, actor=practice.dr_ada, client_id=practice.maya.id or 0, note_type="soap",
                      filename="s.wav", stream=io.BytesIO(wav), now=runtime.clock(), voices=3)
    run_pipeline(runtime)
    hints = fakes.voices.calls[-1]
    assert hints.speakers == 3 and hints.clinician_voice == tuple([1 / 16] * 256)
    assert hints.clinician_first is runtime.policies.pipeline.clinician_is_first_speaker
    with session_scope(runtime.engine) as s, pytest.raises(InvalidInput, match="1 to 5"):
        accept_upload(s, runtime.audit_key, runtime.policies, recordings_dir=runtime.settings.recordings_dir,
                      decoder=runtime.decoder, actor=practice.dr_ada, client_id=practice.maya.id or 0, note_type="soap",
                      filename="s.wav", stream=io.BytesIO(wav), now=runtime.clock(), voices=9)


def test_a_clinician_enrols_a_voice_in_the_browser_and_it_is_sealed(
    settings: Settings, runtime: Runtime, practice: Practice
) -> None:
    app = create_app(settings, runtime=runtime, start_worker=False)
    web: TestClient = client_for(app, "dr_ada")
    assert "No voice enrolled" in web.get("/account/voice").text
    token = csrf(web)
    short = web.post("/account/voice", data={"csrf_token": token}, files={"audio": ("v.wav", wav_bytes(0.5), "audio/wav")})
    assert short.status_code == 400 and "too little speech" in short.text
    broken = web.post("/account/voice", data={"csrf_token": token}, files={"audio": ("v.wav", b"not audio", "audio/wav")})
    assert broken.status_code == 400
    page = web.post("/account/voice", data={"csrf_token": token}, files={"audio": ("v.wav", wav_bytes(12.0), "audio/wav")})
    assert page.status_code == 200 and "Your voice was enrolled" in page.text
    with session_scope(runtime.engine) as s:
        user = s.get_one(User, practice.dr_ada.id)
        assert user.voice and len(user.voice) == 256
        raw = s.execute(text("SELECT voice FROM users WHERE id = :i"), {"i": practice.dr_ada.id}).scalar_one()
        # ciphertext, not the numbers: the sealed header ("S2.<key id>.") may hold digits by chance, the body is base64
        assert "," not in raw and not re.search(r"\d\.\d{4}", raw.rsplit(".", 1)[-1])
    assert "Your voice was enrolled" not in web.post("/account/voice/remove", data={"csrf_token": csrf(web)}).text
    with session_scope(runtime.engine) as s:
        assert s.get_one(User, practice.dr_ada.id).voice is None


def test_the_session_page_offers_the_swap_and_the_swap_reaches_the_page(
    settings: Settings, runtime: Runtime, practice: Practice, wav: bytes
) -> None:
    app = create_app(settings, runtime=runtime, start_worker=False)
    web: TestClient = client_for(app, "dr_ada")
    encounter = upload(runtime, practice.dr_ada, practice.maya.id, wav, transcript=REVERSED)
    run_pipeline(runtime)
    page = web.get(f"/sessions/{encounter.id}").text
    assert 'id="swap-voices"' in page and "Enrol your voice" in page
    lock = must_search(r'id="swap-voices".*?name="lock_version" value="(\d+)"', page, re.S).group(1)
    r = web.post(f"/sessions/{encounter.id}/voices/swap", data={"csrf_token": csrf(web), "lock_version": lock,
                                                                "first": "clinician", "second": "client"})
    assert r.status_code == 200 and "a section for what the clinician observed" in r.text
    stale = web.post(f"/sessions/{encounter.id}/voices/swap", data={"csrf_token": csrf(web), "lock_version": lock})
    assert stale.status_code == 409  # from the page before the swap: refused, nothing changed
