"""Sessions as services: time, place and code confirmed before signing (and covered by the
signature); voiding and moving a session before it is signed, which never leaves anything
under the wrong client; retrying a failed step; the queue searched and paginated."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlmodel import select

from scribe.db.engine import session_scope
from scribe.db.sealing import envelope
from scribe.db.tables import (
    AuditEvent,
    Client,
    DataKey,
    DeletionReceipt,
    Draft,
    Encounter,
    EncounterAttendee,
    Job,
    Pseudonymization,
    Recording,
    Transcript,
    User,
)
from scribe.domain.errors import Conflict, InvalidInput, PermissionDenied
from scribe.domain.notes import DraftStatus, EncounterStatus, JobStatus
from scribe.engines.protocols import Engines
from scribe.policies import Policies
from scribe.runtime import Runtime
from scribe.services import encounters, purge
from tests.conftest import Clock, Fakes, Practice, wav_bytes
from tests.helpers import TRANSCRIPT, reload, run_pipeline, upload
from tests.services.test_review import lock, resolve_all, sign, view


def set_service(runtime: Runtime, actor: User, encounter: Encounter, **kw: Any) -> Encounter:
    now = runtime.clock()
    values: dict[str, Any] = {"start": now - timedelta(minutes=55), "end": now, "place": "11",
                              "service_type": "individual", "code": "90837", "attendees": []}
    values.update(kw)
    with session_scope(runtime.engine) as s:
        return encounters.set_service(s, runtime.audit_key, runtime.policies, actor=actor, encounter_id=encounter.id or 0,
                                      now=now, **values)


def test_an_upload_gets_its_time_and_place_of_service_from_the_recording(runtime: Runtime, practice: Practice) -> None:
    audio = wav_bytes(seconds=4)
    encounter = upload(runtime, practice.dr_ada, practice.maya.id, audio, confirm_service=False)
    e = reload(runtime, encounter)
    assert e.service_end == runtime.clock() and e.service_start == runtime.clock() - timedelta(seconds=4)
    assert e.place_of_service == runtime.policies.billing.uploaded_place and e.service_code == ""


def test_signing_waits_for_the_service_and_the_signature_covers_it(runtime: Runtime, practice: Practice, wav: bytes) -> None:
    with session_scope(runtime.engine) as s:  # the clinician's chart diagnosis travels into the signed note
        client = s.get_one(Client, practice.maya.id)
        client.diagnoses = [{"code": "F41.1", "description": "Generalized anxiety disorder"}]
        s.add(client)
    encounter = upload(runtime, practice.dr_ada, practice.maya.id, wav, transcript=TRANSCRIPT, confirm_service=False)
    run_pipeline(runtime)
    version = resolve_all(runtime, practice.dr_ada, encounter)
    v = view(runtime, practice.dr_ada, encounter)
    assert not v.can_sign and "confirm the service code" in v.can_sign.reason
    assert v.service is not None and v.service.suggestion.code is None  # a 2-second recording is no billable psychotherapy
    with pytest.raises(PermissionDenied, match="service is not confirmed"):
        sign(runtime, practice.dr_ada, encounter, version)
    with pytest.raises(InvalidInput, match="not one of this practice's service codes"):
        set_service(runtime, practice.dr_ada, encounter, code="99999")
    with pytest.raises(InvalidInput, match="couples, family and group"):
        set_service(runtime, practice.dr_ada, encounter, attendees=[("Sam Partner", "partner")])
    # a prescriber's medication management visit is suggested its E/M code by time
    set_service(runtime, practice.dr_ada, encounter, service_type="medication_management", code="99214",
                start=runtime.clock() - timedelta(minutes=35))
    managed = view(runtime, practice.dr_ada, encounter).service
    assert managed is not None and managed.suggestion.code == "99214" and managed.code == "99214"
    set_service(runtime, practice.dr_ada, encounter, service_type="couple", code="90847",
                attendees=[("Jordan Rivera", "partner")])
    v = view(runtime, practice.dr_ada, encounter)
    assert v.service is not None and v.service.suggestion.code == "90847" and v.service.code == "90847" and v.can_sign
    signed = sign(runtime, practice.dr_ada, encounter, lock(v))
    service = signed.content["service"]
    assert service["code"] == "90847" and service["minutes"] == 55 and service["place"] == "11"
    assert service["attendees"] == [{"name": "Jordan Rivera", "relation": "partner"}]
    assert service["diagnoses"] == [{"code": "F41.1", "description": "Generalized anxiety disorder"}]
    with pytest.raises(Conflict, match="signed"):  # a record's service never changes
        set_service(runtime, practice.dr_ada, encounter)
    with session_scope(runtime.engine) as s:
        row = s.exec(select(AuditEvent).where(AuditEvent.action == "encounter.service")).all()[-1]
        assert "55 min" in row.reason and "90847" in row.reason and "Jordan" not in row.reason


def test_only_the_sessions_clinician_sets_its_service(runtime: Runtime, practice: Practice, wav: bytes) -> None:
    encounter = upload(runtime, practice.dr_ada, practice.maya.id, wav, confirm_service=False)
    with pytest.raises(Exception, match=r"no such session|only the session's clinician"):
        set_service(runtime, practice.dr_cole, encounter)
    with pytest.raises(Exception):
        set_service(runtime, practice.dr_ben, encounter)


def test_voiding_purges_what_the_session_made_with_a_receipt(runtime: Runtime, practice: Practice, wav: bytes) -> None:
    encounter = upload(runtime, practice.dr_ada, practice.maya.id, wav, transcript=TRANSCRIPT)
    run_pipeline(runtime)
    set_service(runtime, practice.dr_ada, encounter, service_type="family", code="90847",
                attendees=[("Laura Thompson", "sister")])
    with session_scope(runtime.engine) as s, pytest.raises(InvalidInput, match="choose why"):
        encounters.void_session(s, runtime.audit_key, actor=practice.dr_ada, encounter_id=encounter.id or 0,
                                reason="I felt like it", now=runtime.clock())
    with session_scope(runtime.engine) as s:
        receipt = encounters.void_session(s, runtime.audit_key, actor=practice.dr_ada, encounter_id=encounter.id or 0,
                                          reason="recorded for the wrong client", now=runtime.clock())
    purge.sweep_files(runtime.engine, runtime.recordings_dir)
    with session_scope(runtime.engine) as s:
        e = s.get_one(Encounter, encounter.id)
        assert e.status == EncounterStatus.VOIDED and e.status_reason == "recorded for the wrong client"
        assert s.exec(select(Transcript).where(Transcript.encounter_id == e.id)).first() is None
        assert s.exec(select(Draft).where(Draft.encounter_id == e.id)).first() is None
        assert s.exec(select(EncounterAttendee).where(EncounterAttendee.encounter_id == e.id)).first() is None
        rec = s.exec(select(Recording).where(Recording.encounter_id == e.id)).one()
        assert rec.purged_at is not None and not (runtime.recordings_dir / rec.path).exists()
        stored = s.get_one(DeletionReceipt, receipt.id)
        assert {i["artefact"] for i in stored.items} >= {"audio", "transcript", "AI draft", "participants"}
    with session_scope(runtime.engine) as s, pytest.raises(Conflict, match="voided"):
        encounters.void_session(s, runtime.audit_key, actor=practice.dr_ada, encounter_id=encounter.id or 0,
                                reason="duplicate of another session", now=runtime.clock())


def test_a_signed_session_cannot_be_voided_or_moved(runtime: Runtime, practice: Practice, wav: bytes) -> None:
    encounter = upload(runtime, practice.dr_ada, practice.maya.id, wav, transcript=TRANSCRIPT)
    run_pipeline(runtime)
    sign(runtime, practice.dr_ada, encounter, resolve_all(runtime, practice.dr_ada, encounter))
    with session_scope(runtime.engine) as s, pytest.raises(Conflict, match="signed"):
        encounters.void_session(s, runtime.audit_key, actor=practice.dr_ada, encounter_id=encounter.id or 0,
                                reason="duplicate of another session", now=runtime.clock())
    second = _second_client(runtime, practice)
    with session_scope(runtime.engine) as s, pytest.raises(Conflict, match="signed"):
        encounters.move_session(s, runtime.audit_key, runtime.policies, actor=practice.dr_ada,
                                encounter_id=encounter.id or 0, client_id=second, recordings_dir=runtime.recordings_dir,
                                now=runtime.clock())


def _second_client(runtime: Runtime, practice: Practice) -> int:
    """Another client of dr_ada's, with every consent."""
    from scribe.db.clients import add_client
    from scribe.db.tables import Client, Consent
    from tests.conftest import CONSENTS

    now = runtime.clock()
    with session_scope(runtime.engine) as s:
        client = add_client(s, Client(clinic_id=practice.dr_ada.clinic_id, clinician_id=practice.dr_ada.id or 0,
                                      given_name="Quincy", family_name="Abernathy", mrn=f"MRN-Q{uuid.uuid4().hex[:10]}",
                                      created_at=now))
        for f in CONSENTS:
            s.add(Consent(client_id=client.id or 0, function=f, captured_by=practice.dr_ada.id or 0, captured_at=now,
                          form_version="t1", form_text="test", effective_from=now - timedelta(days=1)))
        return client.id or 0


