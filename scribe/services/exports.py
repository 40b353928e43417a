"""A signed note leaving scribe: as text, as PDF (rendered by the web layer from the same
view) or as a FHIR document, read for the chart, a records request or the practice's EHR.
Every export needs the password again, is audited, carries signed records only (never an
unsigned draft, never a version awaiting co-signature or returned), and a Part 2 record
always carries the 42 CFR 2.32 notice."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session, select

from scribe.db.queries import by_emergency_grant, get_encounter_for_actor
from scribe.db.tables import Client, Clinic, Draft, Encounter, User
from scribe.domain.consent import part2_summary
from scribe.domain.egress import PART2_NOTICE
from scribe.domain.errors import Conflict
from scribe.domain.notes import EncounterKind, VersionKind, VersionState, utc_text
from scribe.policies import Policies
from scribe.services import accounts, audit
from scribe.services.consent import part2_basis, part2_terms
from scribe.services.encounters import service_snapshot
from scribe.services.records import VersionView, history, note_for

FORMATS = ("text", "pdf", "fhir", "ehr")


@dataclass
class NoteExport:
    """Everything an exported note shows, signed records only."""

    encounter: Encounter
    client: Client | None
    clinic: Clinic
    versions: list[VersionView]  # oldest first: records, and (for the text export) versions awaiting co-signature
    service: dict[str, Any] | None  # what the latest full signed version covers of the service
    part2: bool
    part2_basis: str
    exported_by: User
    exported_at: datetime
    reason: str  # the access decision's reason, as audited
    drafted_by: str  # the model that drafted it (the clinician edited and attested)

    @property
    def title(self) -> str:
        if self.encounter.kind == EncounterKind.SUPERVISION:
            return "Supervision note"
        return f"Progress note ({self.encounter.note_type.upper()})"

    @property
    def records(self) -> list[VersionView]:
        """What the PDF, FHIR and EHR exports carry: signed records only."""
        return [v for v in self.versions if v.is_record]

    @property
    def part2_notice(self) -> str:
        return PART2_NOTICE if self.part2 else ""


def prepare_export(s: Session, key: bytes, policies: Policies, *, actor: User, encounter_id: int, password: str,
                   now: datetime, fmt: str, audited: bool = True) -> NoteExport:
    """The export of a note that is a record, for whoever may read it (their own, a
    supervisee's, an emergency grant's), after the password is re-entered. ``audited=False``
    leaves the audit row to the caller (a send writes it after the egress ledger's own
    transaction, so the two never wait on each other's lock)."""
    encounter, access = get_encounter_for_actor(s, actor, encounter_id, now)
    accounts.reauthenticate(actor, password, now=now, purpose="export")
    emergency = by_emergency_grant(access)
    views = [v for v in history(s, note_for(s, encounter))
             if v.is_record or (v.state == VersionState.PENDING_COSIGN and not emergency)]
    if not any(v.is_record for v in views):
        raise Conflict("this note is not a record yet (it is unsigned, returned, or awaiting co-signature)")
    client = s.get(Client, encounter.client_id) if encounter.client_id else None
    clinic = s.get(Clinic, encounter.clinic_id)
    assert clinic is not None  # noqa: S101 - narrows the type; never a guard
    full = [v for v in views if v.is_record and v.version.kind != VersionKind.ADDENDUM]
    service = full[-1].version.content.get("service") if full else None
    if service is None and encounter.kind == EncounterKind.THERAPY:
        service = service_snapshot(s, policies, encounter)  # a note signed before services were recorded
    basis = ""
    if encounter.part2:
        terms = part2_terms(s, client_id=encounter.client_id, now=now) if encounter.client_id else None
        basis = (part2_summary(terms, with_signer=True) if terms is not None else
                 "No consent to disclose Part 2 records is in force: for the treating team only.")
    reason = access.reason + ("; emergency access: signed records only" if emergency else "")
    if audited:
        audit.record(s, key, now=now, actor_id=actor.id, action="note.export", object_type="encounter",
                     object_id=encounter.id, reason=f"{fmt}; {reason}" + ("; Part 2 notice attached" if encounter.part2
                                                                         else ""),
                     content_sha256=[v for v in views if v.is_record][-1].version.content_sha256)
    draft = s.exec(select(Draft).where(Draft.encounter_id == encounter.id)).first()
    model = draft.model if draft is not None else "a local model (its draft has since been purged)"
    return NoteExport(encounter, client, clinic, views, service, encounter.part2, basis, actor, now, reason, model)


def signature_line(v: VersionView) -> str:
    ver = v.version
    return (f"Electronically signed by {ver.signer_name}, {ver.signer_credential} (licence "
            f"{ver.signer_licence_number}) on {utc_text(ver.signed_at)} UTC. Meaning: {ver.meaning} "
            f"Content SHA-256: {ver.content_sha256}")


def cosignature_line(v: VersionView) -> str:
    c = v.cosign
    assert c is not None  # noqa: S101 - narrows the type; never a guard
    return (f"Co-signed by {c.signer_name}, {c.signer_credential} (licence {c.signer_licence_number}) on "
            f"{utc_text(c.at)} UTC. Meaning: {c.meaning} SHA-256: {c.content_sha256}")


def service_lines(service: dict[str, Any] | None) -> list[str]:
    if not service:
        return []
    lines = [f"Date and time of service: {service['start']} to {service['end']} ({service['minutes']} minutes)",
             f"Place of service: {service['place']} {service.get('place_name', '')}".rstrip(),
             f"Service: {service['type'].replace('_', ' ')}; code {service.get('code') or 'not confirmed'}"
             f"{' ' + service['code_label'] if service.get('code_label') else ''}"]
    if service.get("attendees"):
        lines.append("Also present: " + "; ".join(f"{a['name']} ({a['relation']})" for a in service["attendees"]))
    if service.get("diagnoses"):
        lines.append("Diagnoses (from the chart): " + "; ".join(f"{d['code']} {d['description']}"
                                                                for d in service["diagnoses"]))
    return lines


def render_text(x: NoteExport) -> str:
    """The record as plain text, every signed version with its signature and co-signature."""
    subject = f"Client: {x.client.display_name} (MRN {x.client.mrn})" if x.client else "Supervision meeting"
    lines = [f"Session #{x.encounter.id} - {x.encounter.note_type.upper()} - {subject}",
             f"Session date: {utc_text(x.encounter.occurred_at)}", *service_lines(x.service), ""]
    if x.part2:
        lines[:0] = [PART2_NOTICE, x.part2_basis, ""]
    for v in x.versions:
        ver = v.version
        mark = f" [AMENDED: see version {v.amended_by}]" if v.amended_by else ""
        pending = "" if v.is_record else " [AWAITING CO-SIGNATURE: not part of the record]"
        lines.append(f"=== Version {ver.version} ({ver.kind}){mark}{pending} ===")
        for sec in ver.content["sections"]:
            lines += [sec["title"], sec["text"], ""]
        lines.append(signature_line(v))
        if v.cosign is not None:
            lines.append(cosignature_line(v))
        lines.append("")
    return "\n".join(lines)


def chart_identifiers_in(x: NoteExport, payload: str) -> int:
    """How many of the client's chart identifiers an outgoing record carries (for the ledger)."""
    if x.client is None:
        return 0
    from scribe.domain.chart import ChartFacts, known_identifiers

    c = x.client
    facts = ChartFacts(given_name=c.given_name, family_name=c.family_name, preferred_name=c.preferred_name,
                       date_of_birth=c.date_of_birth, mrn=c.mrn, address=c.address, city=c.city, phone=c.phone,
                       email=c.email)
    low = payload.lower()
    return len({k.text.lower() for k in known_identifiers(facts) if k.text.lower() in low})


def _consent_copy(s: Session, x: NoteExport, now: datetime) -> dict[str, object] | None:
    return part2_terms(s, client_id=x.encounter.client_id, now=now) if x.encounter.client_id else None


def send_to_ehr(s: Session, key: bytes, policies: Policies, *, actor: User, encounter_id: int, destination: str,
                password: str, gateway: Any, now: datetime) -> dict[str, Any]:
    """Push the signed note, as a FHIR document, to the practice's EHR through the egress
    gateway: only a destination declared to receive identified records takes it, a Part 2
    record needs the client's disclosure consent and carries the notice, and the send (or
    the refusal) is on the egress ledger."""
    import json

    from scribe.services.fhir import note_bundle

    if destination not in {d.name for d in policies.egress.destinations if "identified_record" in d.receives}:
        raise Conflict("that destination does not take identified records (policies/egress.yaml)")
    x = prepare_export(s, key, policies, actor=actor, encounter_id=encounter_id, password=password, now=now, fmt="ehr",
                       audited=False)
    dest = next(d for d in policies.egress.destinations if d.name == destination)
    consented, basis = (part2_basis(s, policies, client_id=x.encounter.client_id or 0, recipient=destination, now=now,
                                    qsoa=dest.qsoa) if x.part2 else (True, ""))
    x.part2_basis = basis or x.part2_basis
    bundle = note_bundle(x, drafted_by=x.drafted_by, part2_consent=_consent_copy(s, x, now) if x.part2 else None)
    found = chart_identifiers_in(x, json.dumps(bundle, ensure_ascii=False))
    answer: dict[str, Any] = gateway.post_record(destination, bundle, identifiers=found, part2=x.part2, part2_consent=consented)
    audit.record(s, key, now=now, actor_id=actor.id, action="note.send", object_type="encounter",
                 object_id=x.encounter.id, reason=f"to {destination}; {x.reason}" + ("; Part 2 notice attached"
                                                                                     if x.part2 else ""),
                 content_sha256=x.records[-1].version.content_sha256)
    return answer
