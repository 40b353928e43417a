"""Signed records: each note's versions with their co-signature state, the session status
that follows from them, corrections (addenda and amendments), the licensure hours a new
record feeds, and the plain-text export. Versions and co-signatures are append-only."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, func, select

from scribe.db.queries import get_encounter_for_actor
from scribe.db.tables import (
    Cosignature,
    Encounter,
    EncounterParticipant,
    HoursEntry,
    Note,
    NoteVersion,
    Recording,
    User,
)
from scribe.domain.errors import Conflict, InvalidInput, PermissionDenied
from scribe.domain.notes import (
    ADDENDUM_MEANING,
    AMENDMENT_MEANING,
    FROM_AI_DRAFT,
    CosignOutcome,
    EncounterKind,
    LicenceStatus,
    Role,
    SignedContent,
    SignerFacts,
    VersionKind,
    VersionState,
    can_correct,
    status_from_versions,
    version_state,
)
from scribe.domain.supervision import HoursCategory, hours, supervision_category
from scribe.policies import Policies
from scribe.services import accounts, audit
from scribe.services.consent import check_step
from scribe.services.purge import purge_encounter_audio

MAX_CORRECTION_CHARS = 20_000


@dataclass
class VersionView:
    version: NoteVersion
    cosign: Cosignature | None
    state: VersionState
    amended_by: int | None = None  # the version number of the amendment that superseded it

    @property
    def is_record(self) -> bool:
        return self.state == VersionState.RECORD

    @property
    def awaiting_cosign(self) -> bool:
        return self.state == VersionState.PENDING_COSIGN

    @property
    def returned(self) -> bool:
        return self.state == VersionState.RETURNED

    @property
    def cosigned(self) -> bool:
        return self.cosign is not None and self.cosign.outcome == CosignOutcome.COSIGNED


def signer_facts(user: User) -> SignerFacts:
    return SignerFacts(user.id or 0, Role(user.role), LicenceStatus(user.licence_status), user.active)


def note_for(s: Session, encounter: Encounter) -> Note | None:
    return s.exec(select(Note).where(Note.encounter_id == encounter.id)).first()


def history(s: Session, note: Note | None) -> list[VersionView]:
    if note is None:
        return []
    versions = s.exec(select(NoteVersion).where(NoteVersion.note_id == note.id).order_by(col(NoteVersion.version))).all()
    ids = [v.id for v in versions]
    cosigns = {c.note_version_id: c for c in s.exec(select(Cosignature).where(col(Cosignature.note_version_id).in_(ids)))}
    views = [
        VersionView(
            v,
            cosigns.get(v.id or 0),
            version_state(v.requires_cosign, getattr(cosigns.get(v.id or 0), "outcome", None)),
        )
        for v in versions
    ]
    by_id = {v.version.id: v for v in views}
    for v in views:
        if v.version.kind == VersionKind.AMENDMENT and v.is_record and v.version.supersedes_id in by_id:
            by_id[v.version.supersedes_id].amended_by = v.version.version
    return views


def sync_status(s: Session, encounter: Encounter, views: list[VersionView], now: datetime) -> None:
    encounter.status = status_from_versions([(v.version.kind, v.state) for v in views])
    encounter.updated_at = now
    s.add(encounter)


def add_version(s: Session, *, note: Note, encounter: Encounter, actor: User, kind: VersionKind,
                sections: tuple[tuple[str, str, str], ...], meaning: str, now: datetime,
                supersedes: NoteVersion | None = None, service: dict[str, object] | None = None,
                **quality: Any) -> NoteVersion:
    content = SignedContent(encounter_id=encounter.id or 0, note_type=encounter.note_type, sections=sections,
                            signer_id=actor.id or 0, signed_at=now, meaning=meaning, kind=kind.value,
                            supersedes_sha256=supersedes.content_sha256 if supersedes else "",
                            part2=encounter.part2, service=service)
    number = (s.exec(select(func.max(NoteVersion.version)).where(NoteVersion.note_id == note.id)).one() or 0) + 1
    version = NoteVersion(note_id=note.id or 0, version=number, kind=kind, note_type=encounter.note_type,
                          supersedes_id=supersedes.id if supersedes else None, content=content.to_canonical(),
                          content_sha256=content.sha256(), signer_id=actor.id or 0, signer_name=actor.full_name,
                          signer_credential=actor.credential, signer_licence_number=actor.licence_number,
                          signed_at=now, meaning=meaning,
                          requires_cosign=actor.licence_status == LicenceStatus.PRE_LICENSURE, **quality)
    s.add(version)
    s.flush()
    return version


def feed_hours(s: Session, encounter: Encounter, version: NoteVersion, now: datetime) -> list[HoursEntry]:
    """A session's first record feeds the ledger: a supervisee's own session counts as direct
    client contact; a supervision meeting as individual (one supervisee) or group supervision."""
    if version.kind not in FROM_AI_DRAFT:
        return []
    recording = s.exec(select(Recording).where(Recording.encounter_id == encounter.id)).first()
    duration = hours(recording.duration_seconds if recording else 0.0)
    if encounter.kind == EncounterKind.SUPERVISION:
        people = s.exec(select(EncounterParticipant).where(EncounterParticipant.encounter_id == encounter.id)).all()
        category = supervision_category(len(people))
        lines = [(p.user_id, category) for p in people]
    else:
        author = s.get(User, encounter.clinician_id)
        lines = [(author.id or 0, HoursCategory.DIRECT_CONTACT)] if author and author.supervisor_id else []
    added = []
    for user_id, category in lines:
        exists = s.exec(select(HoursEntry).where(HoursEntry.user_id == user_id, HoursEntry.encounter_id == encounter.id,
                                                 HoursEntry.category == category)).first()
        if exists is None:
            entry = HoursEntry(user_id=user_id, category=category, hours=duration, encounter_id=encounter.id or 0,
                               note_version_id=version.id or 0, occurred_at=encounter.occurred_at, recorded_at=now)
            s.add(entry)
            added.append(entry)
    return added


def on_record(s: Session, policies: Policies, encounter: Encounter, version: NoteVersion, now: datetime) -> None:
    """A version just became a record: feed the hours ledger, and drop the audio of a session
    whose client has not consented to keeping it after the note is signed (with a receipt)."""
    feed_hours(s, encounter, version, now)
    if encounter.client_id is None or version.kind not in FROM_AI_DRAFT:
        return
    if not check_step(s, policies, client_id=encounter.client_id, step="keep_audio", now=now):
        recording = s.exec(select(Recording).where(Recording.encounter_id == encounter.id)).first()
        if recording is not None and recording.purged_at is None:
            purge_encounter_audio(s, client_id=encounter.client_id, encounter_id=encounter.id or 0,
                                  rule="keep_audio not in force: audio removed once the note was signed", now=now)


def after_new_version(s: Session, policies: Policies, encounter: Encounter, note: Note, version: NoteVersion,
                      now: datetime) -> list[VersionView]:
    views = history(s, note)
    sync_status(s, encounter, views, now)
    if next(v for v in views if v.version.id == version.id).is_record:
        on_record(s, policies, encounter, version, now)
    return views


def correct(s: Session, key: bytes, policies: Policies, *, actor: User, encounter_id: int, kind: VersionKind, password: str,
            attested: bool, now: datetime, texts: dict[str, str] | None = None, addendum: str = "") -> NoteVersion:
    """Add an addendum (new text after the record) or an amendment (corrected sections that
    supersede the record). The earlier version stays unchanged and shown."""
    encounter, _ = get_encounter_for_actor(s, actor, encounter_id)
    note = note_for(s, encounter)
    views = history(s, note)
    records = [v for v in views if v.is_record]
    decision = can_correct(signer=signer_facts(actor), author_id=note.clinician_id if note else encounter.clinician_id,
                           has_record=bool(records), pending=any(v.state == VersionState.PENDING_COSIGN for v in views))
    if not decision:
        raise PermissionDenied(decision.reason)
    accounts.confirm_signature(actor, password, attested=attested, now=now, purpose=kind.value)
    assert note is not None  # noqa: S101 - narrows the type; never a guard
    latest = records[-1].version
    if kind == VersionKind.ADDENDUM:
        text = addendum.replace("\r\n", "\n").strip()
        if not 3 <= len(text) <= MAX_CORRECTION_CHARS:
            raise InvalidInput(f"write the addendum (3 to {MAX_CORRECTION_CHARS} characters)")
        sections: tuple[tuple[str, str, str], ...] = (("addendum", "Addendum", text),)
        meaning = ADDENDUM_MEANING
        supersedes = latest
    elif kind == VersionKind.AMENDMENT:
        base = _latest_full_text(views)
        texts = {k: v.replace("\r\n", "\n").strip() for k, v in (texts or {}).items()}
        if any(len(v) > MAX_CORRECTION_CHARS for v in texts.values()):
            raise InvalidInput(f"a section may hold at most {MAX_CORRECTION_CHARS} characters")
        sections = tuple((sec["key"], sec["title"], texts.get(sec["key"], sec["text"])) for sec in base.content["sections"])
        if all(text == sec["text"] for (_, _, text), sec in zip(sections, base.content["sections"], strict=False)):
            raise InvalidInput("the amendment changes nothing; edit the section(s) to correct")
        meaning = AMENDMENT_MEANING
        supersedes = base
    else:
        raise InvalidInput("a correction is an addendum or an amendment")
    version = add_version(s, note=note, encounter=encounter, actor=actor, kind=kind, sections=sections,
                          meaning=meaning, now=now, supersedes=supersedes)
    after_new_version(s, policies, encounter, note, version, now)
    audit.record(s, key, now=now, actor_id=actor.id, action=f"note.{kind.value}", object_type="note_version",
                 object_id=version.id, reason=decision.reason, content_sha256=version.content_sha256)
    return version


def _latest_full_text(views: list[VersionView]) -> NoteVersion:
    """The version an amendment corrects: the newest record that carries the whole note."""
    full = [v.version for v in views if v.is_record and v.version.kind != VersionKind.ADDENDUM]
    if not full:
        raise Conflict("no signed note to amend")
    return full[-1]


def export_text(s: Session, key: bytes, policies: Policies, *, actor: User, encounter_id: int, password: str,
                now: datetime) -> str:
    """The record as plain text (see services.exports, which the PDF and FHIR exports share)."""
    from scribe.services.exports import prepare_export, render_text

    return render_text(prepare_export(s, key, policies, actor=actor, encounter_id=encounter_id, password=password,
                                      now=now, fmt="text"))


