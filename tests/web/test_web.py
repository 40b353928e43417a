"""The browser flow through the ASGI app: log in, upload, review, sign; errors and headers."""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import select

from scribe.app import create_app
from scribe.config import Settings
from scribe.db.engine import session_scope
from scribe.db.tables import NoteVersion
from scribe.runtime import Runtime
from tests.conftest import PASSWORD, Clock, Practice, totp_code
from tests.helpers import TRANSCRIPT, must_search, run_pipeline


@pytest.fixture
def app(settings: Settings, runtime: Runtime) -> FastAPI:
    return create_app(settings, runtime=runtime, start_worker=False)


def client_for(app: FastAPI, username: str | None, *, raise_server_exceptions: bool = True) -> TestClient:
    client = TestClient(app, base_url="http://testserver", raise_server_exceptions=raise_server_exceptions)
    if username:
        code = totp_code(app.state.runtime, username)
        r = client.post("/login", data={"username": username, "password": PASSWORD, "code": code},
                        follow_redirects=False)
        assert r.status_code == 303, r.text
    return client


def csrf(client: TestClient) -> str:
    page = client.get("/").text
    return must_search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def upload_via_form(client: TestClient, runtime: Runtime, client_id: int | None, wav: bytes) -> int:
    r = client.post("/sessions", data={"csrf_token": csrf(client), "client_id": client_id, "note_type": "soap"},
                    files={"audio": ("s.wav", wav, "audio/wav")}, follow_redirects=False)
    assert r.status_code == 303, r.text
    encounter_id = int(r.headers["location"].rsplit("/", 1)[1])
    recordings = sorted(runtime.settings.recordings_dir.glob("*.wav"))
    (recordings[-1].parent / (recordings[-1].name + ".txt")).write_text(TRANSCRIPT)
    return encounter_id


def confirm_service_via_form(web: TestClient, encounter_id: int, token: str) -> str:
    """The clinician corrects the time of service (14:00-14:50 UTC the day of the fake clock)
    and confirms the code the page suggests for 50 minutes."""
    r = web.post(f"/sessions/{encounter_id}/service",
                 data={"csrf_token": token, "start_date": "2026-11-02", "start_time": "14:00", "end_date": "2026-11-02",
                       "end_time": "14:50", "place": "11", "service_type": "individual", "code": "90834"})
    assert r.status_code == 200 and "code 90834 confirmed" in r.text, r.text[-2000:]
    return r.text


def test_a_clinician_uploads_reviews_and_signs_in_the_browser(
    app: FastAPI, runtime: Runtime, practice: Practice, wav: bytes
) -> None:
    web = client_for(app, "dr_ada")
    encounter_id = upload_via_form(web, runtime, practice.maya.id, wav)
    assert "Status:" in web.get(f"/sessions/{encounter_id}").text
    run_pipeline(runtime)
    page = web.get(f"/sessions/{encounter_id}").text
    assert "AI draft" in page and "Transcript" in page and "Riverside Bakery" in page
    token = csrf(web)
    # mark every section reviewed, resolve every open flag, then sign
    for key in re.findall(r'action="/sessions/\d+/sections/(\w+)"', page):
        lock = must_search(r'name="lock_version" value="(\d+)"', page).group(1)
        text = must_search(rf'sections/{key}".*?<textarea name="text" rows="4">(.*?)</textarea>', page, re.S).group(1)
        page = web.post(f"/sessions/{encounter_id}/sections/{key}",
                        data={"csrf_token": token, "text": html.unescape(text), "lock_version": lock}).text
    while 'name="target"' in page:
        target = must_search(r'name="target" value="([^"]+)"', page).group(1)
        lock = must_search(r'name="lock_version" value="(\d+)"', page).group(1)
        r = web.post(f"/sessions/{encounter_id}/flags", data={"csrf_token": token, "target": target,
                                                             "reason": "heard it in the recording", "lock_version": lock})
        page = r.text
    assert "the service is not confirmed" in page  # the sign form waits for the service
    page = confirm_service_via_form(web, encounter_id, token)
    lock = must_search(r'name="lock_version" value="(\d+)"', page).group(1)
    r = web.post(f"/sessions/{encounter_id}/sign", data={"csrf_token": token, "password": PASSWORD, "attest": "yes",
                                                        "lock_version": lock})
    assert r.status_code == 200 and "Electronically signed by" in r.text and "Content SHA-256" in r.text
    with session_scope(runtime.engine) as s:
        assert s.exec(select(NoteVersion)).one().signer_id == practice.dr_ada.id


