"""A signed note as a FHIR document an EHR can take in: a Bundle of type ``document`` whose
Composition holds the note, with the Patient, the Practitioners who signed and co-signed,
the Organization, the Encounter (the service), a DocumentReference that indexes it, and a
Provenance for each signature that also names the AI model that drafted it (the clinician
edited and attested). Security labels carry psychotherapy sensitivity and, for a Part 2
record, 42 CFR Part 2 and the prohibition on redisclosure. Built as plain data and
validated by the fhir.resources R4B models (FHIR 4.3, the R4 line)."""

from __future__ import annotations

import base64
import uuid
from html import escape
from typing import Any

from scribe.domain.notes import VersionKind, utc_text
from scribe.services.exports import NoteExport, service_lines

LOINC = "http://loinc.org"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
CONFIDENTIALITY = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
PARTICIPATION = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"
SIGNATURE_TYPE = "urn:iso-astm:E1762-95:2013"
NOTE_TYPE = {"code": "11506-3", "display": "Progress note"}
SUPERVISION_TYPE = {"code": "34133-9", "display": "Summary of episode note"}


def _ref(resource: str, ident: str) -> dict[str, str]:
    return {"reference": f"urn:uuid:{ident}", "type": resource}


def _div(*paragraphs: str) -> dict[str, str]:
    body = "".join(f"<p>{escape(p)}</p>" for p in paragraphs if p) or "<p>(empty)</p>"
    return {"status": "generated", "div": f'<div xmlns="http://www.w3.org/1999/xhtml">{body}</div>'}


def security_labels(x: NoteExport) -> list[dict[str, str]]:
    labels = [{"system": CONFIDENTIALITY, "code": "R", "display": "restricted"},
              {"system": ACT_CODE, "code": "PSY", "display": "psychiatry information sensitivity"}]
    if x.part2:
        labels += [{"system": ACT_CODE, "code": "ETH", "display": "substance abuse information sensitivity"},
                   {"system": ACT_CODE, "code": "42CFRPart2", "display": "42 CFR Part2"},
                   {"system": ACT_CODE, "code": "NORDSCLCD", "display": "no redisclosure without consent directive"}]
    return labels


