"""Shared fixtures: settings on a temporary data dir, fake engines, and personas.

Personas (STYLE.md): dr_ada (licensed clinician), dr_cole (another clinician, same clinic),
dr_ben (supervisor), sam (dr_ben's pre-licensure supervisee), eve (clinician at another
clinic), root (admin), ivy (intake staff). Clients are synthetic."""

from __future__ import annotations

import base64
import functools
import hashlib
import io
import math
import os
import struct
import uuid
import wave
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyotp
import pytest
from sqlmodel import Session

from scribe.config import ROOT, Settings
from scribe.db.clients import add_client
from scribe.db.engine import session_scope
from scribe.db.tables import Client, Clinic, Consent, User
from scribe.domain.notes import LicenceStatus, Role
from scribe.engines.fakes import FakeDrafter, FakeRedactor, FakeTranscriber, FakeVoices
from scribe.engines.protocols import Engines
from scribe.policies import Policies, load_policies
from scribe.runtime import Runtime, build_runtime
from scribe.services.accounts import hash_password

PASSWORD = "correct horse battery staple"
CONSENTS = ("record_audio", "transcribe", "ai_drafting", "keep_audio", "supervision_use")


class Clock:
    """A fake clock tests can move."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 2, 15, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += timedelta(**kw)


def clock_of(runtime: Runtime) -> Clock:
    """The test clock a runtime was built with (``Runtime.clock`` is typed as any clock)."""
    assert isinstance(runtime.clock, Clock)
    return runtime.clock


@pytest.fixture(scope="session")
def policies() -> Policies:
    return load_policies(ROOT / "policies")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "var", engines="fake", model_profile="test", worker_in_process=False)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@dataclass(frozen=True)
class Fakes:
    """The fake engines a test drives, typed as what they are (``Engines`` types them by Protocol)."""

    transcriber: FakeTranscriber
    redactor: FakeRedactor
    drafter: FakeDrafter
    voices: FakeVoices


@pytest.fixture
def fakes() -> Fakes:
    return Fakes(FakeTranscriber(), FakeRedactor(), FakeDrafter(), FakeVoices())


@pytest.fixture
def engines(fakes: Fakes) -> Engines:
    return Engines(fakes.transcriber, fakes.redactor, fakes.drafter, fakes.voices)


@pytest.fixture
def runtime(settings: Settings, policies: Policies, engines: Engines, clock: Clock) -> Runtime:
    return build_runtime(settings, policies=policies, engines=engines, clock=clock)


@pytest.fixture(params=["sqlite", "postgresql"])
def either_db(
    request: pytest.FixtureRequest, settings: Settings, policies: Policies, engines: Engines, clock: Clock
) -> Iterator[Runtime]:
    """The runtime on the embedded SQLite, then on PostgreSQL (the multi-host database)."""
    if request.param == "postgresql":
        settings = settings.model_copy(update={"database_url": request.getfixturevalue("pg_url")})
    rt = build_runtime(settings, policies=policies, engines=engines, clock=clock)
    yield rt
    rt.engine.dispose()


@dataclass
class Practice:
    dr_ada: User
    dr_cole: User
    dr_ben: User
    sam: User
    eve: User
    root: User
    ivy: User  # intake staff: charts and consents, no clinical text
    maya: Client  # dr_ada's client
    jonah: Client  # dr_cole's client
    priya: Client  # sam's client
    other: Client  # eve's client, other clinic


def _user(s: Session, clinic: Clinic, username: str, role: Role, status: LicenceStatus = LicenceStatus.LICENSED,
          supervisor: User | None = None, now: datetime | None = None) -> User:
    user = User(clinic_id=clinic.id or 0, username=username, full_name=f"{username.replace('_', ' ').title()} Tester",
                role=role, credential="LCSW" if role != Role.ADMIN else "", licence_number=f"LIC-{username.upper()}",
                licence_status=status, supervisor_id=supervisor.id if supervisor else None,
                password_hash=persona_password_hash(), created_at=now or datetime.now(UTC))
    s.add(user)
    s.flush()
    user.totp_secret, user.totp_enrolled_at = totp_secret(username), now or datetime.now(UTC)
    s.add(user)
    s.flush()
    return user


@functools.cache
def persona_password_hash() -> str:
    """One argon2id hash of PASSWORD for every persona (each with the production parameters,
    so verifying costs what it costs in the app; hashing it once saves a second per practice)."""
    return hash_password(PASSWORD)


def totp_secret(username: str) -> str:
    """Each persona's authenticator secret (deterministic, so tests can compute codes)."""
    return base64.b32encode(hashlib.sha256(username.encode()).digest()[:20]).decode()


