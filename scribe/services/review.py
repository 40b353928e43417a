"""Review and sign-off: the clinician edits the draft beside the transcript, resolves
every flag, and signs with the password re-entered. A signed version never changes."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from difflib import SequenceMatcher

from sqlmodel import Session, col, select

from scribe.db.queries import get_encounter_for_actor
from scribe.db.tables import (
    Client,
    Draft,
    DraftSection,
    DraftSentence,
    Encounter,
    Note,
    NoteVersion,
    User,
)
from scribe.domain.decision import Decision
from scribe.domain.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from scribe.domain.evidence import risk_in_sentence
from scribe.domain.notes import (
    SIGNATURE_MEANING,
    LicenceStatus,
    Role,
    SignedContent,
    SignerFacts,
    VersionKind,
    can_sign,
    status_after_signing,
)
from scribe.domain.transcript import Segment
from scribe.policies import Policies
from scribe.services import accounts, audit
from scribe.services.pipeline import load_segments

MAX_SECTION_CHARS = 20_000


@dataclass
class OpenFlag:
    target: str  # "sentence:<id>" or "draft:<n>"
    kind: str
    reason: str
    sentence: str = ""


@dataclass
class ReviewView:
    encounter: Encounter
    client: Client
    draft: Draft | None
    sections: list[DraftSection]
    sentences: list[DraftSentence]
    segments: tuple[Segment, ...]
    open_flags: list[OpenFlag]
    versions: list[NoteVersion]
    access: Decision
    can_sign: Decision
    cited_by: dict[int, list[int]] = field(default_factory=dict)


def _draft_for(s: Session, encounter: Encounter) -> Draft | None:
    return s.exec(select(Draft).where(Draft.encounter_id == encounter.id)).first()


def _sections(s: Session, draft: Draft) -> list[DraftSection]:
    return list(s.exec(select(DraftSection).where(DraftSection.draft_id == draft.id).order_by(col(DraftSection.position))).all())


def _sentences(s: Session, draft: Draft) -> list[DraftSentence]:
    return list(s.exec(select(DraftSentence).where(DraftSentence.draft_id == draft.id).order_by(col(DraftSentence.id))).all())


def open_flags(draft: Draft, sections: list[DraftSection], sentences: list[DraftSentence]) -> list[OpenFlag]:
    """Flags still to resolve. A flagged sentence is resolved by confirming it with a reason,
    or by editing it out of its section; a risk the note did not address, by confirming it or
    by the note now addressing it."""
    texts = {sec.key: sec.text for sec in sections}
    flags: list[OpenFlag] = []
    for sent in sentences:
        if not sent.flags or sent.resolution:
            continue
        if sent.text not in texts.get(sent.section_key, ""):
            continue  # edited or deleted by the clinician: recorded at save time
        for f in sent.flags:
            flags.append(OpenFlag(f"sentence:{sent.id}", f["kind"], f["reason"], sent.text))
    note_text = " ".join(texts.values())
    for i, f in enumerate(draft.draft_flags):
        if f.get("resolution"):
            continue
        if any(c == f.get("category") for c, _ in risk_in_sentence(note_text)):
            continue
        flags.append(OpenFlag(f"draft:{i}", f["kind"], f["reason"]))
    return flags


def signer_facts(user: User) -> SignerFacts:
    return SignerFacts(user.id or 0, Role(user.role), LicenceStatus(user.licence_status), user.active)


def review_view(s: Session, key: bytes, *, actor: User, encounter_id: int, now: datetime) -> ReviewView:
    encounter, access = get_encounter_for_actor(s, actor, encounter_id)
    client = s.get(Client, encounter.client_id)
    assert client is not None
    draft = _draft_for(s, encounter)
    sections = _sections(s, draft) if draft else []
    sentences = _sentences(s, draft) if draft else []
    flags = open_flags(draft, sections, sentences) if draft else []
    note = s.exec(select(Note).where(Note.encounter_id == encounter.id)).first()
    versions = list(s.exec(select(NoteVersion).where(NoteVersion.note_id == note.id)
                           .order_by(col(NoteVersion.version))).all()) if note else []
    decision = can_sign(signer=signer_facts(actor), encounter_clinician_id=encounter.clinician_id,
                        draft_ready=bool(draft and draft.status == "ready"), already_signed=bool(versions),
                        unresolved_flags=len(flags), unreviewed_sections=sum(1 for x in sections if not x.reviewed))
    cited: dict[int, list[int]] = {}
    for sent in sentences:
        for idx in sent.evidence:
            cited.setdefault(idx, []).append(sent.id or 0)
    audit.record(s, key, now=now, actor_id=actor.id, action="encounter.read", object_type="encounter",
                 object_id=encounter.id, reason=access.reason)
    return ReviewView(encounter, client, draft, sections, sentences, load_segments(s, encounter.id or 0), flags,
                      versions, access, decision, cited)


def _editable(s: Session, actor: User, encounter_id: int) -> tuple[Encounter, Draft]:
    encounter, _ = get_encounter_for_actor(s, actor, encounter_id)
    if encounter.clinician_id != actor.id:
        raise PermissionDenied("only the session's clinician edits its draft")
    draft = _draft_for(s, encounter)
    if draft is None or draft.status != "ready":
        raise Conflict("the draft is not ready for review")
    return encounter, draft


def _check_version(draft: Draft, lock_version: int) -> None:
    if draft.lock_version != lock_version:
        raise Conflict(f"the draft changed since you opened it (your version {lock_version}, now "
                       f"{draft.lock_version}); reload to see the changes")


def save_section(s: Session, key: bytes, *, actor: User, encounter_id: int, section_key: str, text: str,
                 lock_version: int, now: datetime) -> Draft:
    encounter, draft = _editable(s, actor, encounter_id)
    _check_version(draft, lock_version)
    if len(text) > MAX_SECTION_CHARS:
        raise InvalidInput(f"a section may hold at most {MAX_SECTION_CHARS} characters")
    section = s.exec(select(DraftSection).where(DraftSection.draft_id == draft.id, DraftSection.key == section_key)).first()
    if section is None:
        raise NotFound("no such section")
    text = text.replace("\r\n", "\n").strip()
    section.edited = section.edited or text != section.text
    section.text = text
    section.reviewed = True
    for sent in s.exec(select(DraftSentence).where(DraftSentence.draft_id == draft.id,
                                                   DraftSentence.section_key == section_key)).all():
        if sent.flags and not sent.resolution and sent.text not in text:
            sent.resolution, sent.resolved_by, sent.resolved_at = "edited", actor.id, now
            s.add(sent)
    draft.lock_version += 1
    draft.updated_at = now
    s.add(section)
    s.add(draft)
    audit.record(s, key, now=now, actor_id=actor.id, action="draft.edit", object_type="draft", object_id=draft.id,
                 reason=f"section {section_key}")
    return draft


def resolve_flag(s: Session, key: bytes, *, actor: User, encounter_id: int, target: str, reason: str,
                 lock_version: int, now: datetime) -> Draft:
    """Confirm a flagged sentence (or an unaddressed risk) with a short reason; kept for review."""
    encounter, draft = _editable(s, actor, encounter_id)
    _check_version(draft, lock_version)
    reason = reason.strip()
    if not 3 <= len(reason) <= 500:
        raise InvalidInput("give a short reason (3 to 500 characters) for confirming")
    kind, _, ident = target.partition(":")
    if kind == "sentence" and ident.isdigit():
        sent = s.get(DraftSentence, int(ident))
        if sent is None or sent.draft_id != draft.id:
            raise NotFound("no such flag")
        sent.resolution, sent.resolution_reason, sent.resolved_by, sent.resolved_at = "confirmed", reason, actor.id, now
        s.add(sent)
    elif kind == "draft" and ident.isdigit() and int(ident) < len(draft.draft_flags):
        flags = [dict(f) for f in draft.draft_flags]
        flags[int(ident)].update(resolution="confirmed", reason_given=reason, by=actor.id, at=now.isoformat())
        draft.draft_flags = flags
    else:
        raise NotFound("no such flag")
    draft.lock_version += 1
    draft.updated_at = now
    s.add(draft)
    audit.record(s, key, now=now, actor_id=actor.id, action="draft.flag.confirm", object_type="draft",
                 object_id=draft.id, reason=target)
    return draft


def ai_share_kept(sections: list[DraftSection]) -> float:
    ai = " ".join(x.ai_text for x in sections)
    final = " ".join(x.text for x in sections)
    if not ai:
        return 0.0
    matcher = SequenceMatcher(None, ai, final, autojunk=False)
    return round(sum(b.size for b in matcher.get_matching_blocks()) / len(ai), 3)


def sign(s: Session, key: bytes, policies: Policies, *, actor: User, encounter_id: int, password: str,
         attested: bool, lock_version: int, now: datetime) -> NoteVersion:
    encounter, draft = _editable(s, actor, encounter_id)
    _check_version(draft, lock_version)
    accounts.reauthenticate(actor, password)
    if not attested:
        raise InvalidInput("tick the attestation to sign")
    sections = _sections(s, draft)
    note = s.exec(select(Note).where(Note.encounter_id == encounter.id)).first()
    decision = can_sign(signer=signer_facts(actor), encounter_clinician_id=encounter.clinician_id,
                        draft_ready=True, already_signed=note is not None,
                        unresolved_flags=len(open_flags(draft, sections, _sentences(s, draft))),
                        unreviewed_sections=sum(1 for x in sections if not x.reviewed))
    if not decision:
        audit.record_refusal(s, key, now=now, actor_id=actor.id, action="note.sign.refused", object_type="encounter",
                             object_id=encounter.id, reason=decision.reason)
        raise PermissionDenied(decision.reason)
    zero_edit = not any(x.edited for x in sections)
    if zero_edit and not policies.signing.allow_zero_edit_signing:
        raise PermissionDenied("practice policy requires you to edit the draft before signing")
    content = SignedContent(encounter_id=encounter.id or 0, note_type=encounter.note_type,
                            sections=tuple((x.key, x.title, x.text) for x in sections), signer_id=actor.id or 0,
                            signed_at=now, meaning=SIGNATURE_MEANING)
    if note is None:
        note = Note(encounter_id=encounter.id or 0, clinician_id=actor.id or 0, created_at=now)
        s.add(note)
        s.flush()
    version = NoteVersion(note_id=note.id or 0, version=1, kind=VersionKind.ORIGINAL, note_type=encounter.note_type,
                          content=content.to_canonical(), content_sha256=content.sha256(), signer_id=actor.id or 0,
                          signer_name=actor.full_name, signer_credential=actor.credential,
                          signer_licence_number=actor.licence_number, signed_at=now, meaning=SIGNATURE_MEANING,
                          zero_edit=zero_edit, ai_chars_kept=ai_share_kept(sections))
    s.add(version)
    draft.status = "signed"
    draft.lock_version += 1
    encounter.status = status_after_signing(LicenceStatus(actor.licence_status))
    encounter.updated_at = now
    s.add(draft)
    s.add(encounter)
    s.flush()
    audit.record(s, key, now=now, actor_id=actor.id, action="note.sign", object_type="note_version",
                 object_id=version.id, reason=decision.reason, content_sha256=version.content_sha256)
    return version


def verify_version(version: NoteVersion) -> bool:
    """Does the stored content still hash to what was signed?"""
    from scribe.domain.notes import content_sha256

    return content_sha256(version.content) == version.content_sha256