def test_a_wrong_password_does_not_sign(app: FastAPI, runtime: Runtime, practice: Practice, wav: bytes) -> None:
    web = client_for(app, "dr_ada")
    encounter_id = upload_via_form(web, runtime, practice.maya.id, wav)
    run_pipeline(runtime)
    r = web.post(f"/sessions/{encounter_id}/sign", data={"csrf_token": csrf(web), "password": "nope nope nope",
                                                        "attest": "yes", "lock_version": 1})
    assert r.status_code in (403, 409)
    with session_scope(runtime.engine) as s:
        assert s.exec(select(NoteVersion)).first() is None


def test_state_changes_need_the_csrf_token_and_our_origin(app: FastAPI, runtime: Runtime, practice: Practice, wav: bytes) -> None:
    web = client_for(app, "dr_ada")
    r = web.post("/sessions", data={"client_id": practice.maya.id, "note_type": "soap"},
                 files={"audio": ("s.wav", wav, "audio/wav")})
    assert r.status_code == 403
    r = web.post("/sessions", data={"csrf_token": csrf(web), "client_id": practice.maya.id, "note_type": "soap"},
                 files={"audio": ("s.wav", wav, "audio/wav")}, headers={"Origin": "https://evil.example"})
    assert r.status_code == 403


def test_another_clinician_gets_not_found(app: FastAPI, runtime: Runtime, practice: Practice, wav: bytes) -> None:
    ada = client_for(app, "dr_ada")
    encounter_id = upload_via_form(ada, runtime, practice.maya.id, wav)
    run_pipeline(runtime)
    for who, status in (("dr_cole", 404), ("eve", 404), ("root", 403)):  # the admin role reads no session at all
        page = client_for(app, who).get(f"/sessions/{encounter_id}")
        assert page.status_code == status
        assert "Riverside" not in page.text and "Maya" not in page.text
        assert client_for(app, who).get(f"/sessions/{encounter_id}/audio").status_code == status


def test_the_admin_home_shows_no_clinical_content(app: FastAPI, runtime: Runtime, practice: Practice, wav: bytes) -> None:
    ada = client_for(app, "dr_ada")
    upload_via_form(ada, runtime, practice.maya.id, wav)
    run_pipeline(runtime)
    page = client_for(app, "root").get("/").text
    assert "Administration" in page and "Maya" not in page and "Thompson" not in page


