"""Consent, switches and the admin screen over HTTP: the controls a user sees follow the
switches and the ledger, the API refuses the same, and admin pages carry no clinical text."""

from __future__ import annotations

import pytest
from fastapi import FastAPI

from scribe.app import create_app
from scribe.config import Settings
from scribe.runtime import Runtime
from tests.conftest import Practice
from tests.helpers import TRANSCRIPT, must_search, run_pipeline, upload
from tests.web.test_web import client_for, csrf


@pytest.fixture
def app(settings: Settings, runtime: Runtime) -> FastAPI:
    return create_app(settings, runtime=runtime, start_worker=False)


def test_switching_a_clinician_off_removes_the_controls_and_the_api_refuses(
    app: FastAPI, runtime: Runtime, practice: Practice, wav: bytes
) -> None:
    ada, root = client_for(app, "dr_ada"), client_for(app, "root")
    page = ada.get("/sessions/new").text
    assert 'id="recorder"' in page and 'action="/sessions"' in page
    r = root.post("/admin/switches", data={"csrf_token": csrf(root), "scope": "clinician",
                                           "target_id": practice.dr_ada.id, "enabled": "off"}, follow_redirects=False)
    assert r.status_code == 303
    page = ada.get("/sessions/new").text
    assert 'id="recorder"' not in page and 'action="/sessions"' not in page
    assert "switched off for this clinician" in page
    r = ada.post("/sessions", data={"csrf_token": csrf(ada), "client_id": practice.maya.id, "note_type": "soap"},
                 files={"audio": ("s.wav", wav, "audio/wav")})
    assert r.status_code == 403 and "switched off" in r.text
    r = ada.post("/recordings", data={"csrf_token": csrf(ada), "client_id": practice.maya.id, "note_type": "soap"})
    assert r.status_code == 403
    assert 'id="recorder"' in client_for(app, "dr_cole").get("/sessions/new").text  # others unaffected


