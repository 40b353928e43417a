"""Clients: the chart's fields and their rules, the caseload status, and the normalised
forms the keyed blind index is computed from (names and MRNs are sealed at rest; search
compares keyed hashes of these forms, never the text). Pure functions."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum

from scribe.domain.errors import InvalidInput


class ClientStatus(StrEnum):
    ACTIVE = "active"
    DISCHARGED = "discharged"


class TransferReason(StrEnum):
    """Why a client moves to another clinician: a choice, never free text (it is audited)."""

    CASELOAD = "caseload balancing"
    CLIENT_REQUEST = "client request"
    CLINICIAN_LEAVING = "clinician leaving or on leave"
    LEVEL_OF_CARE = "different specialty or level of care"
    SUPERVISION = "assigned by supervisor"


class GuardianAuthority(StrEnum):
    """On what basis someone acts for the client (HIPAA 164.502(g) personal representatives)."""

    PARENT = "parent of a minor"
    LEGAL_GUARDIAN = "legal guardian (court order)"
    HEALTH_CARE_PROXY = "health care proxy or power of attorney"
    OTHER = "other personal representative"


MAX_FIELD = 200
MAX_PEOPLE = 12
MAX_DIAGNOSES = 20


@dataclass(frozen=True)
class Person:
    """A contact (someone the client talks about, whom the redactor must know) or a guardian."""

    name: str
    relation: str = ""
    phone: str = ""
    authority: str = ""  # guardians: a GuardianAuthority value
    documents: str = ""  # guardians: what is on file (e.g. "custody order 2024-03")

    def to_json(self) -> dict[str, str]:
        return {k: v for k, v in (("name", self.name), ("relation", self.relation), ("phone", self.phone),
                                  ("authority", self.authority), ("documents", self.documents)) if v}


@dataclass(frozen=True)
class Diagnosis:
    """A diagnosis the clinician entered on the chart (never one a model proposed)."""

    code: str  # ICD-10-CM, e.g. F41.1
    description: str

    def to_json(self) -> dict[str, str]:
        return {"code": self.code, "description": self.description}


@dataclass(frozen=True)
class ChartInput:
    """What a clinician or intake staff typed on the client form, checked."""

    given_name: str
    family_name: str
    preferred_name: str = ""
    date_of_birth: date | None = None
    mrn: str = ""
    address: str = ""
    city: str = ""
    phone: str = ""
    email: str = ""
    employer: str = ""
    school: str = ""
    contacts: tuple[Person, ...] = field(default_factory=tuple)
    guardians: tuple[Person, ...] = field(default_factory=tuple)
    diagnoses: tuple[Diagnosis, ...] = field(default_factory=tuple)
    part2_program: bool = False


_ICD10 = re.compile(r"^[A-TV-Z][0-9][0-9A-Z](\.[0-9A-Z]{1,4})?$")
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,190}\.[^@\s]{2,}$")


def check_chart(chart: ChartInput, *, today: date) -> ChartInput:
    """The chart with whitespace trimmed, or InvalidInput naming the first bad field."""
    text_fields = ("given_name", "family_name", "preferred_name", "mrn", "address", "city", "phone", "email",
                   "employer", "school")
    values = {f: " ".join(str(getattr(chart, f)).split()) for f in text_fields}
    for name, value in values.items():
        if len(value) > MAX_FIELD:
            raise InvalidInput(f"{name.replace('_', ' ')} is longer than {MAX_FIELD} characters")
    if not values["given_name"] or not values["family_name"]:
        raise InvalidInput("a client needs a given name and a family name")
    if values["email"] and not _EMAIL.match(values["email"]):
        raise InvalidInput("the e-mail address is not valid")
    if values["mrn"] and not normal_mrn(values["mrn"]):
        raise InvalidInput("the MRN needs at least one letter or digit")
    if chart.date_of_birth is not None and not (date(1900, 1, 1) <= chart.date_of_birth <= today):
        raise InvalidInput("the date of birth is not a plausible date")
    if len(chart.contacts) > MAX_PEOPLE or len(chart.guardians) > MAX_PEOPLE:
        raise InvalidInput(f"at most {MAX_PEOPLE} contacts and {MAX_PEOPLE} guardians")
    if len(chart.diagnoses) > MAX_DIAGNOSES:
        raise InvalidInput(f"at most {MAX_DIAGNOSES} diagnoses")
    people = []
    for group in (chart.contacts, chart.guardians):
        kept = []
        for p in group:
            p = Person(*(" ".join(x.split())[:MAX_FIELD] for x in (p.name, p.relation, p.phone, p.authority,
                                                                     p.documents)))
            if not p.name:
                continue
            if group is chart.guardians and p.authority not in {a.value for a in GuardianAuthority}:
                raise InvalidInput("say on what authority each guardian acts")
            kept.append(p)
        people.append(tuple(kept))
    diagnoses = []
    for n, d in enumerate(chart.diagnoses, start=1):
        code = d.code.strip().upper()
        if not code:
            continue
        if not _ICD10.match(code):  # the input is never echoed back (an error page quotes nothing sent)
            raise InvalidInput(f"diagnosis {n} is not an ICD-10-CM code (like F41.1)")
        diagnoses.append(Diagnosis(code, " ".join(d.description.split())[:MAX_FIELD]))
    return ChartInput(**values, date_of_birth=chart.date_of_birth, contacts=people[0], guardians=people[1],
                      diagnoses=tuple(diagnoses), part2_program=chart.part2_program)


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def name_tokens(*names: str) -> list[str]:
    """The words of a name as the blind index keeps them: accents dropped, case folded,
    split at anything that is not a letter or digit ("O'Brien-Smith" -> o, brien, smith)."""
    out: list[str] = []
    for name in names:
        for token in re.split(r"[^\w]+|_", _fold(name)):
            if token and token not in out:
                out.append(token)
    return out


def normal_mrn(mrn: str) -> str:
    """An MRN as the blind index keeps it: letters and digits only, upper case."""
    return re.sub(r"[\W_]+", "", _fold(mrn)).upper()


def display_name(given: str, family: str, preferred: str = "") -> str:
    return f"{preferred or given} {family}".strip()
