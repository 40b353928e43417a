"""The session pipeline: transcribe -> pseudonymize -> draft -> evidence.

Each stage reads its inputs, runs its engine outside any transaction, then writes its
outputs, marks its job done and queues the next stage in one transaction. A crash
before that commit leaves the job to be resumed (its lease expires); a crash after it
finds the stage done. Consent is checked when a stage starts and again at its commit."""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import delete
from sqlmodel import Session, col, select

from scribe.db.engine import session_scope
from scribe.db.queries import is_part2_client
from scribe.db.tables import (
    Client,
    Clinic,
    Draft,
    DraftSection,
    DraftSentence,
    Encounter,
    EncounterParticipant,
    Job,
    Pseudonymization,
    Recording,
    Transcript,
    TranscriptSegment,
    User,
)
from scribe.domain.chart import (
    LEFT_OUT,
    ChartFacts,
    Contact,
    cases_found,
    known_identifiers,
    leave_out_cases,
    supervision_identifiers,
    supervision_reverse,
)
from scribe.domain.errors import ConsentMissing, EngineError
from scribe.domain.evidence import Flag, FlagKind, check_draft, split_sentences
from scribe.domain.notes import (
    DraftStatus,
    EncounterKind,
    EncounterStatus,
    JobKind,
    JobStatus,
    content_sha256,
    next_stage,
)
from scribe.domain.redaction import KnownIdentifier, SurrogateMap, reidentify
from scribe.domain.transcript import Segment, Speaker, Word, model_line
from scribe.engines.protocols import Deadline, PseudonymizedTranscript, SectionRequest
from scribe.services import audit
from scribe.services.consent import check_step, part2_basis, require_step, require_step_for
from scribe.services.jobs import LeaseLost, encounter_of, hold_lease

if TYPE_CHECKING:
    from scribe.runtime import Runtime

log = logging.getLogger("scribe.pipeline")

Clock = Callable[[], datetime]


class CrashPoint(Exception):
    """Raised by the fault-injection hook in tests (inert unless a test sets one)."""


def _fault(crash_at: str | None, point: str) -> None:
    """Fault injection for crash-safety tests: inert unless ``crash_at`` names this point.
    With SCRIBE_CRASH_HARD=1 the process dies at once, as under kill -9."""
    if crash_at != point:
        return
    if os.environ.get("SCRIBE_CRASH_HARD") == "1":
        os._exit(137)
    raise CrashPoint(point)


def run_job(rt: Runtime, job: Job, *, crash_at: str | None = None) -> None:
    """Run one claimed job to its recorded outcome."""
    started = time.perf_counter()
    kind = JobKind(job.kind)
    if kind == JobKind.LIVE:  # not a stage: it runs again as the recording grows
        from scribe.services import live

        live.run(rt, job)
        return
    log.info("job %s start kind=%s encounter=%s attempt=%s", job.id, kind.value, job.encounter_id, job.attempts)
    try:
        with session_scope(rt.engine) as s:
            encounter = encounter_of(s, job)
            require_step_for(s, rt.policies, encounter, step=kind.value, now=rt.clock())
        _fault(crash_at, f"start:{kind.value}")
        # Transcription and drafting check their own deadlines as they go; the pure-CPU
        # stages (bounded by the pattern budget) are checked when they return.
        checked_after = kind in (JobKind.PSEUDONYMIZE, JobKind.EVIDENCE)
        deadline = Deadline.after(rt.policies.pipeline.timeouts.other_seconds, kind.value) if checked_after else None
        output = STAGES[kind](rt, job)
        if deadline is not None:
            deadline.check()
        _fault(crash_at, f"before-commit:{kind.value}")
        with session_scope(rt.engine) as s:
            hold_lease(s, job, rt.clock())
            encounter = encounter_of(s, job)
            decision = require_step_for(s, rt.policies, encounter, step=kind.value, now=rt.clock())
            output.write(s, encounter)
            _complete(s, rt, job, encounter, key=output_key(job, output.input_sha256),
                      seconds=time.perf_counter() - started, reason=decision.reason)
            s.flush()
            _fault(crash_at, f"in-commit:{kind.value}")  # written, not yet committed
        _fault(crash_at, f"after-commit:{kind.value}")
        log.info("job %s done kind=%s encounter=%s seconds=%.2f", job.id, kind.value, job.encounter_id,
                 time.perf_counter() - started)
    except CrashPoint:
        raise
    except LeaseLost:
        # Another worker took the job over (this one stalled past its lease): its outcome
        # is that worker's to record; this one writes nothing.
        log.warning("job %s lease lost kind=%s encounter=%s: output discarded", job.id, kind.value,
                    job.encounter_id)
    except ConsentMissing as exc:
        _stop(rt, job, exc.public_message, JobStatus.STOPPED, EncounterStatus.STOPPED)
    except EngineError as exc:
        log.warning("job %s engine error kind=%s encounter=%s retryable=%s type=%s", job.id, kind.value,
                    job.encounter_id, exc.retryable, exc.__class__.__name__)
        _fail_or_retry(rt, job, exc.public_message, retryable=exc.retryable)
    except Exception as exc:
        # The class and ids only: a traceback prints the exception's message, and a message
        # can quote clinical text (a redaction error quoting its input).
        log.error("job %s crashed kind=%s encounter=%s type=%s", job.id, kind.value, job.encounter_id,
                      exc.__class__.__name__)
        _fail_or_retry(rt, job, f"internal error in {kind.value} ({exc.__class__.__name__})", retryable=True)


