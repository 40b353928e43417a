"""Consent gates every step at the moment it runs. The step x consent matrix is generated
from policies/consent.yaml, so these tests follow the policy file and cannot drift from it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, cast

import pytest
from sqlmodel import select

from scribe.config import ROOT
from scribe.db.engine import session_scope
from scribe.db.tables import (
    Client,
    Consent,
    DeletionReceipt,
    Draft,
    Job,
    NoteVersion,
    Recording,
    RecordingChunk,
    Transcript,
    User,
)
from scribe.domain.consent import Part2Terms
from scribe.domain.errors import Conflict, ConsentMissing, InvalidInput, NotFound, PermissionDenied
from scribe.domain.notes import PIPELINE, EncounterStatus, JobKind, JobStatus
from scribe.engines.protocols import Engines
from scribe.policies import load_policies
from scribe.policies.schema import ConsentFunction, ConsentStep
from scribe.runtime import Runtime
from scribe.services import admin, consent, purge, recording
from scribe.services.files import forms, recordings
from scribe.worker import Worker
from tests.conftest import Clock, Practice, wav_bytes
from tests.helpers import TRANSCRIPT, media, reload, run_pipeline, upload

POLICY = load_policies(ROOT / "policies").consent
STEP_FUNCTION = [(step, f) for step, needed in POLICY.steps.items() for f in needed]
STAGE_FUNCTION = [(kind, f) for kind in PIPELINE for f in POLICY.steps[cast(ConsentStep, kind.value)]]


def withdraw(runtime: Runtime, actor: User, client_id: int | None, function: str) -> DeletionReceipt:
    with session_scope(runtime.engine) as s:
        return purge.withdraw(s, runtime.audit_key, runtime.policies, actor=actor, client_id=client_id or 0,
                              function=function, tools=media(runtime), now=runtime.clock()).receipt


PART2_TERMS = Part2Terms(recipient="practice-ehr", purpose="coordination of care", information="signed progress notes",
                         expiry="one year from signing", signed_by="the client", signed_on="2026-11-01",
                         revocation_explained=True)


def grant(runtime: Runtime, actor: User, client_id: int | None, functions: list[str], **kw: Any) -> list[Consent]:
    if "part2_disclosure" in functions:
        kw.setdefault("part2", PART2_TERMS)
    with session_scope(runtime.engine) as s:
        return consent.record_consent(s, runtime.audit_key, runtime.policies, actor=actor, client_id=client_id or 0,
                                      functions=functions, effective_from=kw.pop("effective_from", runtime.clock()),
                                      expires_at=kw.pop("expires_at", None), guardian=kw.pop("guardian", None),
                                      part2=kw.pop("part2", None), forms_dir=runtime.settings.forms_dir,
                                      scan=kw.pop("scan", None), now=runtime.clock())


@pytest.mark.parametrize(("step", "function"), STEP_FUNCTION, ids=[f"{s}-{f}" for s, f in STEP_FUNCTION])
def test_every_step_refuses_without_each_consent_it_needs(
    runtime: Runtime, practice: Practice, clock: Clock, step: str, function: str
) -> None:
    grant(runtime, practice.dr_ada, practice.maya.id, [function])  # egress and Part 2 are not on file by default
    clock.advance(seconds=1)
    with session_scope(runtime.engine) as s:
        assert consent.check_step(s, runtime.policies, client_id=practice.maya.id or 0, step=step, now=clock()).allowed
    clock.advance(seconds=1)
    withdraw(runtime, practice.dr_ada, practice.maya.id, function)
    with session_scope(runtime.engine) as s:
        decision = consent.check_step(s, runtime.policies, client_id=practice.maya.id or 0, step=step, now=clock())
    assert not decision.allowed and function in decision.reason
    clock.advance(seconds=1)
    grant(runtime, practice.dr_ada, practice.maya.id, [function])  # a new grant supersedes the withdrawal
    with session_scope(runtime.engine) as s:
        assert consent.check_step(s, runtime.policies, client_id=practice.maya.id or 0, step=step, now=clock()).allowed


@pytest.mark.parametrize(("stage", "function"), STAGE_FUNCTION, ids=[f"{k.value}-{f}" for k, f in STAGE_FUNCTION])
def test_a_withdrawal_before_a_stage_stops_the_session_there(
    runtime: Runtime, practice: Practice, wav: bytes, engines: Engines, clock: Clock, stage: JobKind, function: str
) -> None:
    encounter = upload(runtime, practice.dr_ada, practice.maya.id, wav, transcript=TRANSCRIPT)
    worker = Worker(runtime)
    for _ in range(PIPELINE.index(stage)):
        assert worker.run_once()
    clock.advance(seconds=1)
    withdraw(runtime, practice.dr_ada, practice.maya.id, function)
    run_pipeline(runtime)
    fresh = reload(runtime, encounter)
    assert fresh.status == EncounterStatus.STOPPED and function in fresh.status_reason
    with session_scope(runtime.engine) as s:
        job = s.exec(select(Job).where(Job.encounter_id == encounter.id, Job.kind == stage)).one()
        assert job.status == JobStatus.STOPPED
        assert s.exec(select(Draft).where(Draft.encounter_id == encounter.id, Draft.status == "ready")).first() is None


def test_a_consent_that_lapses_mid_pipeline_stops_the_next_step(
    runtime: Runtime, practice: Practice, wav: bytes, clock: Clock
) -> None:
    with session_scope(runtime.engine) as s:  # replace the open-ended grant with one that expires in a minute
        for c in s.exec(select(Consent).where(Consent.client_id == practice.maya.id, Consent.function == "ai_drafting")):
            assert c.expires_at is None
    grant(runtime, practice.dr_ada, practice.maya.id, ["ai_drafting"], expires_at=clock() + timedelta(minutes=1))
    encounter = upload(runtime, practice.dr_ada, practice.maya.id, wav, transcript=TRANSCRIPT)
    Worker(runtime).run_once()  # transcribe
    clock.advance(minutes=2)
    run_pipeline(runtime)
    fresh = reload(runtime, encounter)
    assert fresh.status == EncounterStatus.STOPPED and "ai_drafting" in fresh.status_reason


def test_withdrawal_purges_by_policy_keeps_signed_notes_and_leaves_a_receipt(
    runtime: Runtime, practice: Practice, wav: bytes, clock: Clock
) -> None:
    from tests.services.test_review import resolve_all, sign

    signed = upload(runtime, practice.dr_ada, practice.maya.id, wav, transcript=TRANSCRIPT)
    run_pipeline(runtime)
    version = sign(runtime, practice.dr_ada, signed, resolve_all(runtime, practice.dr_ada, signed))
    queued = upload(runtime, practice.dr_ada, practice.maya.id, wav_bytes(seconds=3), transcript=TRANSCRIPT)
    with session_scope(runtime.engine) as s:
        recs = {r.encounter_id: r for r in s.exec(select(Recording))}
    files = {eid: runtime.settings.recordings_dir / r.path for eid, r in recs.items()}
    assert all(p.exists() for p in files.values())

    clock.advance(seconds=1)
    receipt = withdraw(runtime, practice.dr_ada, practice.maya.id, "transcribe")
    rule = runtime.policies.consent.on_withdrawal["transcribe"]
    assert set(rule.purge) == {"audio", "transcript", "draft"} and rule.sessions == "all"
    kinds = [(i["artefact"], i.get("session_id")) for i in receipt.items]
    # every session's copy went, so the client's keys for those kinds were destroyed too
    assert {k for k, _ in kinds if k.endswith("encryption key")} == {"audio encryption key",
                                                                    "transcript encryption key",
                                                                    "draft encryption key"}
    assert ("audio", signed.id) in kinds and ("audio", queued.id) in kinds
    assert ("transcript", signed.id) in kinds and ("AI draft", signed.id) in kinds
    assert ("stopped", queued.id) in kinds
    audio_hash = next(i["sha256"] for i in receipt.items if i["artefact"] == "audio" and i.get("session_id") == signed.id)
    assert audio_hash == recs[signed.id or 0].sha256
    assert reload(runtime, queued).status == EncounterStatus.STOPPED
    with session_scope(runtime.engine) as s:
        assert s.get_one(NoteVersion, version.id).content_sha256 == version.content_sha256  # the record stays
        assert s.exec(select(Transcript)).all() == [] and s.exec(select(Draft)).all() == []
        assert s.exec(select(Job).where(Job.encounter_id == queued.id)).one().status == JobStatus.STOPPED
    assert purge.sweep_files(runtime.engine, runtime.settings.recordings_dir) == 2
    assert not any(p.exists() for p in files.values())
    flat = repr(receipt.items)
    for canary in ("Maya", "Riverside", "breathing", "anxious"):
        assert canary not in flat  # hashes and ids only

    for viewer in (practice.dr_ada, practice.root):
        with session_scope(runtime.engine) as s:
            assert (
                admin.receipt_for(s, runtime.audit_key, actor=viewer, receipt_id=receipt.id or 0, now=clock())[0].id
                == receipt.id
            )
    for outsider in (practice.dr_cole, practice.sam, practice.eve):
        with pytest.raises(NotFound), session_scope(runtime.engine) as s:
            admin.receipt_for(s, runtime.audit_key, actor=outsider, receipt_id=receipt.id or 0, now=clock())


def test_the_ledger_keeps_form_guardian_scan_and_dates(runtime: Runtime, practice: Practice, clock: Clock) -> None:
    scan = b"%PDF-1.4 signed form"
    with pytest.raises(InvalidInput, match="guardian on the client's chart"):
        grant(runtime, practice.dr_ada, practice.maya.id, ["record_audio"], guardian=0)  # none on the chart yet
    with session_scope(runtime.engine) as s:
        client = s.get_one(Client, practice.maya.id)
        client.guardians = [{"name": "Ann Lee", "relation": "mother", "authority": "parent of a minor",
                             "documents": "birth certificate"}]
        s.add(client)
    rows = grant(runtime, practice.dr_ada, practice.maya.id, ["record_audio", "transcribe"], guardian=0,
                 expires_at=clock() + timedelta(days=10), scan=scan)
    assert {r.function for r in rows} == {"record_audio", "transcribe"}
    # each entry keeps the exact form shown: its version and its whole text
    assert all(r.form_version == POLICY.forms[cast(ConsentFunction, r.function)].version
               and r.form_text == POLICY.forms[cast(ConsentFunction, r.function)].text
               for r in rows)
    assert rows[0].details["guardian"] == {"name": "Ann Lee", "relation": "mother", "authority": "parent of a minor",
                                           "documents": "birth certificate"}
    assert forms(runtime.settings.forms_dir).read(runtime.engine, rows[0].scan_path) == scan
    with runtime.engine.connect() as conn:  # the guardian's name is sealed, not in the consents row
        raw = conn.exec_driver_sql(f"SELECT details, on_behalf_of FROM consents WHERE id = {rows[0].id}").one()
    assert raw[0].startswith("S2.") and "Ann Lee" not in raw[0] and raw[1] == ""
    with session_scope(runtime.engine) as s:
        view = consent.ledger_view(s, runtime.audit_key, runtime.policies, actor=practice.dr_ada,
                                   client_id=practice.maya.id or 0, now=clock())
    states = {x.function: x.state.value for x in view.statuses}
    assert states["record_audio"] == "expiring soon" and states["egress"] == "not given"
    refused: list[tuple[list[str], dict[str, Any]]] = [
        (["nonsense"], {}), ([], {}), (["egress"], {"scan": b"MZ not a form"}),
        (["egress"], {"expires_at": clock() - timedelta(days=1)})]
    for functions, bad in refused:
        with pytest.raises(InvalidInput):
            grant(runtime, practice.dr_ada, practice.maya.id, functions, **bad)
    with pytest.raises(NotFound):
        grant(runtime, practice.dr_cole, practice.maya.id, ["egress"])  # not their client
    with pytest.raises(PermissionDenied):
        grant(runtime, practice.root, practice.maya.id, ["egress"])


def test_switches_gate_capture_at_every_level(runtime: Runtime, practice: Practice, wav: bytes, clock: Clock) -> None:
    def switch(scope: str, enabled: bool, target: int | None = None, types: tuple[str, ...] = ()) -> None:
        with session_scope(runtime.engine) as s:
            admin.set_switch(s, runtime.audit_key, runtime.policies, actor=practice.root, scope=scope, target_id=target,
                             enabled=enabled, note_types=list(types), now=clock())
        clock.advance(seconds=1)

    upload(runtime, practice.dr_ada, practice.maya.id, wav)  # on by default
    for scope, target in (("practice", None), ("clinic", practice.dr_ada.clinic_id), ("clinician", practice.dr_ada.id)):
        switch(scope, False, target)
        with pytest.raises(ConsentMissing, match=f"switched off for this {scope}"):
            upload(runtime, practice.dr_ada, practice.maya.id, wav)
        switch(scope, True, target)
    switch("clinician", True, practice.dr_ada.id, types=("dap",))
    with pytest.raises(ConsentMissing, match="SOAP notes is off"):
        upload(runtime, practice.dr_ada, practice.maya.id, wav, note_type="soap")
    upload(runtime, practice.dr_ada, practice.maya.id, wav, note_type="dap")
    upload(runtime, practice.dr_cole, practice.jonah.id, wav)  # another clinician is unaffected
    with pytest.raises(PermissionDenied), session_scope(runtime.engine) as s:
        admin.set_switch(s, runtime.audit_key, runtime.policies, actor=practice.dr_ada, scope="practice",
                         target_id=None, enabled=False, note_types=[], now=clock())


def test_browser_recording_chunks_are_durable_idempotent_and_stop_on_withdrawal(
    runtime: Runtime, practice: Practice, clock: Clock
) -> None:
    data = wav_bytes(seconds=3)
    with session_scope(runtime.engine) as s:
        encounter = recording.start(s, runtime.audit_key, runtime.policies, actor=practice.dr_ada,
                                    client_id=practice.maya.id or 0, note_type="soap", now=clock())

    def send(seq: int, piece: bytes, actor: User = practice.dr_ada) -> RecordingChunk:
        with session_scope(runtime.engine) as s:
            return recording.add_chunk(s, runtime.policies, actor=actor, encounter_id=encounter.id or 0, seq=seq, data=piece,
                                       recordings_dir=runtime.settings.recordings_dir, now=clock())

    thirds = [data[: len(data) // 3], data[len(data) // 3: 2 * len(data) // 3], data[2 * len(data) // 3:]]
    for i, piece in enumerate(thirds):
        send(i, piece)
    assert send(1, thirds[1]).seq == 1  # a retried chunk is acknowledged again, stored once
    with pytest.raises(Conflict):
        send(1, b"different bytes")
    with pytest.raises(NotFound):
        send(3, b"x", actor=practice.dr_cole)
    with session_scope(runtime.engine) as s:
        assert recording.chunk_count(s, encounter.id or 0) == 3
        recording.finish(s, runtime.audit_key, runtime.policies, actor=practice.dr_ada, encounter_id=encounter.id or 0,
                         recordings_dir=runtime.settings.recordings_dir, decoder=runtime.decoder, now=clock())
    with session_scope(runtime.engine) as s:
        rec = s.exec(select(Recording).where(Recording.encounter_id == encounter.id)).one()
    assert recordings(runtime.recordings_dir).read(runtime.engine, rec.path) == data
    assert reload(runtime, encounter).status == EncounterStatus.UPLOADED
    with pytest.raises(Conflict, match="no longer open"):
        send(3, b"late")

    # A second recording: consent to recording is withdrawn mid-way; the next chunk is refused.
    with session_scope(runtime.engine) as s:
        second = recording.start(s, runtime.audit_key, runtime.policies, actor=practice.dr_ada,
                                 client_id=practice.maya.id or 0, note_type="soap", now=clock())
    encounter = second
    send(0, thirds[0])
    clock.advance(seconds=1)
    receipt = withdraw(runtime, practice.dr_ada, practice.maya.id, "record_audio")
    assert ("stopped", second.id) in [(i["artefact"], i["session_id"]) for i in receipt.items]
    with pytest.raises((Conflict, ConsentMissing)):
        send(1, thirds[1])
    with pytest.raises(ConsentMissing), session_scope(runtime.engine) as s:
        recording.start(s, runtime.audit_key, runtime.policies, actor=practice.dr_ada, client_id=practice.maya.id or 0,
                        note_type="soap", now=clock())
    assert purge.sweep_files(runtime.engine, runtime.settings.recordings_dir) >= 1
    assert not list((runtime.settings.recordings_dir / "chunks" / str(second.id)).glob("*.chunk"))


def test_the_admin_screen_reads_no_clinical_content(runtime: Runtime, practice: Practice, wav: bytes, clock: Clock) -> None:
    upload(runtime, practice.dr_ada, practice.maya.id, wav, transcript=TRANSCRIPT)
    run_pipeline(runtime)
    with session_scope(runtime.engine) as s:
        view = admin.admin_view(s, runtime.audit_key, runtime.policies, actor=practice.root, now=clock())
    assert {u.sessions for u in view.usage if u.user.id == practice.dr_ada.id} == {1}
    row = next(r for r in view.consents if r.client.id == practice.maya.id)
    assert row.states["transcribe"].value == "in force"
    for other in (practice.dr_ada, practice.dr_ben):
        with pytest.raises(PermissionDenied), session_scope(runtime.engine) as s:
            admin.admin_view(s, runtime.audit_key, runtime.policies, actor=other, now=clock())


def test_audio_is_not_kept_after_signing_without_that_consent(
    runtime: Runtime, practice: Practice, wav: bytes, clock: Clock
) -> None:
    from tests.services.test_review import resolve_all, sign

    clock.advance(seconds=1)
    receipt = withdraw(runtime, practice.dr_ada, practice.maya.id, "keep_audio")
    assert [i for i in receipt.items if i["artefact"] != "stopped"] == []  # nothing signed yet: nothing to remove
    encounter = upload(runtime, practice.dr_ada, practice.maya.id, wav, transcript=TRANSCRIPT)
    run_pipeline(runtime)
    with session_scope(runtime.engine) as s:
        rec = s.exec(select(Recording).where(Recording.encounter_id == encounter.id)).one()
    assert rec.purged_at is None  # kept while the note is reviewed
    sign(runtime, practice.dr_ada, encounter, resolve_all(runtime, practice.dr_ada, encounter))
    with session_scope(runtime.engine) as s:
        rec = s.get_one(Recording, rec.id)
        receipts = s.exec(select(DeletionReceipt).where(DeletionReceipt.rule.startswith("keep_audio"))).all()
    assert rec.purged_at is not None and len(receipts) == 1 and receipts[0].items[0]["sha256"] == rec.sha256
    assert purge.sweep_files(runtime.engine, runtime.settings.recordings_dir) == 1
