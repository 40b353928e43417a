"""A session as a billable service, and what a clinician does to a session besides reviewing
it: set its time, place, type and attendees and confirm its service code; void it (purging
what it made, with a receipt); move it to the right client (re-sealed under that client's
keys, re-redacted against that client's chart); retry a failed step; find it in the queue."""

from __future__ import annotations

import io
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

from sqlalchemy import delete, func
from sqlalchemy.orm.attributes import flag_modified
from sqlmodel import Session, col, select

from scribe.db.clients import matching_ids
from scribe.db.queries import get_client_for_actor, get_encounter_for_actor, queue_labels, supervisee_ids
from scribe.db.sealing.columns import sealed_columns
from scribe.db.tables import (
    Client,
    DeletionReceipt,
    Draft,
    DraftChange,
    DraftSection,
    DraftSentence,
    Encounter,
    EncounterAttendee,
    EncounterParticipant,
    Job,
    Note,
    Pseudonymization,
    Recording,
    Transcript,
    TranscriptSegment,
    User,
)
from scribe.domain.billing import (
    SERVICE_LABELS,
    WITH_OTHERS,
    ServiceType,
    Suggestion,
    check_service_time,
    minutes_of,
    suggest_code,
)
from scribe.domain.clients import ClientStatus
from scribe.domain.errors import Conflict, InvalidInput, PermissionDenied
from scribe.domain.notes import (
    PROCESSING,
    STATUS_WHILE_RUNNING,
    EncounterKind,
    EncounterStatus,
    JobKind,
    JobStatus,
    VoidReason,
    content_sha256,
)
from scribe.policies import Policies
from scribe.services import audit
from scribe.services.consent import require_capture, require_step_for
from scribe.services.files import FileKey, recordings
from scribe.services.purge import purge_artefact

MAX_ATTENDEES = 12


@dataclass
class ServiceView:
    """What the session page shows and edits about the service."""

    start: datetime | None
    end: datetime | None
    minutes: int
    place: str
    service_type: str
    code: str  # confirmed, or ""
    suggestion: Suggestion
    confirmed_by: str
    attendees: list[EncounterAttendee]
    editable: bool
    places: dict[str, str]
    types: dict[str, str]
    codes: dict[str, str]
    with_others: bool = False
    chart_diagnoses: list[dict[str, str]] = field(default_factory=list)


def _signed(s: Session, encounter: Encounter) -> bool:
    return s.exec(select(Note).where(Note.encounter_id == encounter.id)).first() is not None


def service_view(s: Session, policies: Policies, encounter: Encounter, *, editable: bool) -> ServiceView:
    start, end = encounter.service_start, encounter.service_end
    minutes = minutes_of(start, end) if start and end else 0
    billing = policies.billing
    who = s.get(User, encounter.service_confirmed_by) if encounter.service_confirmed_by else None
    attendees = list(s.exec(select(EncounterAttendee).where(EncounterAttendee.encounter_id == encounter.id)
                            .order_by(col(EncounterAttendee.idx))))
    client = s.get(Client, encounter.client_id) if encounter.client_id else None
    return ServiceView(start, end, minutes, encounter.place_of_service, encounter.service_type, encounter.service_code,
                       suggest_code(billing.codes, encounter.service_type, minutes), who.full_name if who else "",
                       attendees, editable and not _signed(s, encounter), dict(billing.places_of_service),
                       {t.value: SERVICE_LABELS[t] for t in ServiceType},
                       {code: rule.label for code, rule in billing.codes.items()},
                       ServiceType(encounter.service_type) in WITH_OTHERS,
                       list(client.diagnoses) if client else [])


def _own_unsigned(s: Session, actor: User, encounter_id: int) -> Encounter:
    encounter, _ = get_encounter_for_actor(s, actor, encounter_id)
    if encounter.clinician_id != actor.id:
        raise PermissionDenied("only the session's clinician changes it")
    if _signed(s, encounter):
        raise Conflict("the note is signed: the session is a record now (add an addendum instead)")
    if encounter.status == EncounterStatus.VOIDED:
        raise Conflict("this session was voided")
    return encounter