Writer = Callable[[Session, Encounter], None]


@dataclasses.dataclass(frozen=True)
class Output:
    """A stage's result, ready to commit: how to write it, and the hash of what it was made
    from (its output key is (session, stage, input hash))."""

    write: Writer
    input_sha256: str


def output_key(job: Job, input_sha256: str) -> str:
    return f"{job.encounter_id}:{job.kind}:{input_sha256}"


def _complete(s: Session, rt: Runtime, job: Job, encounter: Encounter, *, key: str, seconds: float,
              reason: str) -> None:
    """The stage done, in the transaction that wrote its output: its output key (unique in the
    database) is set with it, and the next stage queued."""
    now = rt.clock()
    row = s.get(Job, job.id)
    assert row is not None  # noqa: S101 - narrows the type; never a guard
    row.status, row.lease_until, row.error, row.seconds_taken, row.updated_at = JobStatus.DONE, None, "", seconds, now
    row.output_key = key
    s.add(row)
    following = next_stage(JobKind(job.kind))
    if following is not None:
        exists = s.exec(select(Job).where(Job.encounter_id == job.encounter_id, Job.kind == following)).first()
        if exists is None:
            s.add(Job(encounter_id=job.encounter_id, kind=following, status=JobStatus.QUEUED,
                      max_attempts=rt.policies.pipeline.max_attempts, run_after=now, created_at=now, updated_at=now))
    else:
        encounter.status = EncounterStatus.IN_REVIEW
    encounter.status_reason = ""
    encounter.updated_at = now
    s.add(encounter)
    audit.record(s, rt.audit_key, now=now, actor_id=None, action=f"pipeline.{job.kind}", object_type="encounter",
                 object_id=encounter.id, reason=f"{reason} [output {key}]".strip())


def _fail_or_retry(rt: Runtime, job: Job, message: str, *, retryable: bool) -> None:
    if retryable and job.attempts < job.max_attempts:
        now = rt.clock()
        with session_scope(rt.engine) as s:
            row = s.get(Job, job.id)
            assert row is not None  # noqa: S101 - narrows the type; never a guard
            row.status, row.error, row.lease_until = JobStatus.QUEUED, message, None
            row.run_after = now + timedelta(seconds=5 * 2 ** row.attempts)
            row.updated_at = now
            s.add(row)
        return
    _stop(rt, job, message, JobStatus.FAILED, EncounterStatus.FAILED)


def _stop(rt: Runtime, job: Job, message: str, job_status: JobStatus, status: EncounterStatus) -> None:
    now = rt.clock()
    with session_scope(rt.engine) as s:
        row = s.get(Job, job.id)
        encounter = s.get(Encounter, job.encounter_id)
        assert row is not None and encounter is not None  # noqa: S101 - narrows the type; never a guard
        row.status, row.error, row.lease_until, row.updated_at = job_status, message, None, now
        encounter.status, encounter.status_reason, encounter.updated_at = status, message, now
        s.add(row)
        s.add(encounter)
        audit.record(s, rt.audit_key, now=now, actor_id=None, action=f"pipeline.{job.kind}.{job_status.value}",
                     object_type="encounter", object_id=encounter.id, reason=message)
    log.warning("job %s %s kind=%s encounter=%s", job.id, job_status.value, job.kind, job.encounter_id)