def owners_of_artefacts(runtime: Runtime, encounter_id: int) -> set[str]:
    """Whose data keys seal what a session holds now: every sealed value and file of it."""
    keys = {}
    with session_scope(runtime.engine) as s:
        keys = {k.id: k.owner for k in s.exec(select(DataKey))}
        rec = s.exec(select(Recording).where(Recording.encounter_id == encounter_id)).first()
    owners: set[str] = set()
    with runtime.engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT s.text FROM transcript_segments s JOIN transcripts t ON t.id = s.transcript_id "
            "WHERE t.encounter_id = :e UNION ALL SELECT lines FROM pseudonymizations WHERE encounter_id = :e "
            "UNION ALL SELECT ai_sections FROM drafts WHERE encounter_id = :e "
            "UNION ALL SELECT x.text FROM draft_sentences x JOIN drafts d ON d.id = x.draft_id WHERE d.encounter_id = :e "
            "UNION ALL SELECT name FROM encounter_attendees WHERE encounter_id = :e"), {"e": encounter_id}).scalars()
        owners |= {keys[envelope.key_id_of(token)] for token in rows}
    if rec is not None and rec.purged_at is None:
        with (runtime.recordings_dir / rec.path).open("rb") as f:
            owners.add(keys[envelope.read_stream_header(f)[2]])
    return owners