def set_service(s: Session, key: bytes, policies: Policies, *, actor: User, encounter_id: int, start: datetime,
                end: datetime, place: str, service_type: str, code: str, attendees: list[tuple[str, str]],
                now: datetime) -> Encounter:
    """Save the time, place, type and attendees of the service and confirm its code (the
    suggestion is only preselected on the form; what the clinician submits is the code)."""
    encounter = _own_unsigned(s, actor, encounter_id)
    if encounter.kind != EncounterKind.THERAPY:
        raise InvalidInput("supervision meetings are not billed services")
    check_service_time(start, end, now=now)
    if place not in policies.billing.places_of_service:
        raise InvalidInput("choose the place of service")
    try:
        kind = ServiceType(service_type)
    except ValueError:
        raise InvalidInput("choose the type of service") from None
    if code and code not in policies.billing.codes:
        raise InvalidInput("that code is not one of this practice's service codes (policies/billing.yaml)")
    people = [(" ".join(n.split())[:120], " ".join(r.split())[:60]) for n, r in attendees if n.strip()]
    if len(people) > MAX_ATTENDEES:
        raise InvalidInput(f"at most {MAX_ATTENDEES} other participants")
    if people and kind not in WITH_OTHERS:
        raise InvalidInput("other participants are listed for couples, family and group sessions only")
    encounter.service_start, encounter.service_end = start, end
    encounter.place_of_service, encounter.service_type = place, kind.value
    encounter.service_code = code
    encounter.service_confirmed_by, encounter.service_confirmed_at = (actor.id, now) if code else (None, None)
    encounter.updated_at = now
    s.add(encounter)
    s.execute(delete(EncounterAttendee).where(col(EncounterAttendee.encounter_id) == encounter.id))
    s.flush()
    for i, (name, relation) in enumerate(people):
        s.add(EncounterAttendee(encounter_id=encounter.id or 0, idx=i, name=name, relation=relation))
    suggestion = suggest_code(policies.billing.codes, kind.value, minutes_of(start, end))
    audit.record(s, key, now=now, actor_id=actor.id, action="encounter.service", object_type="encounter",
                 object_id=encounter.id, reason=f"{kind.value}, {minutes_of(start, end)} min, place {place}, code "
                 f"{code or 'not confirmed'}{'' if code == (suggestion.code or '') else ' (not the suggestion)'}")
    return encounter


def service_signing_problem(encounter: Encounter, policies: Policies) -> str:
    """Why the note cannot be signed yet as far as the service goes ("" when it can)."""
    if encounter.kind != EncounterKind.THERAPY or not policies.signing.require_service_code:
        return ""
    if not (encounter.service_start and encounter.service_end and encounter.place_of_service):
        return "set the date, time and place of service"
    if not encounter.service_code:
        return "confirm the service code"
    return ""


def service_snapshot(s: Session, policies: Policies, encounter: Encounter) -> dict[str, object] | None:
    """What a signature covers of the service: its time, place, type, confirmed code, other
    participants and the diagnoses the clinician entered on the chart."""
    if encounter.kind != EncounterKind.THERAPY or not encounter.service_start or not encounter.service_end:
        return None
    from scribe.domain.notes import utc_text

    client = s.get(Client, encounter.client_id) if encounter.client_id else None
    rule = policies.billing.codes.get(encounter.service_code)
    attendees = s.exec(select(EncounterAttendee).where(EncounterAttendee.encounter_id == encounter.id)
                       .order_by(col(EncounterAttendee.idx))).all()
    return {"start": utc_text(encounter.service_start), "end": utc_text(encounter.service_end),
            "minutes": minutes_of(encounter.service_start, encounter.service_end),
            "place": encounter.place_of_service,
            "place_name": policies.billing.places_of_service.get(encounter.place_of_service, ""),
            "type": encounter.service_type, "code": encounter.service_code, "code_label": rule.label if rule else "",
            "attendees": [{"name": a.name, "relation": a.relation} for a in attendees],
            "diagnoses": list(client.diagnoses) if client else []}


