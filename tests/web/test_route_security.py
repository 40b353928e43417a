"""S3, S15 and part of S7, generated from the app's own routes so that a new route is
checked the day it is added: every state-changing route refuses a missing or wrong CSRF
token and a cross-site Origin; no GET changes state; every page carries the security
headers; the API docs are off; error pages never echo the request."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import inspect, text
from starlette.routing import BaseRoute

from scribe.app import create_app
from scribe.config import Settings
from scribe.policies import Policies
from scribe.runtime import Runtime
from tests.conftest import Practice
from tests.helpers import TRANSCRIPT, must_search, run_pipeline, upload
from tests.web.test_web import client_for, csrf

# Log-in has no session yet, so no token: it checks the Origin instead (login CSRF).
NO_TOKEN = {"/login", "/invite"}
# Tables a read may write: its own audit row (and the head row that serialises appends),
# and the session's last-seen time.
READ_WRITES = {"audit_events", "audit_head", "login_sessions", "alembic_version"}


def methods(route: APIRoute) -> set[str]:
    return set(route.methods or ())


def api_routes(app: FastAPI) -> list[APIRoute]:
    def walk(routes: Sequence[BaseRoute]) -> Iterator[APIRoute]:
        for r in routes:
            if isinstance(r, APIRoute):
                yield r
            elif hasattr(r, "original_router"):  # an included router
                yield from walk(r.original_router.routes)
    found = list(walk(app.routes))
    assert len(found) > 40, "the route walk found too few routes: it would check nothing"
    return found


def fill(path: str, ids: dict[str, object]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: str(ids.get(m.group(1), 1)), path)


@pytest.fixture
def app(settings: Settings, runtime: Runtime) -> FastAPI:
    return create_app(settings, runtime=runtime, start_worker=False)


@pytest.fixture
def world(app: FastAPI, runtime: Runtime, practice: Practice, wav: bytes) -> dict[str, object]:
    encounter = upload(runtime, practice.dr_ada, practice.maya.id, wav, transcript=TRANSCRIPT)
    run_pipeline(runtime)
    return {"encounter_id": encounter.id, "client_id": practice.maya.id, "user_id": practice.dr_ada.id,
            "version_id": 1, "section_key": "subjective", "seq": 0, "consent_id": 1, "receipt_id": 1, "grant_id": 1}


def snapshot(runtime: Runtime) -> dict[str, str]:
    """A digest of every table's rows (but the ones a read may write)."""
    out = {}
    with runtime.engine.connect() as conn:
        for table in inspect(conn).get_table_names():
            if table in READ_WRITES:
                continue
            rows = conn.execute(text(f"SELECT * FROM {table} ORDER BY 1")).all()
            out[table] = hashlib.sha256(repr(rows).encode()).hexdigest()
    return out


def test_every_state_changing_route_is_protected(app: FastAPI) -> None:
    for route in api_routes(app):
        if methods(route) - {"GET", "HEAD"}:
            deps = {getattr(d.call, "__name__", "") for d in route.dependant.dependencies}
            assert "check_csrf" in deps or route.path in NO_TOKEN, f"{route.path} has no CSRF check"


def test_missing_wrong_token_and_cross_site_origin_are_refused_and_change_nothing(
        app: FastAPI, runtime: Runtime, world: dict[str, object]) -> None:
    web = client_for(app, "dr_ada")
    token = csrf(web)
    probes = 0
    changing = [r for r in api_routes(app) if methods(r) - {"GET", "HEAD"}]
    for route in changing:
        for method in methods(route) - {"GET", "HEAD"}:
            url = fill(route.path, world)
            before = snapshot(runtime)
            attempts = [
                ({}, {}),
                ({"csrf_token": "forged"}, {}),
                ({"csrf_token": "forgé ¹²³"}, {}),  # non-ASCII: a 403, not a 500
                ({"csrf_token": token}, {"origin": "https://evil.example"}),
                ({}, {"x-csrf-token": token, "origin": "https://evil.example"}),
            ]
            if route.path in NO_TOKEN:
                attempts = [({"username": "dr_ada", "password": "x"}, {"origin": "https://evil.example"})]
            for data, headers in attempts:
                r = web.request(method, url, data=data, headers=headers, follow_redirects=False)
                assert r.status_code == 403, f"{method} {url} {headers} -> {r.status_code}"
                probes += 1
            assert snapshot(runtime) == before, f"{method} {url} changed state while refused"
    print(f"CSRF: {probes} forged or cross-site requests on {len(changing)} state-changing routes, all refused")
    assert probes >= 5 * 20


