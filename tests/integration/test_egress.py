"""Nothing identifiable leaves the host. 500+ synthetic identifiers of the HIPAA Safe Harbor
classes, written and spoken, are seeded into charts and transcripts; the whole pipeline runs
(the real redactor, the remote drafter through the egress gateway) against a fake model
server on loopback, while a socket-level hook fails the test on any other connection."""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import sys
import threading
from collections.abc import Iterator
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
from sqlmodel import select

from scribe.config import ROOT, Settings
from scribe.db.engine import session_scope
from scribe.db.tables import Client, EgressEvent, Encounter
from scribe.domain.egress import EgressRecord, looks_like_audio
from scribe.domain.notes import EncounterStatus
from scribe.domain.spoken import speak_digits, speak_email
from scribe.engines.build import build_redactor, build_remote_drafter
from scribe.engines.egress import EgressRefused
from scribe.engines.fakes import FakeTranscriber
from scribe.engines.protocols import Engines
from scribe.policies import load_policies
from scribe.runtime import Runtime, build_runtime
from scribe.services.egress import SqlLedger
from tests.conftest import Clock, Practice, make_practice, wav_bytes
from tests.helpers import reload, run_pipeline, upload

REDACTION = load_policies(ROOT / "policies").redaction

pytestmark = pytest.mark.slow

FIRST = ["Avery", "Jordan", "Rosalind", "Desmond", "Imogen", "Thaddeus", "Marisol", "Percival", "Yolanda", "Cornelius",
         "Henrietta", "Lucian", "Octavia", "Bartholomew", "Genevieve", "Ignatius", "Philippa", "Leopold", "Wilhelmina",
         "Rupert", "Evangeline", "Fitzgerald", "Clementine", "Augustin", "Seraphina", "Maximilian", "Ottoline"]
LAST = ["Okonkwo", "Vandermeer", "Castellanos", "Blackwood", "Nakamura", "Featherstone", "Abernathy", "Delacroix",
        "Montgomery", "Ravensworth", "Kowalczyk", "Whitlock", "Pemberton", "Fairweather", "Lindqvist", "Szymanski",
        "Thistlewood", "Marchetti", "Oyelaran", "Hargreaves", "Quintero", "Ellsworth", "Brightman", "Vasquez-Ortega"]
STREETS = ["Alder Creek Road", "Juniper Hollow Lane", "Maple Grove Avenue", "Kingfisher Court", "Larkspur Drive",
           "Quarry Ridge Way", "Old Mill Street", "Heron Bay Boulevard"]
EMPLOYERS = ["Riverside Bakery", "Northgate Logistics", "Bluefin Analytics", "Copperleaf Dental"]
SCHOOLS = ["Westbrook High School", "Lakeview Community College"]


