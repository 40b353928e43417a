"""Notes out: the PDF (read back with pdftotext and checked element by element), the FHIR
document (validated by fhir.resources), the push to the practice's EHR through the egress
gateway (allow-listed and ledgered), the hours ledger as PDF; and never an unsigned draft."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import col, select
from starlette.templating import Jinja2Templates

from scribe.app import create_app
from scribe.config import ROOT, Settings
from scribe.db.engine import session_scope
from scribe.db.tables import Client, Clinic, EgressEvent, Encounter, NoteVersion, User
from scribe.domain.egress import PART2_NOTICE
from scribe.domain.errors import Conflict
from scribe.domain.notes import VersionKind
from scribe.engines.protocols import Engines
from scribe.policies import load_policies
from scribe.runtime import Runtime
from scribe.services import exports, fhir, records, review
from scribe.services.exports import NoteExport
from scribe.web.pdf import render_pdf
from tests.conftest import PASSWORD, Clock, Fakes, Practice
from tests.helpers import TRANSCRIPT, confirm, run_pipeline, upload
from tests.services.test_review import resolve_all, sign, view
from tests.services.test_supervision import cosign, signed_by_sam
from tests.web.test_web import client_for, csrf

DRAFT_ONLY = "The client adopted a parrot named Zqcaptainx."


def pdf_text(pdf: bytes, tmp_path: Path) -> str:
    assert pdf.startswith(b"%PDF-")
    path = tmp_path / "note.pdf"
    path.write_bytes(pdf)
    out = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True)
    return " ".join(out.stdout.split())


def practice_header(runtime: Runtime) -> None:
    with session_scope(runtime.engine) as s:
        clinic = s.exec(select(Clinic).where(Clinic.name == "Fairview Test Practice")).one()
        clinic.address, clinic.phone, clinic.npi = "12 Harbor Lane, Springfield", "555-010-0000", "1234567893"
        s.add(clinic)
        client = s.get_one(Client, 1)
        client.diagnoses = [{"code": "F41.1", "description": "Generalized anxiety disorder"}]
        s.add(client)


def amended_note(runtime: Runtime, practice: Practice, wav: bytes, clock: Clock) -> Encounter:
    """A signed note with an amendment and an addendum, each with its own signature."""
    encounter = upload(runtime, practice.dr_ada, practice.maya.id, wav, transcript=TRANSCRIPT)
    run_pipeline(runtime)
    sign(runtime, practice.dr_ada, encounter, resolve_all(runtime, practice.dr_ada, encounter))
    kw: dict[str, Any]
    for kind, kw in ((VersionKind.AMENDMENT, {"texts": {"subjective": "Client reports about seven hours of sleep."}}),
                     (VersionKind.ADDENDUM, {"addendum": "Client called the next day to confirm Tuesday."})):
        clock.advance(minutes=10)
        with session_scope(runtime.engine) as s:
            records.correct(s, runtime.audit_key, runtime.policies, actor=practice.dr_ada, encounter_id=encounter.id or 0,
                            kind=kind, password=PASSWORD, attested=True, now=runtime.clock(), **kw)
    return encounter


def export(runtime: Runtime, actor: User, encounter: Encounter, fmt: str) -> NoteExport:
    with session_scope(runtime.engine) as s:
        return exports.prepare_export(s, runtime.audit_key, runtime.policies, actor=actor, encounter_id=encounter.id or 0,
                                      password=PASSWORD, now=runtime.clock(), fmt=fmt)


@pytest.fixture
def templates(settings: Settings) -> Jinja2Templates:
    from scribe.web.templating import make_templates

    return make_templates(settings.web_dir / "templates")


def test_the_pdf_of_a_signed_note_carries_every_element(
    runtime: Runtime, practice: Practice, wav: bytes, templates: Jinja2Templates, tmp_path: Path, clock: Clock
) -> None:
    practice_header(runtime)
    encounter = amended_note(runtime, practice, wav, clock)
    x = export(runtime, practice.dr_ada, encounter, "pdf")
    text = pdf_text(render_pdf(templates, "export/note.html", {"x": x}), tmp_path)
    with session_scope(runtime.engine) as s:
        versions = s.exec(select(NoteVersion).order_by(col(NoteVersion.version))).all()
    expected = ["Fairview Test Practice", "12 Harbor Lane, Springfield", "555-010-0000", "NPI 1234567893",
                "Maya Thompson", "1991-03-14", practice.maya.mrn, "Progress note (SOAP)",
                "Date and time of service", "45 minutes", "90834", "Psychotherapy, 45 minutes", "Place of service 11",
                "F41.1 Generalized anxiety disorder", "Client reports about seven hours of sleep.",
                "Client called the next day to confirm Tuesday.", "amended, see version 2",
                "Version 1 · original", "Version 2 · amendment", "Version 3 · addendum",
                practice.dr_ada.full_name, "LCSW", practice.dr_ada.licence_number,
                versions[0].signed_at.strftime("%Y-%m-%d %H:%M:%S UTC"), "Meaning: Author", "Page 1 of"]
    expected += [v.content_sha256 for v in versions]  # each version's own signature hash
    missing = [e for e in expected if e not in text]
    assert missing == [], missing
    assert PART2_NOTICE not in text


def test_the_pdf_carries_the_cosignature_and_the_part2_notice(
    runtime: Runtime, practice: Practice, wav: bytes, templates: Jinja2Templates, tmp_path: Path
) -> None:
    encounter, version = signed_by_sam(runtime, practice, wav)
    with session_scope(runtime.engine) as s:
        e = s.get_one(Encounter, encounter.id)
        e.part2 = True  # as if tagged at upload (the tag itself is covered elsewhere)
        s.add(e)
    with pytest.raises(Conflict, match="not a record yet"):  # awaiting co-signature: no PDF
        export(runtime, practice.sam, encounter, "pdf")
    cosign(runtime, practice.dr_ben, version.id)
    text = pdf_text(render_pdf(templates, "export/note.html", {"x": export(runtime, practice.sam, encounter, "pdf")}),
                    tmp_path)
    assert "Co-signed by" in text and practice.dr_ben.full_name in text and practice.dr_ben.licence_number in text
    assert PART2_NOTICE in text and "No consent to disclose Part 2 records is in force" in text


def test_no_export_carries_an_unsigned_draft(
    runtime: Runtime, practice: Practice, wav: bytes, fakes: Fakes, templates: Jinja2Templates, tmp_path: Path
) -> None:
    fakes.drafter.extra_sentence = DRAFT_ONLY
    encounter = upload(runtime, practice.dr_ada, practice.maya.id, wav, transcript=TRANSCRIPT)
    run_pipeline(runtime)
    for fmt in exports.FORMATS:  # unsigned: nothing exports in any format
        with pytest.raises(Conflict, match="not a record yet"):
            export(runtime, practice.dr_ada, encounter, fmt)
    v = view(runtime, practice.dr_ada, encounter)
    lock = resolve_all(runtime, practice.dr_ada, encounter)
    section = next(x for x in view(runtime, practice.dr_ada, encounter).sections if DRAFT_ONLY in x.text)
    with session_scope(runtime.engine) as s:  # the clinician takes the invented sentence out before signing
        lock = review.save_section(s, runtime.audit_key, medicines=runtime.policies.pipeline.medicines,
                                   actor=practice.dr_ada, encounter_id=encounter.id or 0,
                                   section_key=section.key, text=section.text.replace(DRAFT_ONLY, ""),
                                   lock_version=lock, now=runtime.clock()).lock_version
    sign(runtime, practice.dr_ada, encounter, lock)
    assert v.draft is not None
    x = export(runtime, practice.dr_ada, encounter, "pdf")
    outputs = [exports.render_text(x), pdf_text(render_pdf(templates, "export/note.html", {"x": x}), tmp_path),
               json.dumps(fhir.note_bundle(x, drafted_by=x.drafted_by))]
    assert all("Zqcaptainx" not in out for out in outputs)


def test_the_fhir_document_validates_and_says_who_signed_and_what_drafted(
    runtime: Runtime, practice: Practice, wav: bytes
) -> None:
    from fhir.resources.R4B.bundle import Bundle

    encounter, version = signed_by_sam(runtime, practice, wav)
    cosign(runtime, practice.dr_ben, version.id)
    x = export(runtime, practice.sam, encounter, "fhir")
    bundle = fhir.note_bundle(x, drafted_by=x.drafted_by)
    parsed = Bundle.model_validate(bundle)
    assert parsed.type == "document"
    kinds = [e["resource"]["resourceType"] for e in bundle["entry"]]
    assert kinds[0] == "Composition" and {"DocumentReference", "Provenance", "Patient", "Practitioner", "Device",
                                          "Encounter", "Organization"} <= set(kinds)
    res = {e["resource"]["resourceType"]: e["resource"] for e in bundle["entry"]}
    assert res["Patient"]["identifier"][0]["value"] == practice.priya.mrn
    assert res["Encounter"]["type"][0]["coding"][0]["code"] == "90834"
    labels = {label["code"] for label in bundle["meta"]["security"]}
    assert {"R", "PSY"} <= labels and "42CFRPart2" not in labels
    prov = res["Provenance"]
    roles = {a["type"]["coding"][0]["code"] for a in prov["agent"]}
    assert roles == {"author", "attester", "assembler", "verifier"}  # sam wrote and attested, dr_ben co-signed
    device = res["Device"]["deviceName"][0]["name"]
    assert device == x.drafted_by and device  # the model that drafted it
    assert {a["mode"] for a in res["Composition"]["attester"]} == {"legal", "professional"}
    with session_scope(runtime.engine) as s:
        e = s.get_one(Encounter, encounter.id)
        e.part2 = True
        s.add(e)
    part2 = fhir.note_bundle(export(runtime, practice.sam, encounter, "fhir"), drafted_by="m")
    labels = {label["code"] for label in part2["meta"]["security"]}
    assert {"42CFRPart2", "ETH", "NORDSCLCD"} <= labels
    assert PART2_NOTICE in json.dumps(part2)


def test_validation_refuses_a_malformed_document() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        fhir.validate({"resourceType": "Bundle", "type": "document", "entry": [{"resource": {
            "resourceType": "Composition", "status": "not-a-status"}}]})


class FakeEhr:
    """A FHIR endpoint on loopback that keeps what it receives."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                outer.bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(201)
                self.send_header("Content-Type", "application/fhir+json")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def ehr() -> Iterator[FakeEhr]:
    server = FakeEhr()
    yield server
    server.close()