# --- void, move, retry --------------------------------------------------------------------


def _stop_jobs(s: Session, encounter: Encounter, why: str, now: datetime) -> None:
    """Queued jobs stop; a running one finds, at its commit, that it is no longer its own."""
    for job in s.exec(select(Job).where(Job.encounter_id == encounter.id,
                                        col(Job.status).in_([JobStatus.QUEUED, JobStatus.RUNNING]))):
        job.status, job.error, job.lease_until, job.updated_at = JobStatus.STOPPED, why, None, now
        s.add(job)


def void_session(s: Session, key: bytes, *, actor: User, encounter_id: int, reason: str,
                 now: datetime) -> DeletionReceipt:
    """A session recorded in error is voided before its note is signed: its audio (and any
    chunks), transcript, pseudonymization, draft and attendee list are purged, with a receipt
    for its client (a legal hold keeps them, and the receipt says so)."""
    encounter = _own_unsigned(s, actor, encounter_id)
    try:
        why = VoidReason(reason)
    except ValueError:
        raise InvalidInput("choose why the session is voided") from None
    _stop_jobs(s, encounter, f"voided: {why.value}", now)
    items: list[dict[str, object]] = []
    for artefact in ("audio", "transcript", "draft"):
        items += purge_artefact(s, encounter.id or 0, artefact, now)
    held = any(item.get("kept") for item in items)
    attendees = s.exec(select(EncounterAttendee).where(EncounterAttendee.encounter_id == encounter.id)).all()
    if attendees and not held:
        items.append({"artefact": "participants", "session_id": encounter.id, "count": len(attendees)})
        s.execute(delete(EncounterAttendee).where(col(EncounterAttendee.encounter_id) == encounter.id))
    encounter.status, encounter.status_reason, encounter.updated_at = EncounterStatus.VOIDED, why.value, now
    s.add(encounter)
    rule = f"session voided: {why.value}" + (" (kept under legal hold: nothing deleted)" if held else "")
    receipt = _receipt(s, encounter.client_id, rule, items, actor, now)
    audit.record(s, key, now=now, actor_id=actor.id, action="encounter.void", object_type="encounter",
                 object_id=encounter.id, reason=why.value, content_sha256=receipt.receipt_sha256 if receipt else "")
    return receipt  # type: ignore[return-value]


def _receipt(s: Session, client_id: int | None, rule: str, items: list[dict[str, object]], actor: User,
             now: datetime) -> DeletionReceipt | None:
    if client_id is None:
        return None
    receipt = DeletionReceipt(client_id=client_id, rule=rule, at=now, by=actor.id, items=items,
                              receipt_sha256=content_sha256({"client_id": client_id, "rule": rule,
                                                             "at": now.isoformat(), "items": items}))
    s.add(receipt)
    s.flush()
    return receipt


@dataclass
class Moved:
    encounter: Encounter
    stale_files: list[str]  # the recording sealed under the wrong client: removed after the commit


