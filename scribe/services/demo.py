"""The demo practice (synthetic people only) and the bundled sample session."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from sqlmodel import Session, select

from scribe.db.clients import add_client, find_by_mrn
from scribe.db.tables import Client, Clinic, Consent, User
from scribe.domain.notes import LicenceStatus, Role
from scribe.services.accounts import hash_password

SAMPLE_DIR = Path(__file__).resolve().parent.parent / "demo"
SAMPLE_AUDIO = SAMPLE_DIR / "sample_session.ogg"
SAMPLE_SCRIPT = SAMPLE_DIR / "session_script.txt"
CONSENT_FUNCTIONS = ("record_audio", "transcribe", "ai_drafting", "keep_audio", "supervision_use")


@dataclass(frozen=True)
class DemoLogin:
    username: str
    password: str
    role: str
    description: str


PEOPLE = [
    # username, full name, role, credential, licence status, licence no., description
    ("admin", "Pat Admin", Role.ADMIN, "", LicenceStatus.INACTIVE, "", "practice admin (no clinical content)"),
    ("dr_ada", "Dr. Ada Reyes", Role.CLINICIAN, "PsyD", LicenceStatus.LICENSED, "PSY-204518", "licensed clinician"),
    ("dr_cole", "Cole Okafor", Role.CLINICIAN, "LCSW", LicenceStatus.LICENSED, "LCSW-88213", "licensed clinician"),
    ("dr_ben", "Dr. Ben Hartley", Role.SUPERVISOR, "PhD", LicenceStatus.LICENSED, "PSY-177302", "supervisor"),
    ("sam", "Sam Patel", Role.CLINICIAN, "LPC-Associate", LicenceStatus.PRE_LICENSURE, "LPCA-30917",
     "pre-licensure supervisee of dr_ben"),
]

CLIENTS = [
    # clinician, given, family, preferred, dob, mrn, address, city, phone, email, employer, contacts
    ("dr_ada", "Maya", "Thompson", "", date(1991, 3, 14), "MRN-004417", "2217 Alder Creek Road", "Fairview",
     "555-201-7788", "maya.t@example.org", "Riverside Bakery",
     [{"name": "Laura Thompson", "relation": "sister", "phone": "555-201-3344"}]),
    ("dr_cole", "Jonah", "Whitfield", "Joe", date(1984, 11, 2), "MRN-004502", "88 Harbor Lane", "Fairview",
     "555-310-4421", "jwhitfield@example.net", "Fairview Transit",
     [{"name": "Ellen Whitfield", "relation": "spouse", "phone": ""}]),
    ("sam", "Priya", "Castellano", "", date(2001, 6, 30), "MRN-004633", "415 Orchard Street, Apt 3", "Fairview",
     "555-478-9020", "priya.c@example.com", "",
     [{"name": "Rosa Castellano", "relation": "mother", "phone": "555-478-1100"}]),
]


def seed_demo(s: Session, *, now: datetime) -> list[DemoLogin]:
    """Create the demo practice once; returns fresh random passwords for its users."""
    if s.exec(select(Clinic)).first() is not None:
        return []
    clinic = Clinic(name="Fairview Counseling Collective")
    s.add(clinic)
    s.flush()
    users: dict[str, User] = {}
    logins = []
    for username, full, role, cred, status, lic, desc in PEOPLE:
        password = f"{username.replace('_', '-')}-{secrets.token_hex(6)}"
        user = User(clinic_id=clinic.id or 0, username=username, full_name=full, role=role, credential=cred,
                    licence_status=status, licence_number=lic, password_hash=hash_password(password), created_at=now,
                    licence_type="LPC-Associate" if status == LicenceStatus.PRE_LICENSURE else "")
        s.add(user)
        s.flush()
        users[username] = user
        logins.append(DemoLogin(username, password, role.value, desc))
    users["sam"].supervisor_id = users["dr_ben"].id
    s.add(users["sam"])
    for clin, given, family, pref, dob, mrn, addr, city, phone, email, employer, contacts in CLIENTS:
        client = Client(clinic_id=clinic.id or 0, clinician_id=users[clin].id or 0, given_name=given, family_name=family,
                        preferred_name=pref, date_of_birth=dob, mrn=mrn, address=addr, city=city, phone=phone,
                        email=email, employer=employer, contacts=contacts, created_at=now)
        add_client(s, client)
        for function in CONSENT_FUNCTIONS:
            s.add(Consent(client_id=client.id or 0, function=function, captured_by=users[clin].id or 0, captured_at=now,
                          form_version="demo-1", form_text=f"Synthetic demo consent: {function}", effective_from=now))
    return logins


def demo_client_id(s: Session) -> int:
    client = find_by_mrn(s, user_by_name(s, "dr_ada").clinic_id, "MRN-004417")
    assert client is not None  # noqa: S101 - narrows the type; never a guard
    return client.id or 0


def user_by_name(s: Session, username: str) -> User:
    return s.exec(select(User).where(User.username == username)).one()
