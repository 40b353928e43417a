"""Review and sign-off: the clinician edits the draft beside the transcript, resolves
every flag, and signs with the password re-entered. A signed version never changes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import NoReturn

from sqlalchemy import update
from sqlmodel import Session, col, select

from scribe.db.engine import changed_rows
from scribe.db.queries import by_emergency_grant, get_encounter_for_actor
from scribe.db.tables import (
    Client,
    Draft,
    DraftChange,
    DraftSection,
    DraftSentence,
    Encounter,
    Note,
    NoteVersion,
    Recording,
    User,
)
from scribe.domain.decision import Decision, Ground
from scribe.domain.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from scribe.domain.evidence import addresses, check_draft, has_safety_plan, split_sentences
from scribe.domain.notes import (
    FROM_AI_DRAFT,
    DraftStatus,
    EncounterKind,
    EncounterStatus,
    Resolution,
    VersionKind,
    VersionState,
    can_sign,
    signature_meaning,
)
from scribe.domain.supervision import edit_distance, share_kept
from scribe.domain.transcript import Segment
from scribe.policies import Policies
from scribe.services import accounts, audit, records
from scribe.services.encounters import ServiceView, service_signing_problem, service_snapshot, service_view
from scribe.services.files import recordings
from scribe.services.pipeline import load_segments, participants
from scribe.services.records import VersionView, signer_facts
from scribe.services.supervision import PendingNote, confirmed_flags, diffs_for

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
    client: Client | None  # None for a supervision meeting
    draft: Draft | None
    sections: list[DraftSection]
    sentences: list[DraftSentence]
    segments: tuple[Segment, ...]
    open_flags: list[OpenFlag]
    versions: list[VersionView]
    access: Decision
    can_sign: Decision
    cited_by: dict[int, list[int]] = field(default_factory=dict)
    participants: list[User] = field(default_factory=list)
    service: ServiceView | None = None
    viewer_id: int | None = None  # who reads the page: what it offers them is decided here, not in the template

    @property
    def emergency(self) -> bool:
        """Read by a break-glass grant: signed notes only, read-only, and the page says so."""
        return by_emergency_grant(self.access)

    @property
    def is_author(self) -> bool:
        return self.viewer_id is not None and self.encounter.clinician_id == self.viewer_id

    @property
    def can_finish_recording(self) -> bool:
        return self.is_author and self.encounter.status == EncounterStatus.RECORDING

    @property
    def can_edit(self) -> bool:
        return self.is_author and self.editing

    @property
    def can_correct(self) -> bool:
        """An addendum or an amendment: the author, on a signed record."""
        return self.is_author and self.encounter.status == EncounterStatus.SIGNED and self.amendable is not None

    @property
    def awaiting_cosign(self) -> bool:
        return self.encounter.status == EncounterStatus.PENDING_COSIGN

    @property
    def revising(self) -> bool:
        """Open again for the author after the supervisor returned it."""
        return self.editing and self.encounter.status == EncounterStatus.RETURNED

    @property
    def shows_draft(self) -> bool:
        """The AI draft, its evidence and the transcript: once drafted, for those who may see sources."""
        return bool(self.draft and self.draft.status in (DraftStatus.READY, DraftStatus.SIGNED) and self.show_source)

    @property
    def title(self) -> str:
        if self.client is not None:
            return self.client.display_name
        return "Supervision with " + ", ".join(u.full_name for u in self.participants)

    @property
    def show_source(self) -> bool:
        return may_see_source(self.access)

    @property
    def has_record(self) -> bool:
        return any(v.is_record for v in self.versions)

    @property
    def editing(self) -> bool:
        """The draft is open for the author: never signed, or returned by the supervisor."""
        return bool(self.draft and self.draft.status == DraftStatus.READY)

    @property
    def amendable(self) -> NoteVersion | None:
        """The newest record carrying the whole note (what an amendment corrects)."""
        full = [v.version for v in self.versions if v.is_record and v.version.kind != VersionKind.ADDENDUM]
        return full[-1] if full else None

    @property
    def returned(self) -> list[VersionView]:
        return [v for v in self.versions if v.state == VersionState.RETURNED]


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
        if f.get("kind") == "risk_no_plan":
            if has_safety_plan(note_text):
                continue  # the note now records a plan or follow-up
        elif f.get("category") and addresses(note_text, f["category"], f.get("polarity", "")):
            continue  # the note now states the risk as the client did
        flags.append(OpenFlag(f"draft:{i}", f["kind"], f["reason"]))
    return flags


def may_see_source(access: Decision) -> bool:
    """A supervisee in a supervision meeting sees the signed supervision note, not the
    recording, transcript or draft (a group meeting discusses others' cases)."""
    return access.ground not in (Ground.PARTICIPANT, Ground.BREAK_GLASS)


def pending_here(s: Session, actor: User, view: ReviewView) -> PendingNote | None:
    """The version on this page waiting for this supervisor's decision, with its diff."""
    latest = view.versions[-1] if view.versions else None
    if latest is None or latest.state != VersionState.PENDING_COSIGN:
        return None
    author = s.get(User, latest.version.signer_id)
    if author is None or author.supervisor_id != actor.id:
        return None
    return PendingNote(latest.version, view.encounter, author, view.client, diffs_for(s, latest.version, view.encounter),
                       confirmed_flags(s, view.encounter))


def _signed_or_pending(views: list[VersionView]) -> bool:
    """Is there a signed original or revision that has not been returned?"""
    return any(v.state != VersionState.RETURNED for v in views
               if v.version.kind in FROM_AI_DRAFT)


def review_view(s: Session, key: bytes, policies: Policies, *, actor: User, encounter_id: int,
                now: datetime) -> ReviewView:
    encounter, access = get_encounter_for_actor(s, actor, encounter_id, now)
    client = s.get(Client, encounter.client_id) if encounter.client_id else None
    draft = _draft_for(s, encounter) if may_see_source(access) else None
    sections = _sections(s, draft) if draft else []
    sentences = _sentences(s, draft) if draft else []
    flags = open_flags(draft, sections, sentences) if draft else []
    versions = records.history(s, records.note_for(s, encounter))
    if by_emergency_grant(access):
        versions = [v for v in versions if v.is_record]  # emergency access opens signed records only
    decision = can_sign(signer=signer_facts(actor), encounter_clinician_id=encounter.clinician_id,
                        draft_ready=bool(draft and draft.status == DraftStatus.READY),
                        already_signed=_signed_or_pending(versions),
                        unresolved_flags=len(flags), unreviewed_sections=sum(1 for x in sections if not x.reviewed),
                        service_problem=service_signing_problem(encounter, policies))
    cited: dict[int, list[int]] = {}
    for sent in sentences:
        for idx in sent.evidence:
            cited.setdefault(idx, []).append(sent.id or 0)
    audit.record(s, key, now=now, actor_id=actor.id, action="encounter.read", object_type="encounter",
                 object_id=encounter.id, reason=access.reason)
    segments = load_segments(s, encounter.id or 0) if may_see_source(access) else ()
    service = service_view(s, policies, encounter, editable=encounter.clinician_id == actor.id) \
        if encounter.kind == EncounterKind.THERAPY and may_see_source(access) else None
    return ReviewView(encounter, client, draft, sections, sentences, segments, flags,
                      versions, access, decision, cited, participants(s, encounter), service, actor.id)


MEDIA = {"wav": "audio/wav", "mp3": "audio/mpeg", "m4a": "audio/mp4", "webm": "audio/webm", "ogg": "audio/ogg"}


def recording_for_actor(s: Session, key: bytes, *, actor: User, encounter_id: int, recordings_dir: Path,
                        now: datetime) -> tuple[bytes, str]:
    """A session's recording, decrypted in memory, and its media type, for someone who may
    hear it (not a meeting participant, not emergency access). Every play is audited."""
    encounter, decision = get_encounter_for_actor(s, actor, encounter_id)
    if not may_see_source(decision):
        raise NotFound("no such recording")
    recording = s.exec(select(Recording).where(Recording.encounter_id == encounter.id)).first()
    if recording is None or recording.purged_at is not None:
        raise NotFound("the audio is no longer retained")
    audit.record(s, key, now=now, actor_id=actor.id, action="recording.play", object_type="encounter",
                 object_id=encounter.id, reason=decision.reason)
    data = recordings(recordings_dir).read(s.get_bind(), recording.path)  # type: ignore[arg-type]
    return data, MEDIA.get(recording.format, "application/octet-stream")


def editable_draft(s: Session, actor: User, encounter_id: int) -> tuple[Encounter, Draft]:
    encounter, _ = get_encounter_for_actor(s, actor, encounter_id)
    if encounter.clinician_id != actor.id:
        raise PermissionDenied("only the session's clinician edits its draft")
    draft = _draft_for(s, encounter)
    if draft is None or draft.status != DraftStatus.READY:
        raise Conflict("the draft is not ready for review")
    return encounter, draft


def check_version(s: Session, draft: Draft, lock_version: int) -> None:
    """Optimistic versioning: a save or sign from a stale page is refused with what changed
    meanwhile (who, what, when), never applied over the newer text. A read, for the early
    answer; ``_claim`` is what makes it hold under concurrency."""
    if draft.lock_version != lock_version:
        _conflict(s, draft, lock_version)


def _conflict(s: Session, draft: Draft, lock_version: int) -> NoReturn:
    s.refresh(draft)
    changes = s.exec(select(DraftChange).where(DraftChange.draft_id == draft.id, DraftChange.version > lock_version)
                     .order_by(col(DraftChange.version))).all()
    names = {u.id: u.full_name for u in s.exec(select(User).where(col(User.id).in_({c.actor_id for c in changes})))}
    what = "; ".join(f"{names.get(c.actor_id, 'someone')} {c.summary} at {c.at:%H:%M:%S} UTC" for c in changes)
    raise Conflict(f"the draft changed since you opened it (your version {lock_version}, now {draft.lock_version}): "
                   f"{what or 'changed'}. Nothing you sent was saved; reload to see the changes")


def claim_version(s: Session, draft: Draft, lock_version: int, actor: User, summary: str, now: datetime) -> None:
    """Compare-and-set the draft's version in the database, before this action's first write.
    The conditional UPDATE also locks the draft row (PostgreSQL) or the database (SQLite)
    until the action commits, so of two saves or signs from pages at the same version one
    wins and the other gets a 409; neither is lost and neither answers 500."""
    won = changed_rows(s, update(Draft).where(col(Draft.id) == draft.id, col(Draft.lock_version) == lock_version)
                          .values(lock_version=lock_version + 1, updated_at=now)
                          .execution_options(synchronize_session=False))
    if won != 1:
        _conflict(s, draft, lock_version)
    s.refresh(draft)
    s.add(DraftChange(draft_id=draft.id or 0, version=lock_version + 1, actor_id=actor.id or 0, summary=summary,
                      at=now))


def save_section(s: Session, key: bytes, *, actor: User, encounter_id: int, section_key: str, text: str,
                 lock_version: int, now: datetime, medicines: frozenset[str], typed_required: str = "",
                 confirmation: str = "") -> Draft:
    """Save a section and mark it reviewed. With ``typed_required`` (the practice's
    section_review: edit_or_typed), a section saved unchanged is marked reviewed only when the
    clinician typed that word; otherwise the save is refused and nothing changes. ``medicines``
    (the pipeline policy's list) is what an edited sentence is checked with again."""
    encounter, draft = editable_draft(s, actor, encounter_id)
    check_version(s, draft, lock_version)
    if len(text) > MAX_SECTION_CHARS:
        raise InvalidInput(f"a section may hold at most {MAX_SECTION_CHARS} characters")
    section = s.exec(select(DraftSection).where(DraftSection.draft_id == draft.id, DraftSection.key == section_key)).first()
    if section is None:
        raise NotFound("no such section")
    text = text.replace("\r\n", "\n").strip()
    changed = text != section.text
    if typed_required and not changed and confirmation.strip().lower() != typed_required.lower():
        raise InvalidInput(f"this practice asks you to edit the section, or type \"{typed_required}\" to confirm "
                           "it unchanged")
    claim_version(s, draft, lock_version, actor, f"{'edited' if changed else 'marked reviewed'} section '{section.title}'",
           now)
    section.edited = section.edited or changed
    section.text = text
    section.reviewed = True
    segments: tuple[Segment, ...] | None = None
    existing = s.exec(select(DraftSentence).where(DraftSentence.draft_id == draft.id,
                                                  DraftSentence.section_key == section_key)).all()
    for sent in existing:
        if sent.flags and not sent.resolution and sent.text not in text:
            if segments is None:
                segments = load_segments(s, encounter.id or 0)
            still = recheck_edited(sent.text, [f["kind"] for f in sent.flags], section_key, text, segments, medicines)
            if still is None:  # the claim is gone, or now agrees with what was said
                sent.resolution, sent.resolved_by, sent.resolved_at = Resolution.EDITED, actor.id, now
            else:  # reworded, and still wrong: the flag follows the new wording
                sent.text, sent.flags = still
            s.add(sent)
    if changed and encounter.kind != EncounterKind.SUPERVISION:
        _check_what_the_clinician_wrote(s, draft, section, existing, text,
                                        segments if segments is not None else load_segments(s, encounter.id or 0))
    s.add(section)
    # The session, not the draft: a draft is purged by retention, and its events must still
    # name whose information they touched.
    audit.record(s, key, now=now, actor_id=actor.id, action="draft.edit", object_type="encounter",
                 object_id=encounter.id, reason=f"draft #{draft.id}, section {section_key}")
    return draft


CLINICIAN_TEXT_CHECKS = frozenset({"risk_polarity", "risk_unstated", "contradiction"})


def _check_what_the_clinician_wrote(s: Session, draft: Draft, section: DraftSection, existing: Sequence[DraftSentence],
                                    text: str, segments: tuple[Segment, ...]) -> None:
    """Sentences the clinician wrote (in neither the AI draft nor an earlier check) are checked
    against the transcript too: a risk stated otherwise than the client said it, one the session
    never mentions, or a claim the transcript contradicts becomes a flag to fix or confirm with a
    reason. (Diagnoses and plans are the clinician's to write: they are not removed.)"""
    seen = {x.text for x in existing}
    new = [x for x in split_sentences(text) if x not in seen and x not in section.ai_text]
    if not new:
        return
    idx = max((x.idx for x in existing), default=-1) + 1
    for checked in check_draft([(section.key, x) for x in new], segments).sentences:
        flags = [f.to_json() for f in checked.flags if f.kind.value in CLINICIAN_TEXT_CHECKS]
        if flags:
            s.add(DraftSentence(draft_id=draft.id or 0, section_key=section.key, idx=idx, text=checked.text,
                                evidence=list(checked.evidence), support=checked.score, flags=flags))
            idx += 1


def recheck_edited(before: str, kinds: list[str], section_key: str, section_text: str,
                   segments: tuple[Segment, ...], medicines: frozenset[str]) -> tuple[str, list[dict[str, str]]] | None:
    """An edit resolves a flagged sentence only if it addresses the flag. The sentence the
    edit made of it (the most similar sentence of the section, if any is close) is checked
    again against the transcript; if a flag of the same kind comes back, that sentence and its
    flags are returned (still open). None when the sentence is gone or now passes."""
    from difflib import SequenceMatcher

    candidates = split_sentences(section_text)
    if not candidates:
        return None
    after = max(candidates, key=lambda c: SequenceMatcher(None, before, c).ratio())
    if SequenceMatcher(None, before, after).ratio() < REWORDED:
        return None  # nothing in the section is a rewording of it: the claim was removed
    # A sentence flagged as misplaced was in a section of observations: check it as one again.
    observed = frozenset({section_key}) if "misplaced" in kinds else frozenset()
    checked = check_draft([(section_key, after)], segments, observed=observed, medicines=medicines)
    flags = [f for c in checked.sentences + checked.removed for f in c.flags if f.kind.value in kinds]
    return (after, [f.to_json() for f in flags]) if flags else None


REWORDED = 0.6  # how close a sentence must stay to count as the same claim reworded


def resolve_flag(s: Session, key: bytes, *, actor: User, encounter_id: int, target: str, reason: str,
                 lock_version: int, now: datetime) -> Draft:
    """Confirm a flagged sentence (or an unaddressed risk) with a short reason; kept for review."""
    encounter, draft = editable_draft(s, actor, encounter_id)
    check_version(s, draft, lock_version)
    reason = reason.strip()
    if not 3 <= len(reason) <= 500:
        raise InvalidInput("give a short reason (3 to 500 characters) for confirming")
    kind, _, ident = target.partition(":")
    if kind not in ("sentence", "draft") or not ident.isdigit():
        raise NotFound("no such flag")
    claim_version(s, draft, lock_version, actor, "confirmed a flag", now)
    if kind == "sentence" and ident.isdigit():
        sent = s.get(DraftSentence, int(ident))
        if sent is None or sent.draft_id != draft.id:
            raise NotFound("no such flag")
        sent.resolution, sent.resolution_reason, sent.resolved_by, sent.resolved_at = Resolution.CONFIRMED, reason, actor.id, now
        s.add(sent)
    elif kind == "draft" and ident.isdigit() and int(ident) < len(draft.draft_flags):
        flags = [dict(f) for f in draft.draft_flags]
        flags[int(ident)].update(resolution=Resolution.CONFIRMED.value, reason_given=reason, by=actor.id, at=now.isoformat())
        draft.draft_flags = flags
    else:
        raise NotFound("no such flag")
    audit.record(s, key, now=now, actor_id=actor.id, action="draft.flag.confirm", object_type="encounter",
                 object_id=encounter.id, reason=f"draft #{draft.id}, {target}")
    return draft


def attestation(policies: Policies, sections: list[DraftSection]) -> str:
    """What the signer attests: the wording follows what happened (edited or not)."""
    edited = any(x.edited for x in sections)
    return policies.signing.attestation if edited else policies.signing.attestation_unedited


def typed_confirmation(policies: Policies) -> str:
    """The word a section saved unchanged needs under section_review: edit_or_typed ("" otherwise)."""
    signing = policies.signing
    return signing.typed_confirmation if signing.section_review == "edit_or_typed" else ""


def ai_share_kept(sections: list[DraftSection]) -> float:
    return share_kept(" ".join(x.ai_text for x in sections), " ".join(x.text for x in sections))


def sign(s: Session, key: bytes, policies: Policies, *, actor: User, encounter_id: int, password: str,
         attested: bool, lock_version: int, now: datetime) -> NoteVersion:
    """Sign the reviewed draft. A licensed clinician's signature makes it a record; a
    supervisee's waits for the supervisor. After a return, signing again adds a revision."""
    encounter, draft = editable_draft(s, actor, encounter_id)
    check_version(s, draft, lock_version)
    accounts.confirm_signature(actor, password, attested=attested, now=now, purpose="sign")
    sections = _sections(s, draft)
    sentences = _sentences(s, draft)
    note = records.note_for(s, encounter)
    views = records.history(s, note)
    decision = can_sign(signer=signer_facts(actor), encounter_clinician_id=encounter.clinician_id,
                        draft_ready=True, already_signed=_signed_or_pending(views),
                        unresolved_flags=len(open_flags(draft, sections, sentences)),
                        unreviewed_sections=sum(1 for x in sections if not x.reviewed),
                        service_problem=service_signing_problem(encounter, policies))
    if not decision:
        audit.record_refusal(s, key, now=now, actor_id=actor.id, action="note.sign.refused", object_type="encounter",
                             object_id=encounter.id, reason=decision.reason)
        raise PermissionDenied(decision.reason)
    zero_edit = not any(x.edited for x in sections)
    if zero_edit and not policies.signing.allow_zero_edit_signing:
        raise PermissionDenied("practice policy requires you to edit the draft before signing")
    claim_version(s, draft, lock_version, actor, "signed the note", now)
    if note is None:
        note = Note(encounter_id=encounter.id or 0, clinician_id=actor.id or 0, created_at=now)
        s.add(note)
        s.flush()
    returned = [v.version for v in views if v.state == VersionState.RETURNED]
    confirmed = sum(1 for x in sentences if x.resolution == Resolution.CONFIRMED) + sum(
        1 for f in draft.draft_flags if f.get("resolution") == Resolution.CONFIRMED)
    ai_text, final = " ".join(x.ai_text for x in sections), " ".join(x.text for x in sections)
    version = records.add_version(
        s, note=note, encounter=encounter, actor=actor,
        kind=VersionKind.REVISION if returned else VersionKind.ORIGINAL,
        sections=tuple((x.key, x.title, x.text) for x in sections), meaning=signature_meaning(edited=not zero_edit), now=now,
        supersedes=returned[-1] if returned else None, zero_edit=zero_edit, ai_chars_kept=share_kept(ai_text, final),
        edit_distance=edit_distance(ai_text, final), flags_confirmed=confirmed,
        service=service_snapshot(s, policies, encounter))
    draft.status = DraftStatus.SIGNED
    s.add(draft)
    records.after_new_version(s, policies, encounter, note, version, now)
    audit.record(s, key, now=now, actor_id=actor.id, action="note.sign", object_type="note_version",
                 object_id=version.id, reason=decision.reason, content_sha256=version.content_sha256)
    return version


def verify_version(version: NoteVersion) -> bool:
    """Does the stored content still hash to what was signed?"""
    from scribe.domain.notes import content_sha256

    return content_sha256(version.content) == version.content_sha256
