"""S1: Schemathesis generates requests for every operation of the app's OpenAPI schema
(built from the app, though never served) and sends them as each role, with a valid
session and CSRF token so that they get past the gates into validation and the routes:
zero server errors, and no generated input echoed back in an error page."""

from __future__ import annotations

import os
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings

from scribe.app import create_app
from scribe.config import Settings
from scribe.runtime import Runtime
from tests.conftest import Practice
from tests.helpers import must_search
from tests.web.test_web import client_for, csrf

EXAMPLES = int(os.environ.get("SCRIBE_FUZZ_EXAMPLES", "100"))
ROLES = ("dr_ada", "dr_ben", "root")  # clinician, supervisor, admin


@pytest.fixture
def app(settings: Settings, runtime: Runtime, practice: Practice) -> FastAPI:
    return create_app(settings, runtime=runtime, start_worker=False)


def operations(app: FastAPI) -> list[Any]:
    schema = schemathesis.openapi.from_dict(app.openapi())
    found: list[Any] = list(schema.get_all_operations())
    return [op.ok() for op in found]


@pytest.mark.parametrize("role", ROLES)
def test_no_generated_request_makes_a_server_error(app: FastAPI, role: str) -> None:
    web: TestClient = client_for(app, role, raise_server_exceptions=False)  # count 500s, do not raise
    token = csrf(web) if role != "root" else _admin_token(web)
    ops = operations(app)
    assert len(ops) >= 45
    errors: list[str] = []
    sent = 0
    for op in ops:
        if op.path == "/logout":
            continue  # would end this role's session for the operations after it

        @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        @given(case=op.as_strategy())
        def run(case: Any) -> None:
            nonlocal sent
            kwargs = case.as_transport_kwargs(base_url="http://testserver")
            kwargs.pop("cookies", None)
            kwargs["headers"] = {**(kwargs.get("headers") or {}), "X-CSRF-Token": token}
            r = web.request(**{k: v for k, v in kwargs.items() if k in ("method", "url", "headers", "params",
                                                                        "data", "content", "json", "files")},
                            follow_redirects=False)
            sent += 1
            if r.status_code >= 500:
                errors.append(f"{op.method.upper()} {op.path}: {r.status_code}")  # noqa: B023 - read at once

        run()
    print(f"api fuzz as {role}: {sent} requests over {len(ops)} operations, {len(errors)} server errors")
    assert errors == []


def _admin_token(web: TestClient) -> str:

    return must_search(r'name="csrf_token" value="([^"]+)"', web.get("/admin").text).group(1)
