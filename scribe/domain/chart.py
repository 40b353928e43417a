"""The identifiers a chart already knows, turned into what the redactor must always remove."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date

from scribe.domain.redaction import KnownIdentifier, SurrogateMap, date_renderings
from scribe.domain.transcript import Segment


@dataclass(frozen=True)
class Contact:
    name: str
    relation: str = ""
    phone: str = ""


@dataclass(frozen=True)
class ChartFacts:
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
    contacts: tuple[Contact, ...] = field(default_factory=tuple)
    clinician_name: str = ""
    practice_name: str = ""


def known_identifiers(chart: ChartFacts) -> list[KnownIdentifier]:
    """Longest forms first so "Maya Thompson" wins over "Maya"."""
    items: list[KnownIdentifier] = []

    def add(text: str, entity: str, key: str) -> None:
        if text and len(text.strip()) >= 2:
            items.append(KnownIdentifier(text.strip(), entity, key))

    full = f"{chart.given_name} {chart.family_name}"
    for name in (full, f"{chart.preferred_name} {chart.family_name}" if chart.preferred_name else "",
                 chart.given_name, chart.family_name, chart.preferred_name):
        add(name, "PERSON", "client.name")
    if chart.date_of_birth:
        for rendering in date_renderings(chart.date_of_birth):
            add(rendering, "DATE_TIME", "client.dob")
    add(chart.mrn, "MRN", "client.mrn")
    add(chart.address, "ADDRESS", "client.address")
    add(chart.city, "LOCATION", "client.city")
    add(chart.phone, "PHONE_NUMBER", "client.phone")
    add(chart.email, "EMAIL_ADDRESS", "client.email")
    add(chart.employer, "ORGANIZATION", "client.employer")
    add(chart.school, "ORGANIZATION", "client.school")
    for i, contact in enumerate(chart.contacts):
        parts = contact.name.split()
        for name in (contact.name, *(parts if len(parts) > 1 else [])):
            add(name, "PERSON", f"contact{i}.name")
        add(contact.phone, "PHONE_NUMBER", f"contact{i}.phone")
    for name in (n for n in (chart.clinician_name,) if n):
        add(name, "PERSON", "clinician.name")
        for part in name.replace("Dr.", "").split():
            if len(part) > 2:
                add(part, "PERSON", "clinician.name")
    add(chart.practice_name, "ORGANIZATION", "practice.name")
    return sorted(items, key=lambda k: -len(k.text))


def case_reference(client_id: int) -> str:
    return f"case C-{client_id:04d}"


def supervision_identifiers(cases: list[tuple[int, ChartFacts]], staff: list[str],
                            practice_name: str) -> list[KnownIdentifier]:
    """What a supervision meeting's redactor must find: every identifier of every case that
    may come up (names become [CASE_n], the rest their usual labels), the staff present and
    the practice. Keys carry the client id so that the note can cite the case by reference."""
    items: list[KnownIdentifier] = []
    for client_id, facts in cases:
        for k in known_identifiers(facts):
            entity = "CASE" if k.key == "client.name" else k.entity
            items.append(KnownIdentifier(k.text, entity, f"case{client_id}:{k.key}"))
    for i, name in enumerate(n for n in staff if n):
        for form in (name, *(p for p in name.replace("Dr.", "").split() if len(p) > 2)):
            items.append(KnownIdentifier(form, "PERSON", f"staff{i}.name"))
    if practice_name:
        items.append(KnownIdentifier(practice_name, "ORGANIZATION", "practice.name"))
    return sorted(items, key=lambda k: -len(k.text))


WITHHELD = "[withheld]"
LEFT_OUT = "[left out: a case whose client has not consented to supervision use]"


def _case_of(ident: str) -> int | None:
    head = ident.split(":", 1)[0]
    return int(head[4:]) if ":" in ident and head.startswith("case") and head[4:].isdigit() else None


def cases_found(surrogates: SurrogateMap) -> set[int]:
    """The clients whose identifiers a supervision meeting's redactor found."""
    return {c for c in map(_case_of, surrogates.forward) if c is not None}


def leave_out_cases(segments: tuple[Segment, ...], surrogates: SurrogateMap, case_ids: set[int]) -> tuple[Segment, ...]:
    """Every segment that names or identifies one of these cases becomes LEFT_OUT: neither
    the drafter nor the evidence check sees what was said of a client who did not consent."""
    marks = [v for k, v in surrogates.forward.items() if _case_of(k) in case_ids]
    return tuple(replace(seg, text=LEFT_OUT) if any(m in seg.text for m in marks) else seg for seg in segments)


def supervision_reverse(surrogates: SurrogateMap) -> dict[str, str]:
    """How a supervision draft is re-identified: staff and practice by name, a case's name by
    its reference, and everything else about a client (or found by the NER) withheld."""
    reverse: dict[str, str] = {}
    for ident, surrogate in surrogates.forward.items():
        case = _case_of(ident)
        if case is not None and ident.endswith(":client.name"):
            reverse[surrogate] = case_reference(case)
        elif ident.startswith(("staff", "practice.")):
            reverse[surrogate] = surrogates.reverse.get(surrogate, WITHHELD)
        else:
            reverse.setdefault(surrogate, WITHHELD)
    return reverse
