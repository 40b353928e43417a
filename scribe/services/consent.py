"""The consent ledger and where capture is allowed. Every step asks here, at the moment it
runs, whether its consents are in force; the upload and recording controls ask whether
transcription is switched on for this clinician, clinic and note type."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlmodel import Session, col, select

from scribe.db.queries import get_client_for_actor
from scribe.db.tables import (
    Client,
    Consent,
    Encounter,
    EncounterParticipant,
    TranscriptionSwitch,
    User,
)
from scribe.domain.consent import (
    ConsentEntry,
    ConsentState,
    Part2Terms,
    Switch,
    SwitchScope,
    functions_in_force,
    in_force,
    latest,
    names_recipient,
    part2_summary,
    state_of,
    step_decision,
    transcription_decision,
)
from scribe.domain.decision import Decision
from scribe.domain.errors import ConsentMissing, InvalidInput, NotFound, PermissionDenied
from scribe.domain.notes import PIPELINE, EncounterKind, Role
from scribe.policies import Policies
from scribe.services import audit
from scribe.services.files import FileKey, forms

MAX_SCAN_BYTES = 20 << 20


def entries(session: Session, client_id: int) -> list[ConsentEntry]:
    rows = session.exec(select(Consent).where(Consent.client_id == client_id)).all()
    return [ConsentEntry(c.id or 0, c.function, c.granted, c.effective_from, c.expires_at, c.withdrawn_at) for c in rows]


def consents_in_force(session: Session, client_id: int, *, now: datetime, functions: list[str] | None = None) -> set[str]:
    ledger = entries(session, client_id)
    return functions_in_force(ledger, functions or sorted({e.function for e in ledger}), now)


def check_step(session: Session, policies: Policies, *, client_id: int, step: str, now: datetime) -> Decision:
    needed = list(policies.consent.steps.get(step, []))  # type: ignore[call-overload]
    return step_decision(needed, consents_in_force(session, client_id, now=now, functions=needed), step)


def require_step(session: Session, policies: Policies, *, client_id: int, step: str, now: datetime) -> Decision:
    decision = check_step(session, policies, client_id=client_id, step=step, now=now)
    if not decision:
        raise ConsentMissing(f"stopped: {decision.reason}")
    return decision


def require_step_for(session: Session, policies: Policies, encounter: Encounter, *, step: str,
                     now: datetime) -> Decision:
    """A therapy session needs its client's consents for the step; a supervision meeting has
    no client, and needs each participant's agreement to recording, taken at upload."""
    if encounter.kind == EncounterKind.SUPERVISION:
        agreed = session.exec(select(EncounterParticipant).where(
            EncounterParticipant.encounter_id == encounter.id)).all()
        if not agreed:
            raise ConsentMissing(f"step '{step}' stopped: no participant's agreement to recording is on file")
        return Decision.allow(f"{len(agreed)} participant(s) agreed to recording")
    return require_step(session, policies, client_id=encounter.client_id or 0, step=step, now=now)


# --- where transcription is switched on -------------------------------------------------

def current_switch(session: Session, scope: SwitchScope, *, clinic_id: int | None = None,
                   user_id: int | None = None) -> TranscriptionSwitch | None:
    stmt = select(TranscriptionSwitch).where(TranscriptionSwitch.scope == scope)
    if scope == SwitchScope.CLINIC:
        stmt = stmt.where(TranscriptionSwitch.clinic_id == clinic_id)
    elif scope == SwitchScope.CLINICIAN:
        stmt = stmt.where(TranscriptionSwitch.user_id == user_id)
    return session.exec(stmt.order_by(col(TranscriptionSwitch.id).desc()).limit(1)).first()


def switches_for(session: Session, user: User) -> list[Switch | None]:
    rows = [current_switch(session, SwitchScope.PRACTICE),
            current_switch(session, SwitchScope.CLINIC, clinic_id=user.clinic_id),
            current_switch(session, SwitchScope.CLINICIAN, user_id=user.id)]
    return [Switch(SwitchScope(r.scope), r.enabled, tuple(r.note_types)) if r else None for r in rows]