def test_moving_a_session_reseals_everything_under_the_right_client(runtime: Runtime, practice: Practice, wav: bytes) -> None:
    encounter = upload(runtime, practice.dr_ada, practice.maya.id, wav, transcript=TRANSCRIPT)
    run_pipeline(runtime)
    set_service(runtime, practice.dr_ada, encounter, service_type="family", code="90847",
                attendees=[("Laura Thompson", "sister")])
    assert owners_of_artefacts(runtime, encounter.id or 0) == {f"client:{practice.maya.id}"}
    with session_scope(runtime.engine) as s:
        old = s.exec(select(Recording).where(Recording.encounter_id == encounter.id)).one().path
    target = _second_client(runtime, practice)
    with session_scope(runtime.engine) as s:
        moved = encounters.move_session(s, runtime.audit_key, runtime.policies, actor=practice.dr_ada,
                                        encounter_id=encounter.id or 0, client_id=target,
                                        recordings_dir=runtime.recordings_dir, now=runtime.clock())
    purge.remove_unreferenced(runtime.engine, runtime.recordings_dir, moved.stale_files)
    assert moved.stale_files == [old] and not (runtime.recordings_dir / old).exists()
    assert owners_of_artefacts(runtime, encounter.id or 0) == {f"client:{target}"}
    with session_scope(runtime.engine) as s:
        assert s.exec(select(Pseudonymization).where(Pseudonymization.encounter_id == encounter.id)).first() is None
        job = s.exec(select(Job).where(Job.encounter_id == encounter.id, Job.status == JobStatus.QUEUED)).one()
        assert job.kind == "pseudonymize"
    run_pipeline(runtime)  # redacted again, against the right chart
    assert owners_of_artefacts(runtime, encounter.id or 0) == {f"client:{target}"}
    v = view(runtime, practice.dr_ada, encounter)
    assert v.client is not None and v.client.id == target
    assert v.draft is not None and v.draft.status == DraftStatus.READY
    with session_scope(runtime.engine) as s:
        receipt = s.exec(select(DeletionReceipt).where(DeletionReceipt.client_id == practice.maya.id)).all()[-1]
        assert "moved to another client" in receipt.rule


