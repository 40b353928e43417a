"""The supervisor's side: the co-signature queue (each pending note with its AI draft
against the signed text), co-signing or returning with comments, the quality view, and
each supervisee's licensure-hours ledger with its CSV export."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from scribe.db.queries import get_supervisee_for_actor, get_version_for_actor, supervisees_for_actor
from scribe.db.tables import (
    Client,
    Cosignature,
    Draft,
    DraftChange,
    DraftSection,
    DraftSentence,
    Encounter,
    HoursEntry,
    Note,
    NoteVersion,
    User,
)
from scribe.domain.errors import Conflict, InvalidInput, PermissionDenied
from scribe.domain.notes import (
    COSIGN_MEANING,
    FROM_AI_DRAFT,
    CosignOutcome,
    DraftStatus,
    Resolution,
    Role,
    VersionState,
    can_cosign,
    cosignature_sha256,
)
from scribe.domain.supervision import (
    HOURS_LABELS,
    HoursCategory,
    NoteQuality,
    Progress,
    QualitySummary,
    progress,
    summarise,
    word_diff,
)
from scribe.policies import Policies
from scribe.services import accounts, audit, records
from scribe.services.records import VersionView, signer_facts

MAX_COMMENT_CHARS = 4000


@dataclass
class SectionDiff:
    title: str
    runs: list[tuple[str, str]]  # (equal|delete|insert, text): AI draft -> signed text


@dataclass
class PendingNote:
    version: NoteVersion
    encounter: Encounter
    author: User
    client: Client | None
    diffs: list[SectionDiff]
    confirmed: list[tuple[str, str]]  # (flag reason, the clinician's reason for confirming)

    @property
    def from_ai_draft(self) -> bool:
        """Written from the AI draft (an original or a re-signed revision), so the share of AI
        text kept and the edit distance mean something; an addendum or amendment is the
        clinician's own text."""
        return self.version.kind in FROM_AI_DRAFT


def _pending_versions(s: Session, supervisees: list[User]) -> list[tuple[NoteVersion, Note, Encounter]]:
    ids = [u.id for u in supervisees]
    if not ids:
        return []
    decided = select(Cosignature.note_version_id)
    rows = s.exec(select(NoteVersion, Note, Encounter).join(Note, col(Note.id) == NoteVersion.note_id)
                  .join(Encounter, col(Encounter.id) == Note.encounter_id)
                  .where(col(Encounter.clinician_id).in_(ids), col(NoteVersion.requires_cosign).is_(True),
                         col(NoteVersion.id).not_in(decided))
                  .order_by(col(NoteVersion.signed_at))).all()
    return list(rows)


def diffs_for(s: Session, version: NoteVersion, encounter: Encounter) -> list[SectionDiff]:
    """Each section's AI draft against what the supervisee signed (an addendum: its text alone)."""
    draft = s.exec(select(Draft).where(Draft.encounter_id == encounter.id)).first()
    ai = {}
    if draft is not None and version.kind in FROM_AI_DRAFT:
        ai = {x.key: x.ai_text for x in s.exec(select(DraftSection).where(DraftSection.draft_id == draft.id))}
    return [SectionDiff(sec["title"], word_diff(ai.get(sec["key"], ""), sec["text"])) for sec in version.content["sections"]]


def confirmed_flags(s: Session, encounter: Encounter) -> list[tuple[str, str]]:
    draft = s.exec(select(Draft).where(Draft.encounter_id == encounter.id)).first()
    if draft is None:
        return []
    out = [(f["reason"], x.resolution_reason) for x in s.exec(select(DraftSentence).where(
        DraftSentence.draft_id == draft.id, DraftSentence.resolution == Resolution.CONFIRMED)) for f in x.flags]
    out += [(f["reason"], f.get("reason_given", "")) for f in draft.draft_flags if f.get("resolution") == Resolution.CONFIRMED]
    return out


def pending_for(s: Session, key: bytes, *, actor: User, now: datetime) -> list[PendingNote]:
    supervisees = supervisees_for_actor(s, actor)
    authors = {u.id: u for u in supervisees}
    out = []
    for version, _note, encounter in _pending_versions(s, supervisees):
        client = s.get(Client, encounter.client_id) if encounter.client_id else None
        out.append(PendingNote(version, encounter, authors[encounter.clinician_id], client,
                               diffs_for(s, version, encounter), confirmed_flags(s, encounter)))
    for note in out:  # each note shown (its diff is clinical text), in its client's access report
        audit.record(s, key, now=now, actor_id=actor.id, action="cosign.queue.read", object_type="encounter",
                     object_id=note.encounter.id, reason="supervisor of the author")
    return out