def totp_code(runtime: Runtime, username: str) -> str:
    """A fresh code for a persona: the fake clock moves on one time step first, because
    each code is accepted only once."""
    clock = runtime.clock
    if isinstance(clock, Clock):
        clock.advance(seconds=30)
    return pyotp.TOTP(totp_secret(username)).at(clock())


def _client(s: Session, clinic: Clinic, clinician: User, given: str, family: str, now: datetime, **chart: object) -> Client:
    client = Client(clinic_id=clinic.id or 0, clinician_id=clinician.id or 0, given_name=given, family_name=family,
                    mrn=f"MRN-{given.upper()}01", created_at=now, **chart)  # type: ignore[arg-type]
    add_client(s, client)
    for function in CONSENTS:
        s.add(Consent(client_id=client.id or 0, function=function, captured_by=clinician.id or 0, captured_at=now,
                      form_version="t1", form_text="test consent", effective_from=now - timedelta(days=1)))
    return client


def make_practice(runtime: Runtime, clock: Clock) -> Practice:
    now = clock()
    with session_scope(runtime.engine) as s:
        clinic = Clinic(name="Fairview Test Practice")
        elsewhere = Clinic(name="Elsewhere Practice")
        s.add(clinic)
        s.add(elsewhere)
        s.flush()
        dr_ada = _user(s, clinic, "dr_ada", Role.CLINICIAN, now=now)
        dr_cole = _user(s, clinic, "dr_cole", Role.CLINICIAN, now=now)
        dr_ben = _user(s, clinic, "dr_ben", Role.SUPERVISOR, now=now)
        sam = _user(s, clinic, "sam", Role.CLINICIAN, LicenceStatus.PRE_LICENSURE, supervisor=dr_ben, now=now)
        eve = _user(s, elsewhere, "eve", Role.CLINICIAN, now=now)
        root = _user(s, clinic, "root", Role.ADMIN, LicenceStatus.INACTIVE, now=now)
        ivy = _user(s, clinic, "ivy", Role.INTAKE, LicenceStatus.INACTIVE, now=now)
        maya = _client(s, clinic, dr_ada, "Maya", "Thompson", now, date_of_birth=date(1991, 3, 14),
                       phone="555-201-7788", email="maya.t@example.org", employer="Riverside Bakery",
                       address="2217 Alder Creek Road",
                       contacts=[{"name": "Laura Thompson", "relation": "sister", "phone": "555-201-3344"}])
        jonah = _client(s, clinic, dr_cole, "Jonah", "Whitfield", now)
        priya = _client(s, clinic, sam, "Priya", "Castellano", now)
        other = _client(s, elsewhere, eve, "Otto", "Quill", now)
    return Practice(dr_ada, dr_cole, dr_ben, sam, eve, root, ivy, maya, jonah, priya, other)


@pytest.fixture
def practice(runtime: Runtime, clock: Clock) -> Practice:
    return make_practice(runtime, clock)


def wav_bytes(seconds: float = 2.0, freq: float = 220.0, rate: int = 16000) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        frames = b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * freq * i / rate)))
                          for i in range(int(seconds * rate)))
        w.writeframes(frames)
    return buf.getvalue()


@pytest.fixture
def wav() -> bytes:
    return wav_bytes()


@pytest.fixture
def db(runtime: Runtime) -> Iterator[Session]:
    with Session(runtime.engine, expire_on_commit=False) as s:
        yield s


PG_URL = os.environ.get("SCRIBE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh schema on the PostgreSQL that CI provides (127.0.0.1:5432, database `test`);
    a clinic's single server has none, so elsewhere tests that need it skip with the reason."""
    from sqlalchemy import create_engine, text

    try:
        import psycopg  # noqa: F401

        admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        pytest.skip(f"no PostgreSQL at {PG_URL}: {exc.__class__.__name__}")
    schema = f"t_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    with admin.connect() as conn:
        conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()