@pytest.fixture
def ehr_runtime(tmp_path: Path, ehr: FakeEhr, engines: Engines, clock: Clock) -> tuple[Runtime, Practice]:
    from scribe.config import Settings
    from scribe.runtime import build_runtime
    from tests.conftest import make_practice

    policies_dir = tmp_path / "policies"
    shutil.copytree(ROOT / "policies", policies_dir)
    (policies_dir / "egress.yaml").write_text(
        "version: 4\ndestinations:\n"
        f"  - name: practice-ehr\n    url: http://127.0.0.1:{ehr.port}/fhir/Bundle\n    receives: [identified_record]\n"
        f"  - name: onprem-llm\n    url: http://127.0.0.1:{ehr.port}/v1/chat\n    receives: [redacted_text]\n")
    settings = Settings(data_dir=tmp_path / "var", engines="fake", policies_dir=policies_dir, worker_in_process=False)
    runtime = build_runtime(settings, policies=load_policies(policies_dir), engines=engines, clock=clock)
    return runtime, make_practice(runtime, clock)


def test_a_signed_note_reaches_the_ehr_only_through_the_gateway_and_the_ledger(
    ehr_runtime: tuple[Runtime, Practice], ehr: FakeEhr, wav: bytes
) -> None:
    runtime, practice = ehr_runtime
    encounter = upload(runtime, practice.dr_ada, practice.maya.id, wav, transcript=TRANSCRIPT)
    run_pipeline(runtime)
    app = create_app(runtime.settings, runtime=runtime, start_worker=False)
    web = client_for(app, "dr_ada")
    r = web.post(f"/sessions/{encounter.id}/send", data={"csrf_token": csrf(web), "destination": "practice-ehr",
                                                         "password": PASSWORD}, follow_redirects=False)
    assert r.status_code == 409 and ehr.bodies == []  # unsigned: nothing leaves
    sign(runtime, practice.dr_ada, encounter, resolve_all(runtime, practice.dr_ada, encounter))
    page = web.get(f"/sessions/{encounter.id}").text
    assert 'value="practice-ehr"' in page and 'value="onprem-llm"' not in page  # only identified-record destinations
    r = web.post(f"/sessions/{encounter.id}/send", data={"csrf_token": csrf(web), "destination": "onprem-llm",
                                                         "password": PASSWORD}, follow_redirects=False)
    assert r.status_code == 409 and ehr.bodies == []  # a redacted-text destination never takes a record
    r = web.post(f"/sessions/{encounter.id}/send", data={"csrf_token": csrf(web), "destination": "practice-ehr",
                                                         "password": PASSWORD}, follow_redirects=False)
    assert r.status_code == 303 and len(ehr.bodies) == 1
    sent = ehr.bodies[0]
    assert sent["resourceType"] == "Bundle" and "Maya" in json.dumps(sent)
    with session_scope(runtime.engine) as s:
        ledger = s.exec(select(EgressEvent)).all()
    assert [(e.destination, e.allowed) for e in ledger] == [("practice-ehr", True)]
    assert ledger[0].gateway_found >= 3  # the chart identifiers it carried: name, MRN, date of birth