def _decide(
    s: Session, key: bytes, *, actor: User, version_id: int, now: datetime
) -> tuple[NoteVersion, Note, Encounter, list[VersionView]]:
    version, note, encounter = get_version_for_actor(s, actor, version_id)
    views = records.history(s, note)
    view = next(v for v in views if v.version.id == version.id)
    author = s.get(User, version.signer_id)
    decision = can_cosign(supervisor=signer_facts(actor), author_supervisor_id=author.supervisor_id if author else None,
                          state=view.state, is_latest=views[-1].version.id == version.id)
    if not decision:
        audit.record_refusal(s, key, now=now, actor_id=actor.id, action="note.cosign.refused",
                             object_type="note_version", object_id=version.id, reason=decision.reason)
        if view.state != VersionState.PENDING_COSIGN or views[-1].version.id != version.id:
            raise Conflict(decision.reason)
        raise PermissionDenied(decision.reason)
    return version, note, encounter, views


def _add_decision(s: Session, *, actor: User, version: NoteVersion, outcome: CosignOutcome, comment: str,
                  now: datetime) -> Cosignature:
    meaning = COSIGN_MEANING if outcome == CosignOutcome.COSIGNED else "Supervisor: returned to the author with comments."
    row = Cosignature(note_version_id=version.id or 0, outcome=outcome, supervisor_id=actor.id or 0,
                      signer_name=actor.full_name, signer_credential=actor.credential,
                      signer_licence_number=actor.licence_number, at=now, meaning=meaning, comment=comment,
                      content_sha256=cosignature_sha256(version_sha256=version.content_sha256, outcome=outcome,
                                                        supervisor_id=actor.id or 0, at=now, meaning=meaning,
                                                        comment=comment))
    s.add(row)
    try:
        s.flush()
    except IntegrityError:
        raise Conflict("another decision on this version was recorded at the same moment; reload") from None
    return row


def cosign(s: Session, key: bytes, policies: Policies, *, actor: User, version_id: int, password: str,
           attested: bool, now: datetime) -> Cosignature:
    version, note, encounter, _ = _decide(s, key, actor=actor, version_id=version_id, now=now)
    accounts.confirm_signature(actor, password, attested=attested, now=now, purpose="cosign")
    row = _add_decision(s, actor=actor, version=version, outcome=CosignOutcome.COSIGNED, comment="", now=now)
    views = records.history(s, note)
    records.sync_status(s, encounter, views, now)
    records.on_record(s, policies, encounter, version, now)
    audit.record(s, key, now=now, actor_id=actor.id, action="note.cosign", object_type="note_version",
                 object_id=version.id, reason="supervisor of the author", content_sha256=row.content_sha256)
    return row


def return_note(s: Session, key: bytes, *, actor: User, version_id: int, comment: str, now: datetime) -> Cosignature:
    """Send a supervisee's signed version back with comments. The version stays in the
    history, marked returned; an original's draft reopens in the supervisee's queue."""
    comment = comment.replace("\r\n", "\n").strip()
    if not 3 <= len(comment) <= MAX_COMMENT_CHARS:
        raise InvalidInput(f"say what to change (3 to {MAX_COMMENT_CHARS} characters)")
    version, note, encounter, _ = _decide(s, key, actor=actor, version_id=version_id, now=now)
    row = _add_decision(s, actor=actor, version=version, outcome=CosignOutcome.RETURNED, comment=comment, now=now)
    if version.kind in FROM_AI_DRAFT:
        draft = s.exec(select(Draft).where(Draft.encounter_id == encounter.id)).one()
        draft.status = DraftStatus.READY
        draft.lock_version += 1
        draft.updated_at = now
        s.add(draft)
        s.add(DraftChange(draft_id=draft.id or 0, version=draft.lock_version, actor_id=actor.id or 0,
                          summary="returned the note with comments", at=now))
        for section in s.exec(select(DraftSection).where(DraftSection.draft_id == draft.id)):
            section.reviewed = False  # the author reviews each section again with the comments in mind
            s.add(section)
    records.sync_status(s, encounter, records.history(s, note), now)
    audit.record(s, key, now=now, actor_id=actor.id, action="note.return", object_type="note_version",
                 object_id=version.id, reason="supervisor of the author", content_sha256=row.content_sha256)
    return row