def move_session(s: Session, key: bytes, policies: Policies, *, actor: User, encounter_id: int, client_id: int,
                 recordings_dir: Path, now: datetime) -> Moved:
    """Move an unsigned session to the right client. Everything it made is re-sealed under
    that client's keys (the recording as a new file, the transcript segments in place); the
    pseudonymization and draft, made against the wrong chart, are removed (with a receipt
    for the wrong client) and redone against the right one."""
    encounter = _own_unsigned(s, actor, encounter_id)
    if encounter.kind != EncounterKind.THERAPY or encounter.client_id is None:
        raise InvalidInput("only a therapy session belongs to a client")
    if encounter.status == EncounterStatus.RECORDING:
        raise Conflict("finish (or void) the recording first")
    running = s.exec(select(Job).where(Job.encounter_id == encounter.id, Job.status == JobStatus.RUNNING)).first()
    if running is not None:
        raise Conflict(f"the {running.kind} step is running: move the session when it has finished")
    target = get_client_for_actor(s, actor, client_id)
    if target.id == encounter.client_id:
        raise InvalidInput("the session already belongs to that client")
    if target.status != ClientStatus.ACTIVE:
        raise Conflict("that client is discharged")
    decision = require_capture(s, policies, actor=actor, client_id=target.id or 0, note_type=encounter.note_type,
                               step="upload", now=now)
    wrong = encounter.client_id
    encounter.client_id, encounter.updated_at = target.id, now
    encounter.part2 = encounter.part2 or target.part2_program  # a Part 2 tag is never dropped by a move
    s.add(encounter)
    s.flush()
    stale: list[str] = []
    recording = s.exec(select(Recording).where(Recording.encounter_id == encounter.id)).first()
    if recording is not None and recording.purged_at is None:
        store = recordings(recordings_dir)
        data = store.read(s.get_bind(), recording.path)  # type: ignore[arg-type]
        rel = f"{uuid.uuid4().hex}.{recording.format}"
        store.write(FileKey.for_owner(s, f"client:{target.id}", "audio", now), rel, io.BytesIO(data))
        stale.append(recording.path)
        recording.path = rel
        s.add(recording)
    _reseal(s, _segments(s, encounter))
    attendees = list(s.exec(select(EncounterAttendee).where(EncounterAttendee.encounter_id == encounter.id)))
    _reseal(s, attendees)
    items = _drop_derived(s, encounter)
    restart = _restart_after_transcript(s, policies, encounter, now)
    receipt = _receipt(s, wrong, "session moved to another client: its recording and transcript re-sealed under "
                       "that client's keys; what was made against this chart removed", items, actor, now)
    audit.record(s, key, now=now, actor_id=actor.id, action="encounter.move", object_type="encounter",
                 object_id=encounter.id, reason=f"from client #{wrong} to client #{target.id}; {decision.reason}; "
                 f"resumes at {restart}", content_sha256=receipt.receipt_sha256 if receipt else "")
    return Moved(encounter, stale)


def _segments(s: Session, encounter: Encounter) -> list[TranscriptSegment]:
    transcript = s.exec(select(Transcript).where(Transcript.encounter_id == encounter.id)).first()
    if transcript is None:
        return []
    return list(s.exec(select(TranscriptSegment).where(TranscriptSegment.transcript_id == transcript.id)))


def _reseal(s: Session, rows: Sequence[object]) -> None:
    """Seal these rows' values again, under the key their (changed) scope names now."""
    for row in rows:
        for column, _ in sealed_columns(type(row)):
            flag_modified(row, column)
        s.add(row)


def _drop_derived(s: Session, encounter: Encounter) -> list[dict[str, object]]:
    items: list[dict[str, object]] = []
    p = s.exec(select(Pseudonymization).where(Pseudonymization.encounter_id == encounter.id)).first()
    if p is not None:
        items.append({"artefact": "pseudonymized transcript and re-identification map", "session_id": encounter.id,
                      "sha256": content_sha256({"lines": p.lines, "map": p.surrogates})})
        s.delete(p)
    d = s.exec(select(Draft).where(Draft.encounter_id == encounter.id)).first()
    if d is not None:
        items.append({"artefact": "AI draft", "session_id": encounter.id, "sha256": content_sha256(d.ai_sections)})
        for table in (DraftSentence, DraftSection, DraftChange):
            s.execute(delete(table).where(col(table.draft_id) == d.id))
        s.delete(d)
    return items


def _restart_after_transcript(s: Session, policies: Policies, encounter: Encounter, now: datetime) -> str:
    """Queue the pipeline again from pseudonymizing (or from transcribing if it never got
    that far)."""
    has_transcript = s.exec(select(Transcript).where(Transcript.encounter_id == encounter.id)).first() is not None
    keep = {JobKind.TRANSCRIBE} if has_transcript else set()
    for job in s.exec(select(Job).where(Job.encounter_id == encounter.id)):
        if job.kind not in keep:
            s.delete(job)
    s.flush()
    first = JobKind.PSEUDONYMIZE if has_transcript else JobKind.TRANSCRIBE
    s.add(Job(encounter_id=encounter.id or 0, kind=first, status=JobStatus.QUEUED,
              max_attempts=policies.pipeline.max_attempts, run_after=now, created_at=now, updated_at=now))
    encounter.status = STATUS_WHILE_RUNNING[first] if has_transcript else EncounterStatus.UPLOADED
    encounter.status_reason = ""
    s.add(encounter)
    return first.value