def test_no_get_route_changes_state(app: FastAPI, runtime: Runtime, world: dict[str, object],
                                    practice: Practice) -> None:
    for username in ("dr_ada", "dr_ben", "root"):
        web = client_for(app, username)
        for route in api_routes(app):
            if "GET" not in methods(route):
                continue
            before = snapshot(runtime)
            r = web.get(fill(route.path, world), follow_redirects=False)
            assert r.status_code < 500, route.path
            assert snapshot(runtime) == before, f"GET {route.path} as {username} changed state"


def test_every_page_carries_the_security_headers(app: FastAPI, world: dict[str, object]) -> None:
    web = client_for(app, "dr_ada")
    for route in api_routes(app):
        if "GET" not in methods(route):
            continue
        r = web.get(fill(route.path, world), follow_redirects=False)
        csp = r.headers.get("content-security-policy", "")
        script = must_search(r"script-src ([^;]*)", csp).group(1)
        assert "unsafe-inline" not in script and "unsafe-eval" not in script, route.path
        assert "frame-ancestors 'none'" in csp and r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["referrer-policy"] and r.headers["cache-control"] == "no-store", route.path


def test_hsts_behind_tls_and_no_inline_script_in_pages(tmp_path: Path, policies: Policies) -> None:
    settings = Settings(data_dir=tmp_path / "var", engines="fake", worker_in_process=False, secure_cookies=True)
    app = create_app(settings, policies=policies, start_worker=False)
    r = TestClient(app, base_url="https://testserver").get("/login")
    assert "max-age=" in r.headers["strict-transport-security"]
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", r.text)  # every script is a file
    assert not re.search(r"<[^>]+\son[a-z]+\s*=", r.text)  # and no inline event handlers


def test_api_docs_are_off(app: FastAPI) -> None:
    web = TestClient(app)
    for path in ("/docs", "/redoc", "/openapi.json"):
        assert web.get(path).status_code == 404


def test_validation_errors_never_echo_the_request(app: FastAPI, world: dict[str, object]) -> None:
    web = client_for(app, "dr_ada")
    canary = "zqcanary-clinical-text-9931"
    r = web.post(f"/sessions/{world['encounter_id']}/sections/subjective",
                 data={"csrf_token": csrf(web), "text": canary})  # lock_version missing
    assert r.status_code == 422 and canary not in r.text and "lock_version" in r.text
    r = web.post(f"/sessions/{world['encounter_id']}/sections/subjective",
                 data={"csrf_token": csrf(web), "text": canary, "lock_version": "not a number " + canary})
    assert r.status_code == 422 and canary not in r.text


# Routes open to any logged-in account (their own data) or to no one logged in.
NO_PERMISSION = {"/login", "/invite", "/logout", "/session/keepalive", "/account/mfa", "/account/mfa/start", "/account/password",
                 "/account/voice", "/account/voice/remove", "/", "/healthz"}


def test_every_route_names_one_permission_from_the_roles_policy(app: FastAPI, policies: Policies) -> None:
    from scribe.domain.permissions import CLINICAL

    for route in api_routes(app):
        named = [getattr(d.call, "permission", None) for d in route.dependant.dependencies]
        named = [p for p in named if p]
        if route.path in NO_PERMISSION:
            assert named == [], route.path
        else:
            assert len(named) == 1, f"{route.path} names {named}"
    assert not set(policies.roles.roles["admin"].can) & CLINICAL


def test_a_role_without_the_permission_is_refused_before_any_object_check(app: FastAPI, practice: Practice) -> None:
    admin = client_for(app, "root")
    for path in ("/sessions/new", "/supervision", "/break-glass", f"/clients/{practice.maya.id}/consents"):
        assert admin.get(path, follow_redirects=False).status_code == 403, path
    clinician = client_for(app, "dr_ada")
    for path in ("/admin", "/admin/audit", "/admin/egress", "/supervision"):
        assert clinician.get(path, follow_redirects=False).status_code == 403, path