@dataclass
class SuperviseeSummary:
    user: User
    licence_type: str
    progress: list[Progress]
    quality: QualitySummary
    pending: int


def _quality(s: Session, user: User) -> QualitySummary:
    rows = s.exec(select(NoteVersion).join(Note, col(Note.id) == NoteVersion.note_id)
                  .where(Note.clinician_id == user.id, NoteVersion.signer_id == user.id,
                         col(NoteVersion.kind).in_(FROM_AI_DRAFT))).all()
    cosigns = {c.note_version_id: c.outcome for c in s.exec(select(Cosignature).where(
        col(Cosignature.note_version_id).in_([r.id for r in rows])))}
    signed = [r for r in rows if cosigns.get(r.id or 0) != CosignOutcome.RETURNED]
    return summarise(NoteQuality(r.ai_chars_kept, r.edit_distance, r.zero_edit, r.flags_confirmed) for r in signed)


def hours_done(s: Session, user: User) -> dict[str, float]:
    done: dict[str, float] = {}
    for entry in s.exec(select(HoursEntry).where(HoursEntry.user_id == user.id)):
        done[entry.category] = done.get(entry.category, 0.0) + entry.hours
    return done


def supervisee_progress(s: Session, policies: Policies, user: User) -> tuple[str, list[Progress]]:
    type_key, licence = policies.licence_type(user.licence_type)
    return type_key, progress(hours_done(s, user), licence.targets.model_dump())


def dashboard(s: Session, key: bytes, policies: Policies, *, actor: User, now: datetime) -> list[SuperviseeSummary]:
    """Per supervisee: hours against targets, quality figures, notes waiting for co-signature."""
    if actor.role != Role.SUPERVISOR:
        raise PermissionDenied("the supervision dashboard is for supervisors")
    supervisees = supervisees_for_actor(s, actor)
    waiting: dict[int, int] = {}
    for _v, _n, e in _pending_versions(s, supervisees):
        waiting[e.clinician_id] = waiting.get(e.clinician_id, 0) + 1
    out = []
    for user in supervisees:
        type_key, prog = supervisee_progress(s, policies, user)
        out.append(SuperviseeSummary(user, type_key, prog, _quality(s, user), waiting.get(user.id or 0, 0)))
    audit.record(s, key, now=now, actor_id=actor.id, action="supervision.dashboard.read", object_type="user",
                 object_id=actor.id, reason=f"{len(out)} supervisee(s)")
    return out


def ledger(
    s: Session, key: bytes, policies: Policies, *, actor: User, user_id: int, now: datetime
) -> tuple[User, str, list[Progress], list[HoursEntry]]:
    """A supervisee's ledger, for themselves or their supervisor."""
    user = get_supervisee_for_actor(s, actor, user_id)
    type_key, prog = supervisee_progress(s, policies, user)
    entries = list(s.exec(select(HoursEntry).where(HoursEntry.user_id == user.id).order_by(col(HoursEntry.occurred_at))))
    audit.record(s, key, now=now, actor_id=actor.id, action="hours.read", object_type="user", object_id=user.id,
                 reason="own ledger" if user.id == actor.id else "supervisor of the supervisee")
    return user, type_key, prog, entries


def _cell(value: object) -> str:
    """A spreadsheet must not read a cell as a formula."""
    text = str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


def ledger_csv(user: User, type_key: str, prog: list[Progress], entries: list[HoursEntry]) -> str:
    """One row per ledger line (session ids and hours, no clinical text), then the totals."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["supervisee", "licence_type", "date_utc", "category", "hours", "session_id", "note_version_id"])
    for e in entries:
        w.writerow([_cell(user.full_name), _cell(type_key), e.occurred_at.strftime("%Y-%m-%d"),
                    HOURS_LABELS[HoursCategory(e.category)], f"{e.hours:.2f}", e.encounter_id, e.note_version_id])
    for p in prog:
        w.writerow([_cell(user.full_name), _cell(type_key), "", f"TOTAL {p.label}", f"{p.done:.2f}", "",
                    f"target {p.target:g}"])
    return out.getvalue()
