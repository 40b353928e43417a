"""S7: canary clinical text seeded into a session never reaches the logs (any logger, any
level), an error page (422, 409, 500), a job's error column or the temp folders."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import pytest
from fastapi import FastAPI
from sqlmodel import select

from scribe.app import create_app
from scribe.config import Settings
from scribe.db.engine import session_scope
from scribe.db.tables import Job
from scribe.runtime import Runtime
from scribe.services import review
from tests.conftest import Practice
from tests.helpers import TRANSCRIPT, must_search, run_pipeline
from tests.web.test_web import client_for, csrf, upload_via_form

CANARY = "zqcanary lorazepam overdose on the fourth"


@pytest.fixture
def app(settings: Settings, runtime: Runtime) -> FastAPI:
    return create_app(settings, runtime=runtime, start_worker=False)


def test_no_clinical_text_in_logs_error_pages_jobs_or_temp_files(
    app: FastAPI,
    runtime: Runtime,
    practice: Practice,
    wav: bytes,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.DEBUG)
    system_tmp = set(Path(tempfile.gettempdir()).glob("*"))
    web = client_for(app, "dr_ada", raise_server_exceptions=False)
    encounter_id = upload_via_form(web, runtime, practice.maya.id, wav)
    sidecar = sorted(runtime.settings.recordings_dir.glob("*.wav.txt"))[-1]
    sidecar.write_text(TRANSCRIPT + f"\nCLIENT: {CANARY}.")
    run_pipeline(runtime)
    page = web.get(f"/sessions/{encounter_id}").text
    assert "zqcanary" in page  # the clinician does see it
    bodies = []
    token = csrf(web)
    # 422: a malformed form carrying clinical text
    bodies.append(web.post(f"/sessions/{encounter_id}/sections/subjective", data={"csrf_token": token, "text": CANARY}))
    # 409: a stale save carrying clinical text
    bodies.append(web.post(f"/sessions/{encounter_id}/sections/subjective",
                           data={"csrf_token": token, "text": CANARY, "lock_version": "999"}))
    # 500: an exception whose message carries clinical text
    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError(f"failed while handling {CANARY}")

    monkeypatch.setattr(review, "save_section", boom)
    lock = must_search(r'name="lock_version" value="(\d+)"', page).group(1)
    strict = client_for(app, "dr_ada")  # raises if the exception travels on to the server (which would log it)
    bodies.append(strict.post(f"/sessions/{encounter_id}/sections/subjective",
                              data={"csrf_token": csrf(strict), "text": CANARY, "lock_version": lock}))
    assert "content-security-policy" in bodies[-1].headers  # the 500 page gets the headers too
    assert [r.status_code for r in bodies] == [422, 409, 500]
    for r in bodies:
        assert "zqcanary" not in r.text and "lorazepam" not in r.text
    logged = "\n".join(f"{r.name} {r.levelname} {r.getMessage()} {r.exc_text or ''}" for r in caplog.records)
    assert caplog.records and "zqcanary" not in logged and "lorazepam" not in logged
    with session_scope(runtime.engine) as s:
        assert all("zqcanary" not in (j.error or "") for j in s.exec(select(Job)))
    spool = runtime.settings.data_dir / "tmp"
    for path in [p for p in spool.rglob("*") if p.is_file()] + [
        p for p in set(Path(tempfile.gettempdir()).glob("*")) - system_tmp if p.is_file()
    ]:
        assert b"zqcanary" not in path.read_bytes(), path