class FakeModelServer:
    """An OpenAI-compatible chat-completions endpoint on loopback that keeps every body."""

    def __init__(self) -> None:
        bodies: list[bytes] = []
        self.bodies = bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                bodies.append(body)
                answer = json.dumps({"choices": [{"message": {"content": "The client reviewed the week with [CLIENT]."}}],
                                     "usage": {"prompt_tokens": 100, "completion_tokens": 9}}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class OnlyLoopbackTo:
    """A socket-level hook: any connection other than to the fake server is recorded."""

    active = False
    allowed: tuple[str, int] = ("127.0.0.1", 0)
    violations: ClassVar[list[object]] = []
    installed = False

    @classmethod
    def install(cls, port: int) -> None:
        cls.allowed, cls.violations, cls.active = ("127.0.0.1", port), [], True
        if not cls.installed:
            sys.addaudithook(cls._hook)
            cls.installed = True

    @classmethod
    def _hook(cls, event: str, args: tuple[object, ...]) -> None:
        if cls.active and event == "socket.connect":
            address = args[1]
            if not (isinstance(address, tuple) and address[:2] == cls.allowed):
                cls.violations.append(address)


def _phone(rng: random.Random) -> str:
    return f"555-{rng.randint(200, 989)}-{rng.randint(1000, 9999)}"


def seeded_session(rng: random.Random, n: int) -> tuple[dict[str, object], str, list[tuple[str, str]]]:
    """A chart, a transcript, and the identifiers seeded into them (class, exact text as said)."""
    first, last = FIRST[n % len(FIRST)], LAST[(n * 7) % len(LAST)]
    sister = f"{FIRST[(n + 5) % len(FIRST)]} {last}"
    friend = FIRST[(n + 11) % len(FIRST)]
    dob = date(1950 + n, 1 + n % 12, 1 + (n * 3) % 27)
    phone, sister_phone = _phone(rng), _phone(rng)
    email = f"{first.lower()}.{last.lower()}{n}@example.org"
    mrn = f"MRN-{rng.randint(100000, 999999)}"
    street = f"{rng.randint(100, 9999)} {STREETS[n % len(STREETS)]}"
    employer, school = EMPLOYERS[n % len(EMPLOYERS)], SCHOOLS[n % len(SCHOOLS)]
    ssn = f"{rng.randint(100, 665):03d}-{rng.randint(10, 99)}-{rng.randint(1000, 9999)}"
    medicaid = f"MC{rng.randint(10000000, 99999999)}"
    plate = f"{rng.randint(1, 9)}{''.join(rng.choice('ABCDEFGHJKLMNPRSTUVWXYZ') for _ in range(3))}{rng.randint(100, 999)}"
    npi = "".join(str(rng.randint(0, 9)) for _ in range(10))
    url = f"www.{last.lower()}family{n}.com"
    ip = f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
    admitted = f"{rng.randint(1, 12)}/{rng.randint(1, 28)}/2024"
    month = ["january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
             "november", "december"][dob.month - 1]
    spoken_dob = f"{month} {dob.day} {dob.year}"
    chart = {"given_name": first, "family_name": last, "date_of_birth": dob, "mrn": mrn, "address": street,
             "phone": phone, "email": email, "employer": employer, "school": school,
             "contacts": [{"name": sister, "relation": "sister", "phone": sister_phone}]}
    lines = [
        f"CLINICIAN: Hi {first}, thanks for coming in. Can you confirm your date of birth?",
        f"CLIENT: It is {spoken_dob}, and my medical record number is {mrn}.",
        f"CLINICIAN: And you still live at {street}?",
        f"CLIENT: Yes, {street.lower()}. My phone is {speak_digits(phone)} and my email is {speak_email(email)}.",
        f"CLIENT: Work at {employer} has been hard, and my son started at {school}.",
        f"CLIENT: My sister {sister.split()[0].lower()} helps; her number is {sister_phone}.",
        f"CLIENT: My friend {friend.lower()} drove me. My social is {speak_digits(ssn)}.",
        f"CLIENT: The clinic needs my medicaid id, it is {medicaid}, and my licence plate is {plate}.",
        f"CLINICIAN: I will send it to Dr {last}, NPI {npi}, and the portal at {url}.",
        f"CLIENT: I was admitted on {admitted} and my router says {ip}, weird I know.",
        f"CLIENT: My mother {FIRST[(n + 3) % len(FIRST)]} {last} is ninety three years old now.",
        f"CLINICIAN: Thank you {first.lower()} {last.lower()}, we will meet next week.",
    ]
    seeded = [("name", first), ("name", last), ("name", f"{first.lower()} {last.lower()}"), ("dob", spoken_dob),
              ("mrn", mrn), ("address", street), ("address", street.lower()), ("phone", speak_digits(phone)),
              ("email", speak_email(email)), ("employer", employer), ("school", school),
              ("relative", sister.split()[0].lower()), ("phone", sister_phone), ("name", friend.lower()),
              ("ssn", speak_digits(ssn)), ("health plan id", medicaid), ("vehicle", plate), ("licence", npi),
              ("url", url), ("ip", ip), ("date", admitted), ("relative", FIRST[(n + 3) % len(FIRST)]),
              ("age over 89", "ninety three years old")]
    return chart, "\n".join(lines), seeded


def grant_egress(runtime: Runtime, people: Practice) -> None:
    from scribe.services import consent

    with session_scope(runtime.engine) as s:
        consent.record_consent(s, runtime.audit_key, runtime.policies, actor=people.dr_ada, client_id=people.maya.id or 0,
                               functions=["egress"], effective_from=runtime.clock(), expires_at=None,
                               forms_dir=runtime.settings.forms_dir, scan=None, now=runtime.clock())


def remote_runtime(tmp_path: Path, fake_server: FakeModelServer) -> tuple[Runtime, Practice]:
    policies_dir = tmp_path / "policies"
    shutil.copytree(ROOT / "policies", policies_dir)
    (policies_dir / "egress.yaml").write_text(
        "version: 3\ndestinations:\n  - name: onprem-llm\n"
        f"    url: http://127.0.0.1:{fake_server.port}/v1/chat/completions\n    receives: [redacted_text]\n")
    settings = Settings(data_dir=tmp_path / "var", model_profile="test", models_dir=ROOT / "models",
                        policies_dir=policies_dir, worker_in_process=False, drafter_remote="onprem-llm")
    clock = Clock()
    runtime = build_runtime(settings, clock=clock)
    redactor = build_redactor(settings, runtime.policies.redaction)
    runtime.engines = Engines(FakeTranscriber(), redactor, build_remote_drafter(
        settings, runtime.policies.egress, redactor, SqlLedger(runtime.engine), clock))
    return runtime, make_practice(runtime, clock)


def test_nothing_leaves_for_a_client_without_the_egress_consent(tmp_path: Path, fake_server: FakeModelServer) -> None:
    """The egress consent is checked before a remote drafter sends anything: without it the
    session stops at drafting, saying why, and the model server receives not one request."""
    runtime, people = remote_runtime(tmp_path, fake_server)
    encounter = upload(runtime, people.dr_ada, people.maya.id, wav_bytes(seconds=2),
                       transcript="CLINICIAN: How was the week?\nCLIENT: Better, I slept most nights.")
    run_pipeline(runtime)
    stopped = reload(runtime, encounter)
    assert stopped.status == EncounterStatus.STOPPED and "egress" in stopped.status_reason
    assert fake_server.bodies == []
    grant_egress(runtime, people)  # with it, the same client's next session is drafted remotely
    encounter = upload(runtime, people.dr_ada, people.maya.id, wav_bytes(seconds=2),
                       transcript="CLINICIAN: How was the week?\nCLIENT: Better, I slept most nights.")
    run_pipeline(runtime)
    done = reload(runtime, encounter)
    assert done.status == EncounterStatus.IN_REVIEW and len(fake_server.bodies) == 4, done.status_reason


@pytest.fixture
def fake_server() -> Iterator[FakeModelServer]:
    server = FakeModelServer()
    yield server
    server.close()


def test_no_seeded_identifier_and_no_audio_reaches_the_model_server(
    tmp_path: Path, fake_server: FakeModelServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    runtime, people = remote_runtime(tmp_path, fake_server)
    grant_egress(runtime, people)

    rng = random.Random(2026)
    seeded: list[tuple[str, str]] = []
    encounters = []
    for n in range(24):
        chart, transcript, identifiers = seeded_session(rng, n)
        with session_scope(runtime.engine) as s:
            client = s.get(Client, people.maya.id)
            for k, v in chart.items():
                setattr(client, k, v)
            s.add(client)
        encounters.append(upload(runtime, people.dr_ada, people.maya.id, wav_bytes(seconds=2), transcript=transcript))
        OnlyLoopbackTo.install(fake_server.port)
        try:
            run_pipeline(runtime)
        finally:
            OnlyLoopbackTo.active = False
        seeded += identifiers
    assert len(seeded) >= 500, len(seeded)
    assert OnlyLoopbackTo.violations == []
    for e in encounters:
        fresh = reload(runtime, e)
        assert fresh.status == EncounterStatus.IN_REVIEW, fresh.status_reason

    sent = [b.decode("utf-8") for b in fake_server.bodies]
    assert len(sent) == 24 * 4  # one request per SOAP section per session
    haystack = " ".join(json.loads(b)["messages"][-1]["content"] for b in sent).lower()
    haystack = " ".join(haystack.split())
    leaks = sorted({(kind, value) for kind, value in seeded if " ".join(value.lower().split()) in haystack})
    assert leaks == [], (
        f"{len(leaks)} of {len(seeded)} seeded identifiers reached the server: {sorted({k for k, _ in leaks})} {leaks[:40]}"
    )
    assert not any(looks_like_audio(b) for b in fake_server.bodies) and b"RIFF" not in b"".join(fake_server.bodies)

    with session_scope(runtime.engine) as s:
        rows = s.exec(select(EgressEvent)).all()
    assert sorted(r.payload_sha256 for r in rows) == sorted(hashlib.sha256(b).hexdigest() for b in fake_server.bodies)
    assert all(r.allowed and r.destination == "onprem-llm" and r.policy_version == 3 and r.host == "127.0.0.1"
               for r in rows)
    assert sum(r.surrogates for r in rows) > 0
    logged = " ".join(" ".join(r.getMessage().lower().split()) for r in caplog.records)
    assert "encounter=" in logged
    assert [v for _, v in seeded if " ".join(v.lower().split()) in logged] == []  # logs carry ids only


def test_the_gateway_refuses_and_records_what_it_refuses(tmp_path: Path, fake_server: FakeModelServer) -> None:
    from scribe.domain.egress import Destination
    from scribe.engines.egress import EgressGateway

    settings = Settings(model_profile="test", models_dir=ROOT / "models")
    records: list[EgressRecord] = []
    dest = Destination("onprem-llm", f"http://127.0.0.1:{fake_server.port}/v1/chat/completions", ("redacted_text",))
    gateway = EgressGateway([dest], redactor=build_redactor(settings, REDACTION), ledger=records.append, clock=Clock())
    with pytest.raises(EgressRefused, match="deny by default"):
        gateway.post_json("elsewhere", {"messages": [{"content": "hello"}]})
    # An identifier the pipeline replaced (here a nickname no recognizer knows) must not come back.
    with pytest.raises(EgressRefused, match="still in the payload"):
        gateway.post_json("onprem-llm", {"messages": [{"content": "[CLIENT] said blue heron wrote back"}]},
                          originals=["blue heron"])
    with pytest.raises(EgressRefused, match="audio never leaves"):
        gateway.post_json("onprem-llm", {"audio": "UklGR" + "A" * 400})
    with pytest.raises(EgressRefused, match="Part 2"):
        gateway.post_json("onprem-llm", {"messages": [{"content": "x"}]}, part2=True, part2_consent=True)
    assert [r.allowed for r in records] == [False] * 4 and fake_server.bodies == []
    answer = gateway.post_json("onprem-llm", {"messages": [{"content": "[CLIENT] said call 555-201-3344"}]})
    assert answer["choices"][0]["message"]["content"]
    body = json.loads(fake_server.bodies[-1])
    assert "555-201-3344" not in body["messages"][0]["content"]  # the gateway's own pass replaced it
    assert records[-1].allowed and records[-1].gateway_found == 1 and records[-1].surrogates == 1


def test_part2_material_leaves_only_with_consent_and_always_with_the_notice(tmp_path: Path, fake_server: FakeModelServer) -> None:
    """S14 / property 11: a Part 2 transcript reaches a Part 2 destination only with the
    client's consent, and every body carries the 2.32 notice; never without consent."""
    import dataclasses

    from scribe.domain.egress import PART2_NOTICE, Destination
    from scribe.domain.transcript import parse_plain_transcript
    from scribe.engines.egress import EgressGateway
    from scribe.engines.fakes import FakeRedactor
    from scribe.engines.protocols import SectionRequest
    from scribe.engines.remote import RemoteDrafter

    settings = Settings(model_profile="test", models_dir=ROOT / "models")
    records: list[EgressRecord] = []
    dest = Destination("onprem-llm", f"http://127.0.0.1:{fake_server.port}/v1/chat/completions", ("redacted_text",),
                       part2=True)
    gateway = EgressGateway([dest], redactor=build_redactor(settings, REDACTION), ledger=records.append, clock=Clock())
    drafter = RemoteDrafter(gateway, "onprem-llm", "m")
    transcript = FakeRedactor().pseudonymize(parse_plain_transcript(
        "CLINICIAN: How has the week been?\nCLIENT: I have stayed sober for ten days."), [])
    sections = [SectionRequest("subjective", "Subjective", "What the client reports.", 2)]
    with pytest.raises(EgressRefused, match="consent"):
        drafter.draft(dataclasses.replace(transcript, part2=True, part2_consent=False), "SOAP note", sections)
    assert fake_server.bodies == [] and records[-1].allowed is False
    drafter.draft(dataclasses.replace(transcript, part2=True, part2_consent=True), "SOAP note", sections)
    assert fake_server.bodies and all(PART2_NOTICE in b.decode("utf-8") for b in fake_server.bodies)
    plain = len(fake_server.bodies)
    drafter.draft(transcript, "SOAP note", sections)  # not Part 2: no notice needed, none added
    assert all(PART2_NOTICE not in b.decode("utf-8") for b in fake_server.bodies[plain:])


def test_a_part2_session_leaves_only_for_the_recipient_its_consent_names_with_notice_and_terms(
        tmp_path: Path, fake_server: FakeModelServer) -> None:
    """S14 through the real pipeline: a Part 2 session drafted on the on-prem server. Without a
    consent naming that server, nothing is sent (and the refusal is ledgered); with one, every
    request carries the 2.32 notice and a copy of the consent's terms, without the signer's name."""
    from scribe.domain.consent import Part2Terms
    from scribe.domain.egress import PART2_NOTICE
    from scribe.services import consent

    policies_dir = tmp_path / "policies"
    runtime, people = remote_runtime(tmp_path, fake_server)
    (policies_dir / "egress.yaml").write_text(
        "version: 3\ndestinations:\n  - name: onprem-llm\n"
        f"    url: http://127.0.0.1:{fake_server.port}/v1/chat/completions\n    receives: [redacted_text]\n"
        "    part2: true\n")
    runtime.policies = load_policies(policies_dir)
    engines = runtime.engines
    assert engines is not None
    runtime.engines = Engines(engines.transcriber, engines.redactor, build_remote_drafter(
        runtime.settings, runtime.policies.egress, engines.redactor, SqlLedger(runtime.engine), runtime.clock))
    grant_egress(runtime, people)

    def terms(recipient: str) -> Part2Terms:
        return Part2Terms(recipient, "drafting the progress note", "the session's transcript, redacted",
                          "one year", "Maya Thompson", "2026-11-01", True)

    def part2_session() -> Encounter:
        with session_scope(runtime.engine) as s:
            client = s.get_one(Client, people.maya.id)
            client.part2_program = True
            s.add(client)
        return upload(runtime, people.dr_ada, people.maya.id, wav_bytes(seconds=2),
                      transcript="CLINICIAN: How has the week been?\nCLIENT: I have stayed sober for ten days.")

    clock = runtime.clock
    assert isinstance(clock, Clock)
    for recipient in ("someone-else", "onprem-llm"):
        clock.advance(seconds=1)
        with session_scope(runtime.engine) as s:
            consent.record_consent(s, runtime.audit_key, runtime.policies, actor=people.dr_ada,
                                   client_id=people.maya.id or 0, functions=["part2_disclosure"],
                                   effective_from=runtime.clock(), expires_at=None, part2=terms(recipient),
                                   forms_dir=runtime.settings.forms_dir, scan=None, now=runtime.clock())
        encounter = part2_session()
        run_pipeline(runtime)
        if recipient == "someone-else":
            assert fake_server.bodies == []  # the consent names another recipient: nothing left
            assert reload(runtime, encounter).status == EncounterStatus.FAILED
            with session_scope(runtime.engine) as s:
                refused = s.exec(select(EgressEvent).where(EgressEvent.allowed == False)).all()  # noqa: E712
            assert refused and "Part 2" in refused[-1].reason
    bodies = [b.decode("utf-8") for b in fake_server.bodies]
    assert bodies and all(PART2_NOTICE in b and "Patient consent on file (42 CFR 2.31): recipient onprem-llm" in b
                          for b in bodies)
    assert not any("Maya Thompson" in b for b in bodies)  # the signer's name is not sent to a redacted destination