# --- stages -----------------------------------------------------------------------------


def load_segments(s: Session, encounter_id: int) -> tuple[Segment, ...]:
    transcript = s.exec(select(Transcript).where(Transcript.encounter_id == encounter_id)).first()
    if transcript is None:
        return ()
    rows = s.exec(select(TranscriptSegment).where(TranscriptSegment.transcript_id == transcript.id)
                  .order_by(col(TranscriptSegment.idx))).all()
    return tuple(Segment(r.idx, r.start, r.end, r.text, Speaker(r.speaker),
                         tuple(Word(*w) for w in r.words)) for r in rows)


def _transcribe(rt: Runtime, job: Job) -> Output:
    from scribe.services.transcription import transcribe_stage

    return transcribe_stage(rt, job)


def _facts(client: Client, clinician_name: str = "", practice_name: str = "") -> ChartFacts:
    return ChartFacts(
        given_name=client.given_name, family_name=client.family_name, preferred_name=client.preferred_name,
        date_of_birth=client.date_of_birth, mrn=client.mrn, address=client.address, city=client.city,
        phone=client.phone, email=client.email, employer=client.employer, school=client.school,
        contacts=tuple(Contact(c.get("name", ""), c.get("relation", ""), c.get("phone", "")) for c in client.contacts),
        clinician_name=clinician_name, practice_name=practice_name)


def chart_for(s: Session, encounter: Encounter) -> ChartFacts:
    client = s.get(Client, encounter.client_id)
    clinician = s.get(User, encounter.clinician_id)
    clinic = s.get(Clinic, encounter.clinic_id)
    assert client is not None  # noqa: S101 - narrows the type; never a guard
    return _facts(client, clinician.full_name if clinician else "", clinic.name if clinic else "")


def participants(s: Session, encounter: Encounter) -> list[User]:
    rows = s.exec(select(EncounterParticipant).where(EncounterParticipant.encounter_id == encounter.id)
                  .order_by(col(EncounterParticipant.id))).all()
    return [u for u in (s.get(User, r.user_id) for r in rows) if u is not None]


def known_for(s: Session, encounter: Encounter) -> list[KnownIdentifier]:
    if encounter.kind != EncounterKind.SUPERVISION:
        return known_identifiers(chart_for(s, encounter))
    # Supervision: cases are discussed by reference. Every identifier of every client of the
    # supervisor and the participants is known and never restored; staff names are.
    people = [encounter.clinician_id, *(u.id or 0 for u in participants(s, encounter))]
    clients = s.exec(select(Client).where(Client.clinic_id == encounter.clinic_id)
                     .where(col(Client.clinician_id).in_(people))).all()
    staff = [u.full_name for u in (s.get(User, i) for i in people) if u is not None]
    clinic = s.get(Clinic, encounter.clinic_id)
    return supervision_identifiers([(c.id or 0, _facts(c)) for c in clients], staff, clinic.name if clinic else "")


def _pseudonymize(rt: Runtime, job: Job) -> Output:
    with session_scope(rt.engine) as s:
        encounter = encounter_of(s, job)
        segments = load_segments(s, encounter.id or 0)
        known = known_for(s, encounter)
        client_id = encounter.client_id
    redactor = rt.require_engines().redactor
    # What the output is made from: the lines, whose chart the known names came from, and the redactor.
    made_from = content_sha256([[[x.index, x.speaker.value, x.text] for x in segments], client_id,
                                getattr(redactor, "name", "?")])
    result = redactor.pseudonymize(segments, known)

    def write(s: Session, encounter: Encounter) -> None:
        kept, lines = result.segments, list(result.lines)
        refused = {c for c in cases_found(result.surrogates)  # checked at the commit, as every consent
                   if not check_step(s, rt.policies, client_id=c, step="supervision", now=rt.clock())} \
            if encounter.kind == EncounterKind.SUPERVISION else set()
        if refused:
            kept = leave_out_cases(result.segments, result.surrogates, refused)
            lines = [model_line(x) for x in kept]
        # A meeting that discussed a Part 2 case (one left out included) is a Part 2 record too.
        if encounter.kind == EncounterKind.SUPERVISION and not encounter.part2 and any(
                is_part2_client(s, c) for c in cases_found(result.surrogates)):
            encounter.part2 = True
            s.add(encounter)
        s.execute(delete(Pseudonymization).where(col(Pseudonymization.encounter_id) == encounter.id))
        s.add(Pseudonymization(encounter_id=encounter.id or 0, engine=getattr(redactor, "name", "?"),
                               lines=lines, segment_texts=[x.text for x in kept],
                               surrogates=result.surrogates.to_json(), entity_counts=result.entity_counts,
                               created_at=rt.clock()))

    return Output(write, made_from)