def test_a_part2_note_needs_the_disclosure_consent_to_reach_the_ehr(
    ehr_runtime: tuple[Runtime, Practice], ehr: FakeEhr, wav: bytes
) -> None:
    runtime, practice = ehr_runtime
    encounter = upload(runtime, practice.dr_ada, practice.maya.id, wav, transcript=TRANSCRIPT)
    with session_scope(runtime.engine) as s:
        e = s.get_one(Encounter, encounter.id)
        e.part2 = True
        s.add(e)
    run_pipeline(runtime)
    sign(runtime, practice.dr_ada, encounter, resolve_all(runtime, practice.dr_ada, encounter))
    from scribe.engines.build import build_record_gateway
    from scribe.engines.egress import EgressRefused
    from scribe.services.egress import SqlLedger

    gateway = build_record_gateway(runtime.policies.egress, SqlLedger(runtime.engine), runtime.clock)
    with session_scope(runtime.engine) as s, pytest.raises(EgressRefused, match="Part 2"):
        exports.send_to_ehr(s, runtime.audit_key, runtime.policies, actor=practice.dr_ada, encounter_id=encounter.id or 0,
                            destination="practice-ehr", password=PASSWORD, gateway=gateway, now=runtime.clock())
    assert ehr.bodies == []
    with session_scope(runtime.engine) as s:
        refused = s.exec(select(EgressEvent)).one()
        assert not refused.allowed and "Part 2" in refused.reason


