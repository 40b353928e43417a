"""The durable pipeline on fakes: stages, resumption, failure, consent, no identifiers to the drafter."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import select

from scribe.db.engine import session_scope
from scribe.db.tables import AuditEvent, Consent, Draft, DraftSentence, Job, Pseudonymization, Recording
from scribe.domain.errors import EngineError
from scribe.domain.notes import EncounterStatus, JobStatus
from scribe.engines.fakes import FakeDrafter, FakeRedactor
from scribe.engines.protocols import Engines
from scribe.runtime import Runtime
from scribe.services.pipeline import CrashPoint
from scribe.worker import Worker
from tests.conftest import Clock, Fakes, Practice
from tests.helpers import TRANSCRIPT, reload, run_pipeline, upload

CHART_IDENTIFIERS = ["Maya", "Thompson", "Laura", "555-201-3344", "maya.t@example.org", "Riverside Bakery"]


def test_an_upload_becomes_a_draft_in_the_review_queue(runtime: Runtime, practice: Practice, wav: bytes) -> None:
    encounter = upload(runtime, practice.dr_ada, practice.maya.id, wav, transcript=TRANSCRIPT)
    assert run_pipeline(runtime) == 4
    assert reload(runtime, encounter).status == EncounterStatus.IN_REVIEW
    with session_scope(runtime.engine) as s:
        jobs = s.exec(select(Job).where(Job.encounter_id == encounter.id)).all()
        assert [j.status for j in jobs] == [JobStatus.DONE] * 4
        actions = [e.action for e in s.exec(select(AuditEvent)).all()]
    assert actions[:1] == ["recording.upload"] and "pipeline.evidence" in actions


def test_the_drafter_never_sees_a_chart_identifier(runtime: Runtime, practice: Practice, wav: bytes, fakes: Fakes) -> None:
    upload(runtime, practice.dr_ada, practice.maya.id, wav, transcript=TRANSCRIPT)
    run_pipeline(runtime)
    [(transcript, _, _)] = fakes.drafter.calls
    seen = transcript.text.lower()
    for identifier in CHART_IDENTIFIERS:
        assert identifier.lower() not in seen, identifier
    assert "[CLIENT]" in transcript.text and "[RELATIVE_1]" in transcript.text


def test_the_draft_is_reidentified_for_the_clinician(runtime: Runtime, practice: Practice, wav: bytes) -> None:
    upload(runtime, practice.dr_ada, practice.maya.id, wav, transcript=TRANSCRIPT)
    run_pipeline(runtime)
    with session_scope(runtime.engine) as s:
        texts = " ".join(x.text for x in s.exec(select(DraftSentence)).all())
    assert "Riverside Bakery" in texts and "[ORG" not in texts


def test_every_sentence_has_evidence_or_a_flag(runtime: Runtime, practice: Practice, wav: bytes, fakes: Fakes) -> None:
    fakes.drafter.extra_sentence = "The client recently returned from a ski trip in Aspen."
    upload(runtime, practice.dr_ada, practice.maya.id, wav, transcript=TRANSCRIPT)
    run_pipeline(runtime)
    with session_scope(runtime.engine) as s:
        sentences = s.exec(select(DraftSentence)).all()
    assert sentences
    assert all(x.evidence or x.flags for x in sentences)
    assert any(x.flags and "Aspen" in x.text for x in sentences)


def test_a_crash_before_the_commit_resumes_without_duplicates(
    runtime: Runtime, practice: Practice, wav: bytes, clock: Clock
) -> None:
    encounter = upload(runtime, practice.dr_ada, practice.maya.id, wav, transcript=TRANSCRIPT)
    Worker(runtime).run_once()  # transcribe
    crashing = Worker(runtime, crash_at="before-commit:pseudonymize")
    with pytest.raises(CrashPoint):
        crashing.run_once()
    # The dead worker's job is invisible until its lease runs out, then another worker resumes it.
    assert Worker(runtime).run_once() is False
    clock.advance(seconds=runtime.policies.pipeline.lease_seconds + 1)
    assert run_pipeline(runtime) == 3
    assert reload(runtime, encounter).status == EncounterStatus.IN_REVIEW
    with session_scope(runtime.engine) as s:
        assert len(s.exec(select(Pseudonymization)).all()) == 1
        assert len(s.exec(select(Draft)).all()) == 1


def test_a_retryable_engine_error_retries_then_fails_with_a_clear_reason(
    runtime: Runtime, practice: Practice, wav: bytes, fakes: Fakes, clock: Clock
) -> None:
    fakes.drafter.fail_with = EngineError("drafting failed (RuntimeError)", retryable=True)
    encounter = upload(runtime, practice.dr_ada, practice.maya.id, wav, transcript=TRANSCRIPT)
    for _ in range(10):
        run_pipeline(runtime)
        clock.advance(minutes=5)
    assert len(fakes.drafter.calls) == runtime.policies.pipeline.max_attempts
    fresh = reload(runtime, encounter)
    assert fresh.status == EncounterStatus.FAILED and "drafting failed" in fresh.status_reason
    with session_scope(runtime.engine) as s:  # what came before is kept
        assert s.exec(select(Pseudonymization)).first() is not None


def test_redaction_failure_fails_closed(runtime: Runtime, practice: Practice, wav: bytes, fakes: Fakes) -> None:
    fakes.redactor.fail_with = EngineError("redaction failed (OSError); nothing was drafted", retryable=False)
    encounter = upload(runtime, practice.dr_ada, practice.maya.id, wav, transcript=TRANSCRIPT)
    run_pipeline(runtime)
    assert fakes.drafter.calls == []
    fresh = reload(runtime, encounter)
    assert fresh.status == EncounterStatus.FAILED and "redaction failed" in fresh.status_reason


def test_consent_withdrawn_mid_pipeline_stops_the_next_step(
    runtime: Runtime, practice: Practice, wav: bytes, fakes: Fakes, clock: Clock
) -> None:
    encounter = upload(runtime, practice.dr_ada, practice.maya.id, wav, transcript=TRANSCRIPT)
    Worker(runtime).run_once()  # transcribe
    with session_scope(runtime.engine) as s:
        consent = s.exec(select(Consent).where(Consent.client_id == practice.maya.id,
                                               Consent.function == "ai_drafting")).one()
        consent.withdrawn_at = clock() - timedelta(seconds=1)
        s.add(consent)
    run_pipeline(runtime)
    fresh = reload(runtime, encounter)
    assert fresh.status == EncounterStatus.STOPPED and "ai_drafting" in fresh.status_reason
    assert fakes.redactor.calls == [] and fakes.drafter.calls == []


def test_two_workers_never_run_the_same_job(runtime: Runtime, practice: Practice, wav: bytes) -> None:
    upload(runtime, practice.dr_ada, practice.maya.id, wav, transcript=TRANSCRIPT)
    from scribe.services import jobs

    a = jobs.claim(runtime.engine, worker_id="a", now=runtime.clock(), lease=timedelta(minutes=2))
    b = jobs.claim(runtime.engine, worker_id="b", now=runtime.clock(), lease=timedelta(minutes=2))
    assert a is not None and b is None


def test_logs_carry_ids_never_clinical_text(
    runtime: Runtime, practice: Practice, wav: bytes, fakes: Fakes, caplog: pytest.LogCaptureFixture
) -> None:
    fakes.drafter.fail_with = RuntimeError("boom Maya Thompson 555-201-3344")  # a bug leaking text into an error
    caplog.set_level("DEBUG")
    upload(runtime, practice.dr_ada, practice.maya.id, wav, transcript=TRANSCRIPT)
    run_pipeline(runtime)
    logged = caplog.text  # messages and any traceback printed with them
    assert "encounter=" in logged and "RuntimeError" in logged
    for canary in ["Maya", "Thompson", "555-201", "breathing", "anxious", "Riverside"]:
        assert canary not in logged, canary


def test_fakes_record_nothing_unexpected(engines: Engines) -> None:
    assert isinstance(engines.redactor, FakeRedactor) and isinstance(engines.drafter, FakeDrafter)


def test_a_stage_that_kills_its_worker_every_time_fails_the_session_with_a_reason(
    runtime: Runtime, practice: Practice, wav: bytes, clock: Clock
) -> None:
    """A worker that dies mid-job (kill -9, out of memory) never records the outcome: its
    lease runs out. The job is re-taken while attempts remain, then failed, not re-taken for ever."""
    from scribe.services import jobs

    encounter = upload(runtime, practice.dr_ada, practice.maya.id, wav, transcript=TRANSCRIPT)
    lease = timedelta(minutes=2)
    claims = 0
    for _ in range(10):
        job = jobs.claim(runtime.engine, worker_id=f"w{claims}", now=clock(), lease=lease)
        if job is None:
            break
        claims += 1  # ... and the worker dies here, every time
        clock.advance(minutes=3)
        Worker(runtime).housekeeping(retention_due=False)  # where the worker fails abandoned jobs
    assert claims == runtime.policies.pipeline.max_attempts
    fresh = reload(runtime, encounter)
    assert fresh.status == EncounterStatus.FAILED and f"stopped {claims} times" in fresh.status_reason
    with session_scope(runtime.engine) as s:
        assert s.exec(select(Recording).where(Recording.encounter_id == encounter.id)).one().purged_at is None
    assert Worker(runtime).run_once() is False  # nothing left to take


def test_a_worker_that_stalled_past_its_lease_writes_nothing_over_the_one_that_took_over(
    runtime: Runtime, practice: Practice, wav: bytes, clock: Clock
) -> None:
    from scribe.db.tables import Transcript
    from scribe.services import jobs
    from scribe.services.pipeline import run_job

    encounter = upload(runtime, practice.dr_ada, practice.maya.id, wav, transcript=TRANSCRIPT)
    stalled = jobs.claim(runtime.engine, worker_id="stalled", now=clock(), lease=timedelta(minutes=2))
    clock.advance(minutes=3)  # its lease ran out (a long GC pause, a frozen VM)
    taker = jobs.claim(runtime.engine, worker_id="taker", now=clock(), lease=timedelta(minutes=2))
    assert stalled is not None and taker is not None and taker.id == stalled.id
    run_job(runtime, stalled)  # wakes up and tries to commit
    with session_scope(runtime.engine) as s:
        assert s.exec(select(Transcript)).all() == []
        held = s.get_one(Job, taker.id)
        assert held.worker_id == "taker" and held.status == JobStatus.RUNNING
    run_job(runtime, taker)
    with session_scope(runtime.engine) as s:
        assert len(s.exec(select(Transcript)).all()) == 1 and s.get_one(Job, taker.id).status == JobStatus.DONE
    assert reload(runtime, encounter).status != EncounterStatus.FAILED


@pytest.mark.parametrize(("field", "stage", "engine"), [  # each stage gets its own limit
    ("transcribe_per_audio_second", "transcription", "transcriber"),
    ("draft_seconds", "drafting", "drafter"),
    ("other_seconds", "pseudonymize", "redactor"),
])
def test_a_stage_past_its_time_limit_fails_once_with_a_clear_reason(
    runtime: Runtime, practice: Practice, wav: bytes, fakes: Fakes, clock: Clock, field: str, stage: str, engine: str
) -> None:
    timeouts = runtime.policies.pipeline.timeouts
    saved = timeouts.model_dump()
    if field == "transcribe_per_audio_second":
        object.__setattr__(timeouts, "transcribe_seconds", 1e-9)
    object.__setattr__(timeouts, field, 1e-9)
    try:
        encounter = upload(runtime, practice.dr_ada, practice.maya.id, wav, transcript=TRANSCRIPT)
        for _ in range(5):
            run_pipeline(runtime)
            clock.advance(minutes=5)
    finally:
        for k, v in saved.items():
            object.__setattr__(timeouts, k, v)
    assert len(getattr(fakes, engine).calls) <= 1  # transcription: the decoding alone ran out the time
    with session_scope(runtime.engine) as s:
        jobs = s.exec(select(Job).where(Job.encounter_id == encounter.id)).all()
    assert [j.attempts for j in jobs if j.status == JobStatus.FAILED] == [1]  # a timed-out stage is not retried
    fresh = reload(runtime, encounter)
    assert fresh.status == EncounterStatus.FAILED
    assert f"{stage} took longer than its 0 s limit" in fresh.status_reason
    with session_scope(runtime.engine) as s:
        assert s.exec(select(Draft)).first() is None