def test_a_session_cannot_move_while_a_step_runs_or_to_a_client_without_consent(
    runtime: Runtime, practice: Practice, wav: bytes
) -> None:
    encounter = upload(runtime, practice.dr_ada, practice.maya.id, wav, transcript=TRANSCRIPT)
    with session_scope(runtime.engine) as s:
        job = s.exec(select(Job).where(Job.encounter_id == encounter.id)).one()
        job.status = JobStatus.RUNNING
        s.add(job)
    target = _second_client(runtime, practice)
    with session_scope(runtime.engine) as s, pytest.raises(Conflict, match="running"):
        encounters.move_session(s, runtime.audit_key, runtime.policies, actor=practice.dr_ada,
                                encounter_id=encounter.id or 0, client_id=target, recordings_dir=runtime.recordings_dir,
                                now=runtime.clock())
    with session_scope(runtime.engine) as s:
        job = s.exec(select(Job).where(Job.encounter_id == encounter.id)).one()
        job.status = JobStatus.QUEUED
        s.add(job)
    with session_scope(runtime.engine) as s:  # jonah is dr_cole's: not dr_ada's to move a session to
        with pytest.raises(Exception, match="no such client"):
            encounters.move_session(s, runtime.audit_key, runtime.policies, actor=practice.dr_ada,
                                    encounter_id=encounter.id or 0, client_id=practice.jonah.id or 0,
                                    recordings_dir=runtime.recordings_dir, now=runtime.clock())


@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True, database=None)
@given(steps=st.lists(st.tuples(st.sampled_from(["move", "run", "move", "upload", "void"]), st.integers(1, 2)),
                      min_size=1, max_size=6))
def test_no_sequence_of_moves_and_voids_leaves_an_artefact_under_the_wrong_client(
    steps: list[tuple[str, int]], tmp_path_factory: pytest.TempPathFactory, policies: Policies
) -> None:
    """Property: after any sequence of uploads, pipeline runs, moves and voids, everything a
    live session holds is sealed under its current client's keys only, and a voided one holds
    nothing (the recording row is marked purged, its file gone)."""
    from scribe.config import Settings
    from scribe.engines.fakes import FakeDrafter, FakeRedactor, FakeTranscriber
    from scribe.runtime import build_runtime
    from tests.conftest import Clock, make_practice

    clock = Clock()
    rt = build_runtime(Settings(data_dir=tmp_path_factory.mktemp("moves") / "var", engines="fake",
                                worker_in_process=False), policies=policies,
                       engines=Engines(FakeTranscriber(), FakeRedactor(), FakeDrafter()), clock=clock)
    p = make_practice(rt, clock)
    mine = [p.maya.id or 0, _second_client(rt, p), _second_client(rt, p)]
    sessions = [upload(rt, p.dr_ada, mine[0], wav_bytes(seconds=2), transcript=TRANSCRIPT).id or 0]
    run_pipeline(rt)  # one session with everything made, from the start
    for action, n in steps:
        clock.advance(seconds=7)
        target = sessions[n % len(sessions)]
        try:
            with session_scope(rt.engine) as s:
                if action == "move":
                    moved = encounters.move_session(s, rt.audit_key, rt.policies, actor=p.dr_ada, encounter_id=target,
                                                    client_id=mine[n], recordings_dir=rt.recordings_dir, now=clock())
                elif action == "void":
                    encounters.void_session(s, rt.audit_key, actor=p.dr_ada, encounter_id=target,
                                            reason="duplicate of another session", now=clock())
            if action == "move":
                purge.remove_unreferenced(rt.engine, rt.recordings_dir, moved.stale_files)
            elif action == "void":
                purge.sweep_files(rt.engine, rt.recordings_dir)
        except (Conflict, InvalidInput):
            pass  # refused (voided already, same client): nothing changed
        if action == "run":
            run_pipeline(rt)
        elif action == "upload":
            sessions.append(upload(rt, p.dr_ada, mine[n], wav_bytes(seconds=2), transcript=TRANSCRIPT).id or 0)
    for encounter_id in sessions:
        with session_scope(rt.engine) as s:
            e = s.get_one(Encounter, encounter_id)
        owners = owners_of_artefacts(rt, encounter_id)
        if e.status == EncounterStatus.VOIDED:
            assert owners == set()
        else:
            assert owners <= {f"client:{e.client_id}"}
    live = {r.path for r in _recordings(rt)}
    assert {f.name for f in rt.recordings_dir.iterdir() if f.is_file() and f.suffix != ".txt"} <= live
    rt.engine.dispose()