def test_pages_need_a_login(app: FastAPI) -> None:
    r = client_for(app, None).get("/", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login"


def test_a_malformed_form_gets_a_422_that_never_echoes_input(app: FastAPI, practice: Practice) -> None:
    web = client_for(app, "dr_ada")
    r = web.post("/sessions/1/sections/plan", data={"csrf_token": csrf(web), "text": "CANARY-Maya-Thompson-SECRET"})
    assert r.status_code == 422 and "lock_version" in r.text
    assert "CANARY" not in r.text


def test_security_headers_on_every_page(app: FastAPI, practice: Practice) -> None:
    web = client_for(app, "dr_ada")
    for path in ("/", "/sessions/new", "/login", "/sessions/999"):
        r = web.get(path)
        csp = r.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
        assert r.headers["x-content-type-options"] == "nosniff" and r.headers["cache-control"] == "no-store"
    assert web.get("/docs").status_code == 404 and web.get("/openapi.json").status_code == 404


def test_an_unsupported_upload_shows_a_clear_error(app: FastAPI, runtime: Runtime, practice: Practice) -> None:
    web = client_for(app, "dr_ada")
    r = web.post("/sessions", data={"csrf_token": csrf(web), "client_id": practice.maya.id, "note_type": "soap"},
                 files={"audio": ("notes.pdf", b"%PDF-1.4 hello" * 50, "application/pdf")})
    assert r.status_code == 400 and "unsupported file type" in r.text


def test_logout_ends_the_session_on_the_server(app: FastAPI, practice: Practice) -> None:
    web = client_for(app, "dr_ada")
    cookie = web.cookies.get("scribe_session") or ""
    web.post("/logout", data={"csrf_token": csrf(web)})
    replay = TestClient(app, cookies={"scribe_session": cookie})
    assert replay.get("/", follow_redirects=False).status_code == 303


def test_an_idle_session_expires(app: FastAPI, practice: Practice, clock: Clock) -> None:
    web = client_for(app, "dr_ada")
    clock.advance(minutes=16)
    assert web.get("/", follow_redirects=False).status_code == 303


def test_an_oversized_upload_is_refused_before_it_is_read(app: FastAPI, practice: Practice) -> None:
    web = client_for(app, "dr_ada")
    r = web.post("/sessions", content=b"x", headers={"content-length": str(600 * 1024 * 1024),
                                                     "content-type": "multipart/form-data; boundary=x"})
    assert r.status_code == 413


def test_the_unit_of_work_commits_before_the_response_is_sent() -> None:
    """With FastAPI's default dependency scope the commit would run after the response was
    sent, and a browser following the redirect could read stale data (seen in Chromium as a
    lost log-in and a stale draft version under load)."""
    from typing import get_args

    from scribe.web.deps import SessionDep

    depends = get_args(SessionDep)[1]
    assert depends.scope == "function"


def test_the_break_glass_reviewer_is_told_on_every_page_until_the_grant_is_reviewed(
    app: FastAPI, runtime: Runtime, practice: Practice
) -> None:
    """Notify the reviewer: the notice is on the reviewer's landing page and every other page
    they open, not only on the admin screen; never shown to the grantee; gone once reviewed."""
    from tests.services.test_oversight import grant

    notice = re.compile(r'id="review-notice"><strong>(\d+) emergency access grant')
    root = client_for(app, "root")
    assert notice.search(root.get("/").text) is None
    first = grant(runtime, practice.dr_cole, practice.maya.mrn)
    grant(runtime, practice.dr_ada, practice.jonah.mrn)
    for page in ("/", "/admin", "/admin/audit", "/admin/egress"):
        found = notice.search(root.get(page).text)
        assert found and found.group(1) == "2", page
    assert notice.search(client_for(app, "dr_cole").get("/").text) is None
    r = root.post(f"/admin/break-glass/{first.id}/review", data={"csrf_token": csrf(root), "note": "called Dr Cole"},
                  follow_redirects=False)
    assert r.status_code == 303
    assert must_search(notice.pattern, root.get("/").text).group(1) == "1"


def test_the_section_form_asks_for_the_typed_word_when_the_practice_requires_it(
    app: FastAPI, runtime: Runtime, practice: Practice, wav: bytes, tmp_path: Path
) -> None:
    import shutil

    from scribe.config import ROOT
    from scribe.policies import load_policies
    from tests.helpers import upload

    folder = tmp_path / "policies"
    shutil.copytree(ROOT / "policies", folder)
    signing = folder / "signing.yaml"
    signing.write_text(signing.read_text().replace("section_review: save", "section_review: edit_or_typed"))
    runtime.policies = load_policies(folder)
    encounter = upload(runtime, practice.dr_ada, practice.maya.id, wav, transcript=TRANSCRIPT)
    run_pipeline(runtime)
    web = client_for(app, "dr_ada")
    page = web.get(f"/sessions/{encounter.id}").text
    assert 'Type "reviewed" to confirm it' in page
    token = must_search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    version = must_search(r'name="lock_version" value="(\d+)"', page).group(1)
    key = must_search(r'/sections/(\w+)"', page).group(1)
    text = html.unescape(must_search(r'<textarea name="text" rows="4">(.*?)</textarea>', page, re.S).group(1))
    r = web.post(f"/sessions/{encounter.id}/sections/{key}",
                 data={"csrf_token": token, "lock_version": version, "text": text}, follow_redirects=False)
    assert r.status_code == 400 and 'type "reviewed"' in html.unescape(r.text)
    r = web.post(f"/sessions/{encounter.id}/sections/{key}", data={
        "csrf_token": token, "lock_version": version, "text": text, "confirmation": "reviewed"}, follow_redirects=False)
    assert r.status_code == 303