def note_bundle(x: NoteExport, *, drafted_by: str, pdf: bytes | None = None,
                part2_consent: dict[str, Any] | None = None) -> dict[str, Any]:
    """The FHIR document for an export's signed records, as JSON-ready data (validated). A
    Part 2 disclosure carries the notice and, given ``part2_consent``, a copy of the 2.31
    consent as a Consent resource."""
    ids = {name: str(uuid.uuid5(uuid.NAMESPACE_URL, f"scribe:{x.encounter.id}:{name}"))
           for name in ("patient", "org", "encounter", "composition", "docref", "device")}
    meta = {"security": security_labels(x)}
    records = x.records
    latest = records[-1].version
    signers = {v.version.signer_id: v.version for v in records}
    cosigners = {v.cosign.supervisor_id: v.cosign for v in records if v.cosign is not None}
    practitioner_ids = {uid: str(uuid.uuid5(uuid.NAMESPACE_URL, f"scribe:user:{uid}"))
                        for uid in [*signers, *cosigners]}
    entries: list[dict[str, Any]] = []
    doc_type = SUPERVISION_TYPE if x.client is None else NOTE_TYPE
    sections = []
    if x.part2:
        sections.append({"title": "Redisclosure notice (42 CFR 2.32)", "text": _div(x.part2_notice, x.part2_basis)})
    if x.service:
        sections.append({"title": "Service", "text": _div(*service_lines(x.service))})
    for v in records:
        ver = v.version
        for sec in ver.content["sections"]:
            sections.append({"title": f"{sec['title']} (version {ver.version}, {ver.kind})", "text": _div(sec["text"])})
    attesters = [{"mode": "legal", "time": utc_text(v.version.signed_at),
                  "party": _ref("Practitioner", practitioner_ids[v.version.signer_id])} for v in records]
    attesters += [{"mode": "professional", "time": utc_text(v.cosign.at),
                   "party": _ref("Practitioner", practitioner_ids[v.cosign.supervisor_id])}
                  for v in records if v.cosign is not None]
    composition: dict[str, Any] = {
        "resourceType": "Composition", "id": ids["composition"], "meta": meta, "status": "amended"
        if any(r.version.kind == VersionKind.AMENDMENT for r in records) else "final",
        "type": {"coding": [{"system": LOINC, **doc_type}]}, "date": utc_text(latest.signed_at),
        "title": x.title, "confidentiality": "R",
        "author": [_ref("Practitioner", practitioner_ids[latest.signer_id])],
        "custodian": _ref("Organization", ids["org"]), "attester": attesters, "section": sections,
        "identifier": {"system": "urn:scribe:note", "value": f"{x.encounter.id}-v{latest.version}"},
    }
    if x.client is not None:
        composition["subject"] = _ref("Patient", ids["patient"])
        composition["encounter"] = _ref("Encounter", ids["encounter"])
    entries.append(composition)
    organization: dict[str, Any] = {"resourceType": "Organization", "id": ids["org"], "name": x.clinic.name}
    if x.clinic.npi:
        organization["identifier"] = [{"system": "http://hl7.org/fhir/sid/us-npi", "value": x.clinic.npi}]
    if x.clinic.phone:
        organization["telecom"] = [{"system": "phone", "value": x.clinic.phone}]
    if x.clinic.address:
        organization["address"] = [{"text": x.clinic.address}]
    entries.append(organization)
    if x.client is not None:
        c = x.client
        patient: dict[str, Any] = {
            "resourceType": "Patient", "id": ids["patient"], "meta": meta,
            "identifier": [{"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                                                 "code": "MR"}]}, "value": c.mrn}],
            "name": [{"use": "official", "family": c.family_name, "given": [c.given_name]}]}
        if c.preferred_name:
            patient["name"].append({"use": "usual", "family": c.family_name, "given": [c.preferred_name]})
        if c.date_of_birth:
            patient["birthDate"] = c.date_of_birth.isoformat()
        entries.append(patient)
        encounter: dict[str, Any] = {
            "resourceType": "Encounter", "id": ids["encounter"], "meta": meta, "status": "finished",
            "class": {"system": ACT_CODE, "code": "VR" if x.service and x.service.get("place") in ("02", "10")
                      else "AMB"}, "subject": _ref("Patient", ids["patient"])}
        if x.service:
            encounter["period"] = {"start": x.service["start"], "end": x.service["end"]}
            encounter["length"] = {"value": x.service["minutes"], "unit": "min", "system": "http://unitsofmeasure.org",
                                   "code": "min"}
            if x.service.get("code"):
                encounter["type"] = [{"coding": [{"system": "http://www.ama-assn.org/go/cpt",
                                                  "code": x.service["code"], "display": x.service.get("code_label")}]}]
            if x.service.get("diagnoses"):
                encounter["reasonCode"] = [{"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm",
                                                        "code": d["code"], "display": d["description"]}]}
                                           for d in x.service["diagnoses"]]
        entries.append(encounter)
    for uid, ver in signers.items():
        entries.append(_practitioner(practitioner_ids[uid], ver.signer_name, ver.signer_credential,
                                     ver.signer_licence_number))
    for uid, cos in cosigners.items():
        if uid not in signers:
            entries.append(_practitioner(practitioner_ids[uid], cos.signer_name, cos.signer_credential,
                                         cos.signer_licence_number))
    entries.append({"resourceType": "Device", "id": ids["device"], "deviceName": [{"name": drafted_by,
                                                                                   "type": "model-name"}],
                    "type": {"text": "AI drafting model run on the practice's own server"}})
    docref: dict[str, Any] = {
        "resourceType": "DocumentReference", "id": ids["docref"], "meta": meta, "status": "current",
        "docStatus": "amended" if composition["status"] == "amended" else "final",
        "type": {"coding": [{"system": LOINC, **doc_type}]}, "date": utc_text(latest.signed_at),
        "author": [_ref("Practitioner", practitioner_ids[latest.signer_id])],
        "authenticator": _ref("Practitioner", practitioner_ids[latest.signer_id]),
        "custodian": _ref("Organization", ids["org"]), "securityLabel": [{"coding": [lab]} for lab in meta["security"]],
        "description": x.title + (f". {x.part2_notice}" if x.part2 else ""),
        "content": [{"attachment": {"contentType": "application/fhir+json", "url": f"urn:uuid:{ids['composition']}",
                                    "title": x.title}}]}
    if pdf is not None:
        docref["content"].append({"attachment": {"contentType": "application/pdf", "title": x.title + " (PDF)",
                                                 "data": base64.b64encode(pdf).decode()}})
    if x.client is not None:
        docref["subject"] = _ref("Patient", ids["patient"])
        docref["context"] = {"encounter": [_ref("Encounter", ids["encounter"])]}
    entries.append(docref)
    for v in records:
        entries.append(_provenance(v, practitioner_ids, ids))
    if part2_consent is not None and x.client is not None:
        entries.append(_consent(part2_consent, ids, meta))
    bundle = {"resourceType": "Bundle", "id": str(uuid.uuid4()), "meta": meta, "type": "document",
              "identifier": {"system": "urn:scribe:export", "value": str(uuid.uuid4())},
              "timestamp": utc_text(x.exported_at),
              "entry": [{"fullUrl": f"urn:uuid:{e['id']}", "resource": e} for e in entries]}
    validate(bundle)
    return bundle