def test_a_client_without_consent_is_shown_with_the_reason_and_refused(
    app: FastAPI, runtime: Runtime, practice: Practice, wav: bytes
) -> None:
    ada = client_for(app, "dr_ada")
    r = ada.post(f"/clients/{practice.maya.id}/consents/withdraw", data={"csrf_token": csrf(ada), "function": "transcribe"},
                 follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/receipts/")
    receipt = ada.get(r.headers["location"]).text
    assert "consent withdrawn: transcribe" in receipt and "Receipt SHA-256" in receipt
    page = ada.get("/sessions/new").text
    assert "not available: step &#39;record&#39;: consent not in force for transcribe" in page
    assert "No client has the consents in force" in page  # Maya was dr_ada's only client
    r = ada.post("/sessions", data={"csrf_token": csrf(ada), "client_id": practice.maya.id, "note_type": "soap"},
                 files={"audio": ("s.wav", wav, "audio/wav")})
    assert r.status_code == 403 and "transcribe" in r.text
    ledger = ada.get(f"/clients/{practice.maya.id}/consents").text
    assert "withdrawn" in ledger and "Deletion receipts" in ledger
    assert client_for(app, "dr_cole").get(f"/clients/{practice.maya.id}/consents").status_code == 404


def test_admin_pages_carry_no_clinical_content(app: FastAPI, runtime: Runtime, practice: Practice, wav: bytes) -> None:
    upload(runtime, practice.dr_ada, practice.maya.id, wav, transcript=TRANSCRIPT)
    run_pipeline(runtime)
    root = client_for(app, "root")
    page = root.get("/admin").text
    assert "Transcription switches" in page and "Consent status" in page and "Maya Thompson" in page
    for canary in ("Riverside", "breathing", "anxious", "seven hours", "The client said"):
        assert canary not in page
    assert root.get(f"/sessions/{1}").status_code == 403  # the admin role has no clinical permission
    assert root.get(f"/clients/{practice.maya.id}/consents").status_code == 403
    assert client_for(app, "dr_ada").get("/admin").status_code == 403


def test_a_recording_left_open_by_a_closed_tab_can_be_finished_later(app: FastAPI, runtime: Runtime, practice: Practice) -> None:
    from tests.conftest import wav_bytes

    ada = client_for(app, "dr_ada")
    token = csrf(ada)
    r = ada.post("/recordings", data={"csrf_token": token, "client_id": practice.maya.id, "note_type": "soap"})
    assert r.status_code == 201
    sid = r.json()["session_id"]
    data = wav_bytes(seconds=2)
    r = ada.post(f"/recordings/{sid}/chunks/0", content=data, headers={"X-CSRF-Token": token})
    assert r.status_code == 200 and r.json()["bytes"] == len(data)
    assert ada.post(f"/recordings/{sid}/chunks/1", content=b"x").status_code == 403  # no CSRF token
    page = ada.get(f"/sessions/{sid}").text  # the tab closed; the clinician comes back
    assert "Finish with what was saved" in page and "Status:</strong> recording" in page
    r = ada.post(f"/recordings/{sid}/finish", data={"csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303
    assert "Status:</strong> uploaded" in ada.get(f"/sessions/{sid}").text
    big = ada.post(f"/recordings/{sid}/chunks/5", content=b"0" * (5 << 20), headers={"X-CSRF-Token": token})
    assert big.status_code in (400, 413)


def test_a_scanned_form_is_kept_and_shown_only_to_the_clients_clinician(
    app: FastAPI, runtime: Runtime, practice: Practice
) -> None:

    from scribe.db.engine import session_scope
    from scribe.db.tables import Client

    with session_scope(runtime.engine) as s:
        client = s.get(Client, practice.maya.id)
        assert client is not None
        client.guardians = [{"name": "Ann Lee", "relation": "mother", "authority": "parent of a minor"}]
        s.add(client)
    ada = client_for(app, "dr_ada")
    r = ada.post(f"/clients/{practice.maya.id}/consents",
                 data={"csrf_token": csrf(ada), "functions": ["egress"], "effective_from": "2026-11-01",
                       "guardian": "0"},
                 files={"scan": ("form.pdf", b"%PDF-1.4 signed", "application/pdf")})
    assert r.status_code == 200 and "Ann Lee (mother; parent of a minor)" in r.text
    link = must_search(r'href="(/clients/\d+/consents/\d+/form)"', r.text).group(1)
    got = ada.get(link)
    assert got.status_code == 200 and got.content == b"%PDF-1.4 signed" and got.headers["content-type"] == "application/pdf"
    assert client_for(app, "dr_cole").get(link).status_code == 404
    assert client_for(app, "root").get(link).status_code == 403  # no clinical permission, whatever the id
    bad = ada.post(f"/clients/{practice.maya.id}/consents", data={"csrf_token": csrf(ada), "functions": ["egress"],
                                                                  "effective_from": "yesterday"})
    assert bad.status_code == 400 and "YYYY-MM-DD" in bad.text


def test_admins_read_and_export_the_egress_ledger(app: FastAPI, runtime: Runtime, practice: Practice) -> None:
    from datetime import UTC, datetime

    from scribe.domain.egress import EgressRecord
    from scribe.services.egress import SqlLedger

    SqlLedger(runtime.engine)(EgressRecord(datetime(2026, 11, 2, tzinfo=UTC), "onprem-llm", "10.0.0.20", "ab" * 32, 900,
                                           12, 0, 1, True, "'onprem-llm' may receive redacted_text"))
    root = client_for(app, "root")
    page = root.get("/admin/egress").text
    assert "onprem-llm" in page and "None: nothing leaves this host." in page
    csv_r = root.get("/admin/egress.csv")
    assert csv_r.status_code == 200 and csv_r.text.splitlines()[1].startswith("2026-11-02T00:00:00Z,onprem-llm,10.0.0.20,yes")
    assert client_for(app, "dr_ada").get("/admin/egress").status_code == 403
    from sqlalchemy import text
    from sqlalchemy.exc import DatabaseError

    with pytest.raises(DatabaseError, match="append-only"), runtime.engine.begin() as conn:
        conn.execute(text("UPDATE egress_events SET allowed = 0"))
