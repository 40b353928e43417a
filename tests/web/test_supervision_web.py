"""Supervision, corrections and export over HTTP: status codes, refusals and what each
role sees. (The flows themselves are in tests/services and tests/browser.)"""

from __future__ import annotations

import re

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from httpx2 import Response

from scribe.app import create_app
from scribe.config import Settings
from scribe.db.tables import Encounter, NoteVersion
from scribe.runtime import Runtime
from tests.conftest import PASSWORD, Practice
from tests.services.test_review import draft_lock, ready, resolve_all, sign, view
from tests.web.test_web import client_for, csrf


@pytest.fixture
def app(settings: Settings, runtime: Runtime) -> FastAPI:
    return create_app(settings, runtime=runtime, start_worker=False)


@pytest.fixture
def pending(runtime: Runtime, practice: Practice, wav: bytes) -> tuple[Encounter, NoteVersion]:
    encounter = ready(runtime, practice.sam, practice.priya.id, wav)
    version = sign(runtime, practice.sam, encounter, resolve_all(runtime, practice.sam, encounter))
    return encounter, version


def test_a_stale_save_is_a_409_page_that_says_what_changed(
    app: FastAPI, runtime: Runtime, practice: Practice, wav: bytes
) -> None:
    encounter = ready(runtime, practice.dr_ada, practice.maya.id, wav)
    v = view(runtime, practice.dr_ada, encounter)
    web = client_for(app, "dr_ada")
    token, key, stale = csrf(web), v.sections[0].key, draft_lock(runtime, practice.dr_ada, encounter)
    first = web.post(f"/sessions/{encounter.id}/sections/{key}", data={"csrf_token": token, "text": "One.",
                                                                       "lock_version": stale})
    assert first.status_code == 200
    second = web.post(f"/sessions/{encounter.id}/sections/{key}", data={"csrf_token": token, "text": "Two.",
                                                                        "lock_version": stale})
    assert second.status_code == 409 and "Changed in the meantime" in second.text
    assert f"edited section &#39;{v.sections[0].title}&#39;" in second.text and "Two." not in second.text
    htmx = web.post(f"/sessions/{encounter.id}/sections/{key}", headers={"HX-Request": "true", "X-CSRF-Token": token},
                    data={"csrf_token": token, "text": "Three.", "lock_version": stale})
    assert htmx.status_code == 409 and htmx.headers["HX-Retarget"] == "#messages"


def test_only_the_supervisor_gets_the_cosign_controls(app: FastAPI, runtime: Runtime, practice: Practice,
                                                      pending: tuple[Encounter, NoteVersion]) -> None:
    encounter, version = pending
    ben = client_for(app, "dr_ben")
    page = ben.get(f"/sessions/{encounter.id}").text
    assert f"/supervision/versions/{version.id}/cosign" in page and "AI text kept" in page
    assert f"/supervision/versions/{version.id}/cosign" in ben.get("/supervision").text
    sam = client_for(app, "sam")
    assert "/cosign" not in sam.get(f"/sessions/{encounter.id}").text
    assert sam.get("/supervision").status_code == 403
    r = sam.post(f"/supervision/versions/{version.id}/cosign", data={"csrf_token": csrf(sam), "password": PASSWORD,
                                                                     "attest": "yes"})
    assert r.status_code == 403
    ada = client_for(app, "dr_ada")
    r = ada.post(f"/supervision/versions/{version.id}/return", data={"csrf_token": csrf(ada), "comment": "No."})
    assert r.status_code == 403  # a clinician's role has no co-signing, whatever the version
    assert ben.post(f"/supervision/versions/{version.id}/cosign",
                    data={"password": PASSWORD, "attest": "yes"}).status_code == 403  # no CSRF token


def test_export_is_refused_until_the_note_is_a_record(app: FastAPI, runtime: Runtime, practice: Practice,
                                                      pending: tuple[Encounter, NoteVersion]) -> None:
    encounter, version = pending
    sam, ben = client_for(app, "sam"), client_for(app, "dr_ben")

    def export(web: TestClient, password: str = PASSWORD) -> Response:
        return web.post(f"/sessions/{encounter.id}/note.txt", data={"csrf_token": csrf(web), "password": password})

    assert export(sam).status_code == 409
    r = ben.post(f"/supervision/versions/{version.id}/cosign", data={"csrf_token": csrf(ben), "password": PASSWORD,
                                                                     "attest": "yes", "back": "session"},
                 follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/sessions/{encounter.id}#note"
    assert export(sam, "not my password").status_code == 403  # step-up: the password, every time
    r = export(sam)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    assert "Co-signed by Dr Ben Tester" in r.text and "attachment" in r.headers["content-disposition"]
    assert export(client_for(app, "dr_ada")).status_code == 404
    csv_r = sam.get(f"/hours/{practice.sam.id}/ledger.csv")
    assert csv_r.status_code == 200 and "Direct client contact" in csv_r.text
    assert client_for(app, "dr_cole").get(f"/hours/{practice.sam.id}/ledger.csv").status_code == 404
    assert "My licensure hours" in sam.get("/").text


def test_an_amendment_over_http_keeps_the_original(app: FastAPI, runtime: Runtime, practice: Practice, wav: bytes) -> None:
    encounter = ready(runtime, practice.dr_ada, practice.maya.id, wav)
    original = sign(runtime, practice.dr_ada, encounter, resolve_all(runtime, practice.dr_ada, encounter))
    web = client_for(app, "dr_ada")
    page = web.get(f"/sessions/{encounter.id}").text
    keys = re.findall(r'name="section_(\w+)"', page)
    assert keys == [s["key"] for s in original.content["sections"]]
    data = {"csrf_token": csrf(web), "password": PASSWORD, "attest": "yes",
            **{f"section_{k}": s["text"] for k, s in zip(keys, original.content["sections"], strict=True)}}
    data[f"section_{keys[0]}"] = "Corrected sentence."
    page = web.post(f"/sessions/{encounter.id}/amendment", data=data).text
    assert "amended — see version 2" in page and "Corrected sentence." in page
    r = web.post(f"/sessions/{encounter.id}/addendum", data={"csrf_token": csrf(web), "password": "wrong",
                                                            "attest": "yes", "text": "More."})
    assert r.status_code == 403