def capture_decision(session: Session, policies: Policies, *, actor: User, client_id: int | None,
                     note_type: str | None, step: str, now: datetime) -> Decision:
    """May this clinician capture (record or upload) for this client and note type now? The
    client must have the consents for capture and for every pipeline step after it: a session
    captured without them would only stop at the first step that needs one."""
    switched = transcription_decision(switches_for(session, actor), note_type)
    if not switched or client_id is None:
        return switched
    needed: list[str] = []
    for name in (step, *(k.value for k in PIPELINE)):
        needed += [f for f in policies.consent.steps.get(name, []) if f not in needed]  # type: ignore[call-overload]
    in_force = consents_in_force(session, client_id, now=now, functions=needed)
    return step_decision(needed, in_force, step)


def require_capture(session: Session, policies: Policies, *, actor: User, client_id: int, note_type: str, step: str,
                    now: datetime) -> Decision:
    decision = capture_decision(session, policies, actor=actor, client_id=client_id, note_type=note_type, step=step,
                                now=now)
    if not decision:
        raise ConsentMissing(decision.reason)
    return decision


# --- the ledger ---------------------------------------------------------------------------

@dataclass
class FunctionStatus:
    function: str
    meaning: str
    state: ConsentState
    entry: Consent | None

    @property
    def withdrawable(self) -> bool:
        """In force (or about to lapse), so a withdrawal can be recorded against it."""
        return self.state in (ConsentState.IN_FORCE, ConsentState.EXPIRING)


@dataclass
class LedgerView:
    client: Client
    statuses: list[FunctionStatus]
    history: list[Consent]
    names: dict[int, str]


def ledger_view(session: Session, key: bytes, policies: Policies, *, actor: User, client_id: int,
                now: datetime) -> LedgerView:
    client = get_client_for_actor(session, actor, client_id)
    rows = list(session.exec(select(Consent).where(Consent.client_id == client.id)
                             .order_by(col(Consent.effective_from), col(Consent.id))).all())
    ledger = [ConsentEntry(c.id or 0, c.function, c.granted, c.effective_from, c.expires_at, c.withdrawn_at) for c in rows]
    by_id = {c.id: c for c in rows}
    soon = timedelta(days=policies.consent.expiring_soon_days)
    statuses = []
    for function, meaning in policies.consent.functions.items():
        e = latest(ledger, function, now)
        statuses.append(FunctionStatus(function, meaning, state_of(ledger, function, now, soon=soon),
                                       by_id.get(e.id) if e else None))
    names = {u.id or 0: u.full_name for u in session.exec(select(User).where(
        col(User.id).in_({c.captured_by for c in rows})))}
    audit.record(session, key, now=now, actor_id=actor.id, action="consent.read", object_type="client",
                 object_id=client.id, reason="own client")
    return LedgerView(client, statuses, list(reversed(rows)), names)


def record_consent(session: Session, key: bytes, policies: Policies, *, actor: User, client_id: int,
                   functions: list[str], effective_from: datetime, expires_at: datetime | None,
                   forms_dir: Path, scan: bytes | None, now: datetime, guardian: int | None = None,
                   part2: Part2Terms | None = None) -> list[Consent]:
    """Grant one or more consents, each with its form's version and exact text as shown. A
    grant made for the client by a guardian names which guardian on the chart (and on what
    authority); a Part 2 disclosure consent records the 2.31 elements, all of them."""
    if actor.role == Role.ADMIN:
        raise PermissionDenied("consents are recorded by the client's clinician or intake staff")
    client = get_client_for_actor(session, actor, client_id)
    unknown = [f for f in functions if f not in policies.consent.functions]
    if not functions or unknown:
        raise InvalidInput("choose at least one consent from the list")
    if expires_at is not None and expires_at <= effective_from:
        raise InvalidInput("the expiry date must be after the effective date")
    details: dict[str, object] = {}
    if guardian is not None:
        if not 0 <= guardian < len(client.guardians):
            raise InvalidInput("choose a guardian on the client's chart (add them to the chart first)")
        details["guardian"] = dict(client.guardians[guardian])
    if "part2_disclosure" in functions:
        missing = part2.problems() if part2 is not None else ["the whole 42 CFR 2.31 section"]
        if missing:
            raise InvalidInput("a consent to disclose Part 2 records needs: " + ", ".join(missing))
        assert part2 is not None  # noqa: S101 - narrows the type; never a guard
        details["part2"] = part2.to_json()
    scan_path, scan_sha = "", ""
    if scan:
        if len(scan) > MAX_SCAN_BYTES:
            raise InvalidInput(f"the scanned form is larger than {MAX_SCAN_BYTES >> 20} MB")
        if not (scan.startswith(b"%PDF") or scan.startswith(b"\x89PNG") or scan.startswith(b"\xff\xd8\xff")):
            raise InvalidInput("attach the scanned form as PDF, PNG or JPEG")
        scan_sha = hashlib.sha256(scan).hexdigest()
        scan_path = _store_scan(FileKey.for_owner(session, f"client:{client.id}", "form", now), forms_dir, scan,
                                scan_sha)
    rows = []
    for function in functions:
        form = policies.consent.forms[function]  # type: ignore[index]
        row = Consent(client_id=client.id or 0, function=function, granted=True, captured_by=actor.id or 0,
                      captured_at=now, form_version=form.version, form_text=form.text,
                      effective_from=effective_from, expires_at=expires_at, scan_path=scan_path, scan_sha256=scan_sha,
                      details={k: v for k, v in details.items() if k != "part2" or function == "part2_disclosure"})
        session.add(row)
        rows.append(row)
    session.flush()
    for row in rows:
        audit.record(session, key, now=now, actor_id=actor.id, action="consent.grant", object_type="consent",
                     object_id=row.id, reason=f"{row.function}, form {row.form_version}"
                     + ("; by a guardian" if guardian is not None else ""), content_sha256=scan_sha)
    return rows