def test_the_hours_ledger_prints_for_the_licensing_board(
    app_for_hours: tuple[FastAPI, Runtime], practice: Practice, wav: bytes, tmp_path: Path
) -> None:
    app, runtime = app_for_hours
    encounter, version = signed_by_sam(runtime, practice, wav)
    cosign(runtime, practice.dr_ben, version.id)
    web = client_for(app, "dr_ben")
    r = web.get(f"/hours/{practice.sam.id}/ledger.pdf")
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
    text = pdf_text(r.content, tmp_path)
    assert practice.sam.full_name in text and "Direct client contact" in text and f"#{encounter.id}" in text
    assert practice.dr_ben.full_name in text and practice.dr_ben.licence_number in text


@pytest.fixture
def app_for_hours(settings: Settings, runtime: Runtime) -> tuple[FastAPI, Runtime]:
    return create_app(settings, runtime=runtime, start_worker=False), runtime


def test_the_browser_export_buttons_return_pdf_and_fhir(
    runtime: Runtime, practice: Practice, wav: bytes, settings: Settings, tmp_path: Path
) -> None:
    encounter = upload(runtime, practice.dr_ada, practice.maya.id, wav, transcript=TRANSCRIPT)
    run_pipeline(runtime)
    sign(runtime, practice.dr_ada, encounter, resolve_all(runtime, practice.dr_ada, encounter))
    app = create_app(settings, runtime=runtime, start_worker=False)
    web = client_for(app, "dr_ada")
    token = csrf(web)
    pdf = web.post(f"/sessions/{encounter.id}/note.pdf", data={"csrf_token": token, "password": PASSWORD})
    assert pdf.status_code == 200 and "Maya Thompson" in pdf_text(pdf.content, tmp_path)
    doc = web.post(f"/sessions/{encounter.id}/note.fhir.json", data={"csrf_token": token, "password": PASSWORD})
    assert doc.status_code == 200 and doc.headers["content-type"].startswith("application/fhir+json")
    fhir.validate(doc.json())
    wrong = web.post(f"/sessions/{encounter.id}/note.pdf", data={"csrf_token": token, "password": "not it at all"})
    assert wrong.status_code == 403  # the password again, every time
    assert isinstance(TestClient, type) and callable(confirm)
