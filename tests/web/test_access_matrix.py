"""S2 and property 4: the object-level access matrix, generated from the app's routes x
eight actor classes x every object of each route's type (plus ids that do not exist).
Expected outcomes come from the declarative table below, not from the code under test:
zero unexpected successes, and no foreign canary in any refused body. A route with an id
that the table does not know fails the test, so the table cannot drift from the app."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlmodel import col, select

from scribe.app import create_app
from scribe.config import Settings
from scribe.db.engine import session_scope
from scribe.db.tables import Consent, DeletionReceipt, Note, NoteVersion, User
from scribe.runtime import Runtime
from scribe.services import breakglass
from tests.conftest import PASSWORD, Clock, Practice
from tests.helpers import TRANSCRIPT, run_pipeline, upload
from tests.services.test_review import resolve_all, sign
from tests.services.test_supervision import meeting
from tests.web.access_table import RULES, allowed
from tests.web.test_route_security import api_routes, methods
from tests.web.test_web import client_for, csrf

ACTORS = ("dr_ada", "dr_cole", "dr_ben", "sam", "eve", "root", "ivy", "anonymous", "pending_mfa")


@dataclass
class Obj:
    kind: str  # encounter | client | version | user | consent | receipt | grant
    id: int
    owner: str  # the persona whose caseload it is
    canaries: tuple[str, ...]
    meeting_participants: tuple[str, ...] = ()
    ids: dict[str, int] | None = None  # for routes with two ids (a client's consent)


@pytest.fixture
def app(settings: Settings, runtime: Runtime) -> FastAPI:
    return create_app(settings, runtime=runtime, start_worker=False)


def build_world(runtime: Runtime, practice: Practice, clock: Clock) -> list[Obj]:
    objs: list[Obj] = []
    people = {"dr_ada": (practice.dr_ada, practice.maya), "dr_cole": (practice.dr_cole, practice.jonah),
              "sam": (practice.sam, practice.priya), "eve": (practice.eve, practice.other)}
    for name, (clinician, client) in people.items():
        for n in range(2):
            word = f"zq{name.replace('_', '')}{n}canary"
            e = upload(runtime, clinician, client.id, wav_bytes_for(n), transcript=TRANSCRIPT + f"\nCLIENT: {word}.")
            run_pipeline(runtime)
            if n == 0:
                sign(runtime, clinician, e, resolve_all(runtime, clinician, e))
            objs.append(Obj("encounter", e.id or 0, name, (word,)))
        objs.append(Obj("client", client.id or 0, name, (client.family_name,)))
    m = meeting(runtime, practice.dr_ben, [practice.sam])
    objs.append(Obj("encounter", m.id or 0, "dr_ben", ("caseload this week",), ("sam",)))
    with session_scope(runtime.engine) as s:
        for v, note in s.exec(select(NoteVersion, Note).join(Note, col(Note.id) == NoteVersion.note_id)).all():
            owner = next(o.owner for o in objs if o.kind == "encounter" and o.id == note.encounter_id)
            objs.append(Obj("version", v.id or 0, owner, ()))
        for name in ("dr_ada", "dr_cole", "sam", "eve", "dr_ben"):
            objs.append(Obj("user", getattr(practice, name).id or 0, name, ()))
        for name, (_, client) in people.items():
            consent = s.exec(select(Consent).where(Consent.client_id == client.id)).first()
            assert consent is not None
            objs.append(Obj("consent", consent.id or 0, name, (),
                            ids={"client_id": client.id or 0, "consent_id": consent.id or 0}))
            receipt = DeletionReceipt(client_id=client.id, rule="test", at=clock(), items=[], receipt_sha256="0" * 64)
            s.add(receipt)
            s.flush()
            objs.append(Obj("receipt", receipt.id or 0, name, ()))
    with session_scope(runtime.engine) as s:  # an emergency grant: dr_cole's, for dr_ada's client
        g = breakglass.request_grant(s, runtime.audit_key, runtime.policies.security, actor=practice.dr_cole,
                                     mrn=practice.maya.mrn, reason="client in crisis, treating clinician away",
                                     minutes=30, now=clock())
        objs.append(Obj("grant", g.id or 0, "dr_cole", ()))
    return objs


def audit_rows(runtime: Runtime) -> int:
    with runtime.engine.connect() as conn:
        return int(conn.exec_driver_sql("SELECT COUNT(*) FROM audit_events").scalar_one())


def wav_bytes_for(n: int) -> bytes:
    from tests.conftest import wav_bytes

    return wav_bytes(seconds=2 + n)


def clients(app: FastAPI, runtime: Runtime, practice: Practice) -> dict[str, TestClient]:
    out = {name: client_for(app, name) for name in ("dr_ada", "dr_cole", "dr_ben", "sam", "eve", "root", "ivy")}
    out["anonymous"] = TestClient(app)
    with session_scope(runtime.engine) as s:  # a new account that has not set up its second factor
        user = s.get(User, practice.dr_cole.id)
        from scribe.services.accounts import accept_invitation, create_user

        invited = create_user(s, runtime.audit_key, runtime.policies.security, actor=s.get_one(User, practice.root.id),
                              username="pending_mfa", full_name="New Hire", role="clinician", now=runtime.clock())
        accept_invitation(s, runtime.audit_key, runtime.policies.security, token=invited.link_token,
                          password="lantern orchard copper violin", now=runtime.clock())
        assert user is not None
    pending = TestClient(app)
    assert pending.post("/login", data={"username": "pending_mfa", "password": "lantern orchard copper violin"},
                        follow_redirects=False).headers["location"] == "/account/mfa"
    out["pending_mfa"] = pending
    return out


def form_for(route: APIRoute, token: str) -> dict[str, str]:
    """A plausible, complete form, so that the route body (and its access check) runs."""
    values = {"password": PASSWORD, "attest": "yes", "text": "edited text", "lock_version": "1", "comment": "revise",
              "function": "transcribe", "functions": "transcribe", "action": "disable", "note": "ok", "hold": "on",
              "reason": "a long enough reason for the test", "effective_from": "2026-11-01", "sentence_id": "1",
              "resolution": "confirmed", "kind": "addendum", "back": "session", "csrf_token": token}
    fields = {f.alias for f in route.dependant.body_params}
    return {k: values.get(k, "1") for k in fields} | {"csrf_token": token}


def test_the_access_matrix_has_no_unexpected_success_and_no_foreign_content(
    app: FastAPI, runtime: Runtime, practice: Practice, clock: Clock
) -> None:
    objs = build_world(runtime, practice, clock)
    webs = clients(app, runtime, practice)
    tokens = {name: (csrf(web) if name not in ("anonymous", "pending_mfa") else "x") for name, web in webs.items()}
    routes = [r for r in api_routes(app) if re.search(r"\{\w+\}", r.path)]
    unknown = [r.path for r in routes if r.path not in RULES]
    assert not unknown, f"add these routes to the access table: {unknown}"
    probes, leaks, unexpected, unaudited = 0, [], [], []
    # GETs first (they change nothing), then POSTs, which are sent only where the table
    # says no, so that no allowed change alters the world mid-matrix.
    for want_method in ("GET", "POST"):
        for route in routes:
            if want_method not in methods(route):
                continue
            kind, _ = RULES[route.path]
            targets = [o for o in objs if o.kind == kind] + [Obj(kind, 999_999, "nobody", ())]
            for actor in ACTORS:
                for obj in targets:
                    ok = allowed(route.path, actor, obj)
                    if want_method == "POST" and ok:
                        continue
                    url = re.sub(r"\{(\w+)\}", lambda m: str((obj.ids or {}).get(m.group(1), obj.id))  # noqa: B023 - called at once
                                 if m.group(1).endswith("_id") else
                                 {"section_key": "subjective", "seq": "0"}.get(m.group(1), "1"), route.path)
                    web = webs[actor]
                    if want_method == "GET":
                        before = audit_rows(runtime)
                        r = web.get(url, follow_redirects=False)
                        if ok and r.status_code == 200 and audit_rows(runtime) == before:
                            unaudited.append(f"{actor} GET {url}")
                    elif "/chunks/" in route.path:  # raw bytes, the token in the header (as the recorder sends)
                        r = web.post(url, content=b"RIFF-chunk", headers={"X-CSRF-Token": tokens[actor]},
                                     follow_redirects=False)
                    else:
                        r = web.post(url, data=form_for(route, tokens[actor]), follow_redirects=False)
                    probes += 1
                    success = r.status_code < 300 or (r.status_code == 303 and not
                                                      r.headers["location"].startswith(("/login", "/account/mfa")))
                    if ok and want_method == "GET":
                        if r.status_code >= 500 or (r.status_code != 200 and kind in ("encounter", "client")
                                                    and route.path.count("/") == 2):
                            unexpected.append(f"{actor} GET {url}: {r.status_code} but allowed")
                        continue
                    if success:
                        unexpected.append(f"{actor} {want_method} {url}: {r.status_code}")
                    body = r.text
                    for canary in obj.canaries:
                        if canary in body:
                            leaks.append(f"{actor} {want_method} {url}: '{canary}'")
    print(f"access matrix: {probes} probes, {len(unexpected)} unexpected, {len(leaks)} leaks, "
          f"{len(unaudited)} unaudited reads")
    assert probes >= 1000
    assert unaudited == []  # S8: every read of a record is in the audit log
    assert unexpected == []
    assert leaks == []