def _recordings(rt: Runtime) -> list[Recording]:
    with session_scope(rt.engine) as s:
        return list(s.exec(select(Recording).where(Recording.purged_at.is_(None))))  # type: ignore[union-attr]


def test_a_failed_step_is_retried_from_the_page(runtime: Runtime, practice: Practice, wav: bytes, fakes: Fakes) -> None:
    from scribe.domain.errors import EngineError

    fakes.transcriber.fail_with = EngineError("the model could not read this file", retryable=False)
    encounter = upload(runtime, practice.dr_ada, practice.maya.id, wav, transcript=TRANSCRIPT)
    run_pipeline(runtime)
    assert reload(runtime, encounter).status == EncounterStatus.FAILED
    fakes.transcriber.fail_with = None
    with session_scope(runtime.engine) as s:
        encounters.retry_stage(s, runtime.audit_key, runtime.policies, actor=practice.dr_ada,
                               encounter_id=encounter.id or 0, now=runtime.clock())
    run_pipeline(runtime)
    assert reload(runtime, encounter).status == EncounterStatus.IN_REVIEW
    with session_scope(runtime.engine) as s:
        assert s.exec(select(AuditEvent).where(AuditEvent.action == "pipeline.retry")).one().reason == "transcribe"
        with pytest.raises(Conflict, match="only a failed"):
            encounters.retry_stage(s, runtime.audit_key, runtime.policies, actor=practice.dr_ada,
                                   encounter_id=encounter.id or 0, now=runtime.clock())


def test_the_queue_is_searched_by_client_status_and_date_and_paginated(
    runtime: Runtime, practice: Practice, clock: Clock
) -> None:
    other = _second_client(runtime, practice)
    made = []
    for i in range(30):
        clock.advance(days=1)
        made.append(upload(runtime, practice.dr_ada, practice.maya.id if i % 3 else other, wav_bytes(seconds=2)))
    with session_scope(runtime.engine) as s:
        page1 = encounters.queue(s, practice.dr_ada, page=1)
        page2 = encounters.queue(s, practice.dr_ada, page=2)
        assert page1.total == 30 and page1.pages == 2 and len(page1.rows) == 25 and len(page2.rows) == 5
        assert {e.id for e, _ in page1.rows}.isdisjoint({e.id for e, _ in page2.rows})
        assert next(e.id for e, _ in page1.rows) == made[-1].id  # newest first
        abernathy = encounters.queue(s, practice.dr_ada, query="abernathy")
        assert abernathy.total == 10 and all(label == "Quincy Abernathy" for _, label in abernathy.rows)
        assert encounters.queue(s, practice.dr_ada, query=practice.maya.mrn).total == 20
        end = made[4].service_end
        assert end is not None
        day = end.date()
        assert encounters.queue(s, practice.dr_ada, day_from=day, day_to=day).total == 1
        assert encounters.queue(s, practice.dr_ada, status="uploaded").total == 30
        assert encounters.queue(s, practice.dr_ada, status="signed").total == 0
        assert encounters.queue(s, practice.dr_cole).total == 0  # another clinician's queue
        assert encounters.queue(s, practice.dr_ada, page=99).page == 2  # past the end: the last page