def part2_basis(session: Session, policies: Policies, *, client_id: int, recipient: str, now: datetime,
                qsoa: bool = False) -> tuple[bool, str]:
    """May this client's Part 2 records be disclosed to ``recipient`` now, and on what basis:
    an in-force part2_disclosure consent that names the recipient (or, for a qualified service
    organization, its agreement, 2.12(c)(4)). The basis's text travels with the disclosure."""
    if qsoa:
        return True, f"{recipient} is a qualified service organization under an agreement with the practice"
    terms = part2_terms(session, client_id=client_id, now=now)
    if terms is not None and names_recipient(terms, recipient):
        return True, part2_summary(terms, with_signer=False)
    if terms is not None:
        return False, f"the client's Part 2 consent names another recipient, not {recipient}"
    return False, "no consent to disclose Part 2 records is in force"


def part2_terms(session: Session, *, client_id: int, now: datetime) -> dict[str, object] | None:
    """The 2.31 terms of the part2_disclosure consent in force, if one is."""
    rows = session.exec(select(Consent).where(Consent.client_id == client_id,
                                              Consent.function == "part2_disclosure")).all()
    ledger = [ConsentEntry(c.id or 0, c.function, c.granted, c.effective_from, c.expires_at, c.withdrawn_at) for c in rows]
    if not in_force(ledger, "part2_disclosure", now):
        return None
    entry = latest(ledger, "part2_disclosure", now)
    row = next(c for c in rows if entry is not None and c.id == entry.id)
    terms = (row.details or {}).get("part2")
    return dict(terms) if isinstance(terms, dict) else None


def _store_scan(sealer: FileKey, forms_dir: Path, data: bytes, sha: str) -> str:
    name = f"{sealer.key[0]}-{sha}.form"  # one copy per data key: shredding one client's keys spares others'
    if not (forms_dir / name).exists():
        forms(forms_dir).write_bytes(sealer, name, data)
    return name


def scanned_form(session: Session, key: bytes, *, actor: User, client_id: int, consent_id: int, forms_dir: Path,
                 now: datetime) -> tuple[bytes, str]:
    client = get_client_for_actor(session, actor, client_id)
    row = session.get(Consent, consent_id)
    if row is None or row.client_id != client.id or not row.scan_path:
        raise NotFound("no scanned form for this entry")
    data = forms(forms_dir).read(session.get_bind(), row.scan_path)  # type: ignore[arg-type]
    head = data[:4]
    media = "application/pdf" if head.startswith(b"%PDF") else "image/png" if head.startswith(b"\x89PNG") else "image/jpeg"
    audit.record(session, key, now=now, actor_id=actor.id, action="consent.form.read", object_type="consent",
                 object_id=row.id, reason="own client", content_sha256=row.scan_sha256)
    return data, media