def load_pseudonymized(s: Session, encounter_id: int) -> PseudonymizedTranscript:
    p = s.exec(select(Pseudonymization).where(Pseudonymization.encounter_id == encounter_id)).one()
    original = load_segments(s, encounter_id)
    segments = tuple(
        Segment(o.index, o.start, o.end, text, o.speaker) for o, text in zip(original, p.segment_texts, strict=False)
    )
    return PseudonymizedTranscript.restore(tuple(p.lines), segments, SurrogateMap.from_json(p.surrogates),
                                           dict(p.entity_counts))


def _draft(rt: Runtime, job: Job) -> Output:
    from scribe.services import digests

    with session_scope(rt.engine) as s:
        encounter = encounter_of(s, job)
        transcript = load_pseudonymized(s, encounter.id or 0)
        drafter = rt.require_engines().drafter
        noted = digests.stored(s.exec(select(Transcript).where(Transcript.encounter_id == encounter.id)).first()) \
            if digests.enabled(rt, encounter, drafter) else None
        if encounter.part2:  # the tag follows the transcript to the drafter (and the gateway)
            consented, basis = _part2_basis(s, rt, encounter, drafter)
            transcript = dataclasses.replace(transcript, part2=True, part2_consent=consented, part2_basis=basis)
        if drafter.leaves_host:  # every client whose words would leave consented
            clients = cases_found(transcript.surrogates) if encounter.kind == EncounterKind.SUPERVISION \
                else {encounter.client_id or 0}
            for client_id in sorted(clients):
                require_step(s, rt.policies, client_id=client_id, step="egress", now=rt.clock())
        template = rt.policies.template(encounter.note_type)
    sections = [SectionRequest(x.key, x.title, x.instruction, x.max_sentences) for x in template.sections
                if x.source == "model"]
    made_from = content_sha256([list(transcript.lines), template.name, template.version])
    deadline = Deadline.after(rt.policies.pipeline.timeouts.draft_seconds, "drafting")
    # A long session is read from the notes on its parts (most taken while it was recorded) and
    # its last stretch; a short one, or with notes off, whole.
    reading = digests.read(drafter, transcript, noted, part_chars=rt.policies.pipeline.digest_part_chars,
                           deadline=deadline) if noted is not None else None
    if reading is not None and reading.earlier:
        result = drafter.draft(reading.rest, template.name, sections, deadline, reading.earlier)
        result = dataclasses.replace(result, prompt_tokens=result.prompt_tokens + reading.prompt_tokens,
                                     generated_tokens=result.generated_tokens + reading.generated_tokens,
                                     seconds=result.seconds + reading.seconds)
        log.info("job %s drafting from notes encounter=%s parts=%s noted_live=%s noted_now=%s", job.id,
                 job.encounter_id, len(reading.digests), reading.reused, reading.made)
    else:
        result = drafter.draft(transcript, template.name, sections, deadline)

    def write(s: Session, encounter: Encounter) -> None:
        now = rt.clock()
        if reading is not None and reading.made:
            digests.keep_all(s, encounter.id or 0, reading.digests)
        old = s.exec(select(Draft).where(Draft.encounter_id == encounter.id)).first()
        if old is not None:
            s.execute(delete(DraftSentence).where(col(DraftSentence.draft_id) == old.id))
            s.execute(delete(DraftSection).where(col(DraftSection.draft_id) == old.id))
            s.delete(old)
            s.flush()
        s.add(Draft(encounter_id=encounter.id or 0, note_type=encounter.note_type, template_version=template.version,
                    model=result.model, ai_sections=result.sections, prompt_tokens=result.prompt_tokens,
                    generated_tokens=result.generated_tokens, seconds_taken=round(result.seconds, 3),
                    created_at=now, updated_at=now))

    return Output(write, made_from)