def retry_stage(s: Session, key: bytes, policies: Policies, *, actor: User, encounter_id: int, now: datetime) -> Job:
    """Run a failed (or consent-stopped) step again, with its attempts reset. Consents are
    checked now, as the step will check them again when it runs."""
    encounter = _own_unsigned(s, actor, encounter_id)
    if encounter.status not in (EncounterStatus.FAILED, EncounterStatus.STOPPED):
        raise Conflict("only a failed or stopped step can be retried")
    job = s.exec(select(Job).where(Job.encounter_id == encounter.id, Job.kind != JobKind.LIVE,
                                   col(Job.status).in_([JobStatus.FAILED, JobStatus.STOPPED]))
                 .order_by(col(Job.id).desc())).first()
    if job is None:
        raise Conflict("there is no failed step to retry")
    require_step_for(s, policies, encounter, step=job.kind, now=now)
    job.status, job.attempts, job.error, job.run_after, job.lease_until = JobStatus.QUEUED, 0, "", now, None
    job.updated_at = now
    encounter.status = EncounterStatus.UPLOADED if job.kind == JobKind.TRANSCRIBE else STATUS_WHILE_RUNNING[JobKind(job.kind)]
    encounter.status_reason, encounter.updated_at = "", now
    s.add(job)
    s.add(encounter)
    audit.record(s, key, now=now, actor_id=actor.id, action="pipeline.retry", object_type="encounter",
                 object_id=encounter.id, reason=job.kind)
    return job


# --- the queue ----------------------------------------------------------------------------


@dataclass
class QueuePage:
    rows: list[tuple[Encounter, str]]
    total: int
    page: int
    pages: int


def queue(s: Session, actor: User, *, query: str = "", status: str = "", day_from: date | None = None,
          day_to: date | None = None, page: int = 1, per_page: int = 25, key: bytes | None = None,
          now: datetime | None = None) -> QueuePage:
    """The actor's sessions (own, supervisees', meetings attended), newest first, searched by
    client (name words or MRN, through the blind index), status and date of service. Given
    the audit key, each session shown (its client's name) is audited."""
    ids = [actor.id, *supervisee_ids(s, actor)]
    met = select(EncounterParticipant.encounter_id).where(EncounterParticipant.user_id == actor.id)
    stmt = (select(Encounter).where(Encounter.clinic_id == actor.clinic_id)
            .where(col(Encounter.clinician_id).in_(ids) | col(Encounter.id).in_(met)))
    if query.strip():
        stmt = stmt.where(col(Encounter.client_id).in_(matching_ids(s, actor.clinic_id, query[:100]) or {-1}))
    if status == "processing":
        stmt = stmt.where(col(Encounter.status).in_([str(x) for x in PROCESSING]))
    elif status:
        stmt = stmt.where(Encounter.status == status)
    when = func.coalesce(Encounter.service_start, Encounter.occurred_at)
    if day_from:  # dates are UTC days, as every time scribe shows
        stmt = stmt.where(when >= datetime.combine(day_from, time.min, tzinfo=UTC))
    if day_to:
        stmt = stmt.where(when < datetime.combine(day_to + timedelta(days=1), time.min, tzinfo=UTC))
    total = int(s.exec(select(func.count()).select_from(stmt.subquery())).one())
    pages = max(1, -(-total // per_page))
    page = min(max(1, page), pages)
    found = list(s.exec(stmt.order_by(when.desc(), col(Encounter.id).desc())
                        .offset((page - 1) * per_page).limit(per_page)).all())
    if key is not None and now is not None:
        for e in found:
            audit.record(s, key, now=now, actor_id=actor.id, action="encounter.list", object_type="encounter",
                         object_id=e.id, reason="review queue")
    return QueuePage(list(zip(found, queue_labels(s, found), strict=True)), total, page, pages)