def _practitioner(ident: str, name: str, credential: str, licence: str) -> dict[str, Any]:
    practitioner: dict[str, Any] = {"resourceType": "Practitioner", "id": ident, "name": [{"text": name}]}
    if credential or licence:
        practitioner["qualification"] = [{"code": {"text": credential or "licensed clinician"},
                                          **({"identifier": [{"value": licence}]} if licence else {})}]
    return practitioner


def _provenance(v: Any, practitioner_ids: dict[int, str], ids: dict[str, str]) -> dict[str, Any]:
    """One signature: who attested what and when, its meaning and content hash; the AI model
    is the assembler of the draft the author edited and attested."""
    ver = v.version
    who = _ref("Practitioner", practitioner_ids[ver.signer_id])
    agents = [{"type": {"coding": [{"system": PARTICIPATION, "code": "author"}]}, "who": who},
              {"type": {"coding": [{"system": PARTICIPATION, "code": "attester"}]}, "who": who},
              {"type": {"coding": [{"system": PARTICIPATION, "code": "assembler"}]},
               "who": _ref("Device", ids["device"])}]
    signatures = [{"type": [{"system": SIGNATURE_TYPE, "code": "1.2.840.10065.1.12.1.1", "display": "Author's Signature"}],
                   "when": utc_text(ver.signed_at), "who": who, "sigFormat": "text/plain",
                   "data": base64.b64encode(f"{ver.meaning} sha256:{ver.content_sha256}".encode()).decode()}]
    if v.cosign is not None:
        cosigner = _ref("Practitioner", practitioner_ids[v.cosign.supervisor_id])
        agents.append({"type": {"coding": [{"system": PARTICIPATION, "code": "verifier"}]}, "who": cosigner})
        signatures.append({"type": [{"system": SIGNATURE_TYPE, "code": "1.2.840.10065.1.12.1.6",
                                     "display": "Validation Signature"}],
                           "when": utc_text(v.cosign.at), "who": cosigner, "sigFormat": "text/plain",
                           "data": base64.b64encode(f"{v.cosign.meaning} sha256:{v.cosign.content_sha256}"
                                                    .encode()).decode()})
    return {"resourceType": "Provenance", "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"scribe:version:{ver.id}")),
            "target": [_ref("Composition", ids["composition"]), _ref("DocumentReference", ids["docref"])],
            "recorded": utc_text(ver.signed_at), "activity": {"text": f"{ver.kind} signed"},
            "agent": agents, "signature": signatures}


def _consent(terms: dict[str, Any], ids: dict[str, str], meta: dict[str, Any]) -> dict[str, Any]:
    """The client's 42 CFR 2.31 consent, copied into the disclosure it permits."""
    from scribe.domain.consent import part2_summary

    return {"resourceType": "Consent", "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"scribe:consent:{ids['patient']}")),
            "meta": meta, "status": "active", "text": _div(part2_summary(terms, with_signer=True)),
            "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope",
                                  "code": "patient-privacy"}]},
            "category": [{"coding": [{"system": LOINC, "code": "64292-6",
                                      "display": "Release of information consent"}]}],
            "patient": _ref("Patient", ids["patient"]), "dateTime": str(terms.get("signed_on")),
            "policyRule": {"coding": [{"system": ACT_CODE, "code": "42CFRPart2"}]},
            "provision": {"type": "permit", "actor": [{
                "role": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                                     "code": "IRCP", "display": "information recipient"}]},
                "reference": {"display": str(terms.get("recipient"))}}]}}


def validate(bundle: dict[str, Any]) -> None:
    """Every resource checked against the FHIR R4B models (raises on anything malformed)."""
    from fhir.resources.R4B.bundle import Bundle

    Bundle.model_validate(bundle)