def _part2_basis(s: Session, rt: Runtime, encounter: Encounter, drafter: object) -> tuple[bool, str]:
    """A Part 2 transcript leaves only for a destination the client's 2.31 consent names (or a
    qualified service organization); a local drafter discloses nothing."""
    destination = getattr(drafter, "destination", "")
    if not destination:
        return True, ""
    dest = next((d for d in rt.policies.egress.destinations if d.name == destination), None)
    if encounter.kind == EncounterKind.SUPERVISION:  # a meeting citing a Part 2 case: every such client consented
        clients = sorted(cases_found(load_pseudonymized(s, encounter.id or 0).surrogates))
    else:
        clients = [encounter.client_id or 0]
    bases = [part2_basis(s, rt.policies, client_id=c, recipient=destination, now=rt.clock(),
                         qsoa=bool(dest and dest.qsoa)) for c in clients]
    return all(ok for ok, _ in bases), " ".join(text for ok, text in bases if ok)


def _evidence(rt: Runtime, job: Job) -> Output:
    with session_scope(rt.engine) as s:
        encounter = encounter_of(s, job)
        transcript = load_pseudonymized(s, encounter.id or 0)
        draft = s.exec(select(Draft).where(Draft.encounter_id == encounter.id)).one()
        template = rt.policies.template(encounter.note_type)
        ai_sections = dict(draft.ai_sections)
        system_text = _system_sections(s, encounter)
        supervision = encounter.kind == EncounterKind.SUPERVISION
    made_from = content_sha256([ai_sections, list(transcript.lines)])
    pairs = [(sec.key, sentence) for sec in template.sections if sec.source == "model"
             for sentence in split_sentences(ai_sections.get(sec.key, ""))]
    checked = check_draft(pairs, transcript.segments, observed=template.observed_sections,
                          medicines=rt.policies.pipeline.medicines)
    left_out = sum(1 for x in transcript.segments if x.text == LEFT_OUT) if supervision else 0
    if left_out:
        checked.draft_flags.append(Flag(FlagKind.CASE_LEFT_OUT, f"{left_out} part(s) of this meeting were left out of "
                                        "the draft: they discuss a case whose client has not consented to "
                                        "supervision use"))
    reverse = supervision_reverse(transcript.surrogates) if supervision else transcript.surrogates.reverse

    def write(s: Session, encounter: Encounter) -> None:
        draft = s.exec(select(Draft).where(Draft.encounter_id == encounter.id)).one()
        s.execute(delete(DraftSentence).where(col(DraftSentence.draft_id) == draft.id))
        s.execute(delete(DraftSection).where(col(DraftSection.draft_id) == draft.id))
        for pos, sec in enumerate(template.sections):
            kept = [reidentify(c.text, reverse) for c in checked.sentences if c.section == sec.key]
            text = system_text.get(sec.key, "") if sec.source == "system" else " ".join(kept)
            s.add(DraftSection(draft_id=draft.id or 0, key=sec.key, title=sec.title, position=pos, ai_text=text, text=text))
        for c in checked.sentences:
            s.add(DraftSentence(draft_id=draft.id or 0, section_key=c.section, idx=c.index,
                                text=reidentify(c.text, reverse), evidence=list(c.evidence), support=c.score,
                                flags=[f.to_json() for f in c.flags]))
        draft.draft_flags = [f.to_json() for f in checked.draft_flags]
        draft.removed = [{"section": c.section, "text": reidentify(c.text, reverse),
                          "flags": [f.to_json() for f in c.flags]} for c in checked.removed]
        draft.status = DraftStatus.READY
        draft.updated_at = rt.clock()
        s.add(draft)

    return Output(write, made_from)


def _system_sections(s: Session, encounter: Encounter) -> dict[str, str]:
    """Sections scribe fills in itself: a supervision meeting's format and duration."""
    if encounter.kind != EncounterKind.SUPERVISION:
        return {}
    people = participants(s, encounter)
    recording = s.exec(select(Recording).where(Recording.encounter_id == encounter.id)).first()
    minutes = round((recording.duration_seconds if recording else 0.0) / 60)
    form = "Individual" if len(people) == 1 else "Group"
    names = ", ".join(u.full_name for u in people)
    return {"duration": f"{form} supervision, {minutes} minute(s), with {names}."}


STAGES: dict[JobKind, Callable[[Runtime, Job], Output]] = {
    JobKind.TRANSCRIBE: _transcribe,
    JobKind.PSEUDONYMIZE: _pseudonymize,
    JobKind.DRAFT: _draft,
    JobKind.EVIDENCE: _evidence,
}
