"""Issue 20: consent that holds on every path. A withdrawal reaches the supervision meetings
that discussed the client (their case silenced in the recording, removed from the transcript,
its pseudonymized copy and the draft; other cases untouched; signed notes unchanged). Part 2:
a 2.31 consent with every element, disclosures only to the recipient it names (or a QSOA),
the notice and the consent's terms with every disclosure, and the tag following every
derived artefact (a property test)."""

from __future__ import annotations

import io
import json
from datetime import datetime, timedelta
from typing import Any, cast

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray
from sqlmodel import Session, select

from scribe.config import Settings
from scribe.db.engine import session_scope
from scribe.db.tables import (
    Client,
    DeletionReceipt,
    Draft,
    DraftSentence,
    Encounter,
    NoteVersion,
    Pseudonymization,
    Recording,
    User,
)
from scribe.domain.clients import ChartInput
from scribe.domain.egress import PART2_NOTICE, Destination, Payload, may_send
from scribe.domain.errors import InvalidInput
from scribe.engines.protocols import Engines
from scribe.policies import Policies
from scribe.runtime import Runtime
from scribe.services import consent, exports, fhir, purge, uploads
from scribe.services.audit_report import AccessRow
from scribe.services.files import recordings
from scribe.services.pipeline import load_segments
from scribe.services.purge import Withdrawn
from scribe.services.retention import ReportRow, RetentionSummary
from scribe.services.scrub import REMOVED
from tests.conftest import PASSWORD, Clock, Fakes, Practice, clock_of, wav_bytes
from tests.helpers import TRANSCRIPT, media, reload, run_pipeline, upload
from tests.services.test_consent_ledger import PART2_TERMS, grant
from tests.services.test_review import lock, resolve_all, sign, view

MEETING = """CLINICIAN: Let us start with your caseload this week, Sam.
CLIENT: I want to talk about Priya Castellano; she missed two sessions and I was unsure whether to call her.
CLINICIAN: And the other one, Jonah Whitfield, how is he doing with the exposure work?
CLIENT: Jonah Whitfield did the first exposure and rated his anxiety lower afterwards.
CLINICIAN: Good. Keep documenting the ratings."""


def meeting(runtime: Runtime, practice: Practice, seconds: float = 26.0) -> Encounter:
    """A supervision meeting of dr_ben with sam and dr_cole's supervisee cases... both cases:
    Priya (sam's client) and Jonah (made sam's too, so the meeting's redactor knows him)."""
    with session_scope(runtime.engine) as s:
        jonah = s.get_one(Client, practice.jonah.id)
        jonah.clinician_id = practice.sam.id or 0
        s.add(jonah)
    with session_scope(runtime.engine) as s:
        encounter = uploads.accept_supervision_upload(
            s, runtime.audit_key, runtime.policies, recordings_dir=runtime.recordings_dir, decoder=runtime.decoder,
            actor=practice.dr_ben, participant_ids=[practice.sam.id or 0], participants_agreed=True,
            stream=io.BytesIO(wav_bytes(seconds=seconds)), now=runtime.clock())
    with session_scope(runtime.engine) as s:
        rec = s.exec(select(Recording).where(Recording.encounter_id == encounter.id)).one()
    (runtime.recordings_dir / (rec.path + ".txt")).write_text(MEETING)
    run_pipeline(runtime)
    return encounter


def withdraw(runtime: Runtime, actor: User, client_id: int | None, function: str) -> Withdrawn:
    with session_scope(runtime.engine) as s:
        done = purge.withdraw(s, runtime.audit_key, runtime.policies, actor=actor, client_id=client_id or 0,
                              function=function, tools=media(runtime), now=runtime.clock())
    purge.remove_unreferenced(runtime.engine, runtime.recordings_dir, done.stale_files)
    return done


def meeting_audio(runtime: Runtime, encounter: Encounter) -> NDArray[np.float32]:
    with session_scope(runtime.engine) as s:
        rec = s.exec(select(Recording).where(Recording.encounter_id == encounter.id)).one()
    data = recordings(runtime.recordings_dir).read(runtime.engine, rec.path)
    samples: NDArray[np.float32] = runtime.decoder.pcm(data, max_seconds=600).samples
    return samples


def test_a_withdrawal_takes_the_case_out_of_the_supervision_meeting(runtime: Runtime, practice: Practice) -> None:
    encounter = meeting(runtime, practice)
    with session_scope(runtime.engine) as s:
        before = [x.text for x in load_segments(s, encounter.id or 0)]
        assert "Priya Castellano" in before[1]
        sentences = s.exec(select(DraftSentence).join(Draft).where(Draft.encounter_id == encounter.id)).all()
        assert any(1 in x.evidence for x in sentences)
    audio = meeting_audio(runtime, encounter)
    assert np.abs(audio[6 * 16000:9 * 16000]).max() > 0.05  # the case is audible before
    clock_of(runtime).advance(seconds=1)
    done = withdraw(runtime, practice.sam, practice.priya.id, "supervision_use")
    with session_scope(runtime.engine) as s:
        after = [x.text for x in load_segments(s, encounter.id or 0)]
        p = s.exec(select(Pseudonymization).where(Pseudonymization.encounter_id == encounter.id)).one()
        sentences = s.exec(select(DraftSentence).join(Draft).where(Draft.encounter_id == encounter.id)).all()
        draft = s.exec(select(Draft).where(Draft.encounter_id == encounter.id)).one()
        receipt = s.get_one(DeletionReceipt, done.receipt.id)
    assert after[1] == REMOVED and after[3] == before[3]  # only the withdrawn client's case goes; Jonah's stays
    assert "Castellano" not in json.dumps(after) and p.segment_texts[1] == REMOVED
    assert not any(k.startswith(f"case{practice.priya.id}:") for k in p.surrogates["forward"])  # no way back
    assert not any(1 in x.evidence for x in sentences)
    assert f"C-{practice.priya.id:04d}" not in json.dumps(draft.ai_sections) + " ".join(x.text for x in sentences)
    assert any(f["kind"] == "case_left_out" for f in draft.draft_flags)
    silenced = meeting_audio(runtime, encounter)
    assert np.abs(silenced[5 * 16000 + 100:10 * 16000 - 100]).max() == 0.0  # the case's five seconds are silent
    assert np.abs(silenced[15 * 16000:20 * 16000]).max() > 0.05  # Jonah's case is not
    assert not (runtime.recordings_dir / done.stale_files[0]).exists()  # the old file, with the case, is gone
    kinds = {i["artefact"] for i in receipt.items}
    assert {"supervision audio: case silenced", "supervision transcript: case removed",
            "supervision draft: sentences removed"} <= kinds


def test_a_signed_supervision_note_keeps_its_case_reference(runtime: Runtime, practice: Practice) -> None:
    encounter = meeting(runtime, practice)
    version = sign(runtime, practice.dr_ben, encounter, resolve_all(runtime, practice.dr_ben, encounter))
    clock_of(runtime).advance(seconds=1)
    withdraw(runtime, practice.sam, practice.priya.id, "supervision_use")
    with session_scope(runtime.engine) as s:
        stored = s.get_one(NoteVersion, version.id)
        assert stored.content == version.content  # a record never changes
        text = json.dumps(stored.content)
        assert "Priya" not in text and "Castellano" not in text  # it named the case by reference only
        assert load_segments(s, encounter.id or 0)[1].text == REMOVED  # the transcript still loses the case


def test_a_legal_hold_keeps_the_meeting_whole(runtime: Runtime, practice: Practice) -> None:
    encounter = meeting(runtime, practice)
    with session_scope(runtime.engine) as s:
        client = s.get_one(Client, practice.priya.id)
        client.legal_hold = True
        s.add(client)
    clock_of(runtime).advance(seconds=1)
    done = withdraw(runtime, practice.sam, practice.priya.id, "supervision_use")
    with session_scope(runtime.engine) as s:
        assert "Priya Castellano" in load_segments(s, encounter.id or 0)[1].text
        assert any(i.get("kept") == "legal hold" for i in s.get_one(DeletionReceipt, done.receipt.id).items)


def test_a_part2_consent_needs_every_2_31_element(runtime: Runtime, practice: Practice) -> None:
    import dataclasses

    for field, empty in (("recipient", ""), ("purpose", " "), ("information", ""), ("expiry", ""),
                         ("signed_by", ""), ("signed_on", ""), ("revocation_explained", False)):
        with pytest.raises(InvalidInput, match="Part 2 records needs"):
            grant(runtime, practice.dr_ada, practice.maya.id, ["part2_disclosure"],
                  part2=dataclasses.replace(PART2_TERMS, **cast(dict[str, Any], {field: empty})))
    with pytest.raises(InvalidInput, match=r"the whole 42 CFR 2.31 section"):
        grant(runtime, practice.dr_ada, practice.maya.id, ["part2_disclosure"], part2=None)
    [row] = grant(runtime, practice.dr_ada, practice.maya.id, ["part2_disclosure"])
    assert row.details["part2"]["recipient"] == "practice-ehr" and row.details["part2"]["revocation_explained"]
    assert "2.31" in row.form_text and "revoke" in row.form_text  # the exact form text shown is kept


def test_part2_goes_only_to_the_recipient_the_consent_names_or_a_qsoa(runtime: Runtime, practice: Practice) -> None:
    grant(runtime, practice.dr_ada, practice.maya.id, ["part2_disclosure"])
    now = runtime.clock()
    with session_scope(runtime.engine) as s:
        assert consent.part2_basis(s, runtime.policies, client_id=practice.maya.id or 0, recipient="Practice-EHR",
                                   now=now)[0]
        ok, why = consent.part2_basis(s, runtime.policies, client_id=practice.maya.id or 0, recipient="onprem-llm", now=now)
        assert not ok and "names another recipient" in why
        ok, why = consent.part2_basis(s, runtime.policies, client_id=practice.jonah.id or 0, recipient="x", now=now)
        assert not ok and "no consent" in why
        assert consent.part2_basis(s, runtime.policies, client_id=practice.jonah.id or 0, recipient="lab", now=now,
                                   qsoa=True)[0]
    dest = [Destination("lab", "https://lab.example/x", ("redacted_text",), part2=True, qsoa=True),
            Destination("other", "https://o.example/x", ("redacted_text",), part2=True)]
    with_notice = Payload("redacted_text", (PART2_NOTICE + " text",), part2=True)
    assert may_send(dest, "lab", with_notice, part2_consent=False)  # a QSOA: its agreement is the basis
    assert not may_send(dest, "other", with_notice, part2_consent=False)
    assert not may_send(dest, "lab", Payload("redacted_text", ("text",), part2=True), part2_consent=False)


def test_a_part2_disclosure_to_the_ehr_carries_the_notice_and_a_copy_of_the_consent(
    runtime: Runtime, practice: Practice, wav: bytes
) -> None:
    encounter = upload(runtime, practice.dr_ada, practice.maya.id, wav, transcript=TRANSCRIPT)
    with session_scope(runtime.engine) as s:
        e = s.get_one(Encounter, encounter.id)
        e.part2 = True
        s.add(e)
    run_pipeline(runtime)
    sign(runtime, practice.dr_ada, encounter, resolve_all(runtime, practice.dr_ada, encounter))
    grant(runtime, practice.dr_ada, practice.maya.id, ["part2_disclosure"])
    with session_scope(runtime.engine) as s:
        x = exports.prepare_export(s, runtime.audit_key, runtime.policies, actor=practice.dr_ada,
                                   encounter_id=encounter.id or 0, password=PASSWORD, now=runtime.clock(), fmt="fhir")
        terms = consent.part2_terms(s, client_id=practice.maya.id or 0, now=runtime.clock())
    bundle = fhir.note_bundle(x, drafted_by="m", part2_consent=terms)
    found = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Consent"]
    assert len(found) == 1 and found[0]["provision"]["actor"][0]["reference"]["display"] == "practice-ehr"
    text = json.dumps(bundle)
    assert PART2_NOTICE in text and "coordination of care" in text and "42CFRPart2" in text
    assert "recipient practice-ehr" in exports.render_text(x)  # the text export says on what basis


def test_a_meeting_that_discusses_a_part2_case_is_a_part2_record(runtime: Runtime, practice: Practice) -> None:
    with session_scope(runtime.engine) as s:
        client = s.get_one(Client, practice.priya.id)
        client.part2_program = True
        s.add(client)
    encounter = meeting(runtime, practice)
    assert reload(runtime, encounter).part2
    version = sign(runtime, practice.dr_ben, encounter, resolve_all(runtime, practice.dr_ben, encounter))
    assert version.content.get("part2") is True


@settings(max_examples=10, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
@given(how=st.sampled_from(["program", "tagged at upload"]), amend=st.booleans(), meet=st.booleans(),
       consented=st.booleans())
def test_the_part2_label_reaches_every_derived_artefact(how: str, amend: bool, meet: bool, consented: bool,
                                                         tmp_path_factory: pytest.TempPathFactory,
                                                         policies: Policies) -> None:
    """Property: however a session became Part 2, every artefact derived from it carries the
    label: each signed version (addenda and amendments too), every export's notice and basis,
    the FHIR security labels, a supervision meeting that discussed the client, emergency
    access (closed), and any disclosure (refused without the consent naming the recipient)."""
    from scribe.config import Settings
    from scribe.domain.errors import NotFound
    from scribe.domain.notes import VersionKind
    from scribe.engines.fakes import FakeDrafter, FakeRedactor, FakeTranscriber
    from scribe.runtime import build_runtime
    from scribe.services import breakglass, records
    from tests.conftest import Clock, make_practice

    clock = Clock()
    rt = build_runtime(Settings(data_dir=tmp_path_factory.mktemp("p2") / "var", engines="fake",
                                worker_in_process=False), policies=policies,
                       engines=Engines(FakeTranscriber(), FakeRedactor(), FakeDrafter()), clock=clock)
    p = make_practice(rt, clock)
    if how == "program":
        with session_scope(rt.engine) as s:
            c = s.get_one(Client, p.priya.id)
            c.part2_program = True
            s.add(c)
    with session_scope(rt.engine) as s:
        e = uploads.accept_upload(s, rt.audit_key, rt.policies, recordings_dir=rt.recordings_dir, decoder=rt.decoder,
                                  actor=p.sam, client_id=p.priya.id or 0, note_type="soap", filename="s.wav",
                                  stream=io.BytesIO(wav_bytes()), now=clock(), part2=how == "tagged at upload")
    from tests.helpers import confirm

    confirm(rt, p.sam, e)
    run_pipeline(rt)
    v = sign(rt, p.sam, e, resolve_all(rt, p.sam, e))
    from tests.services.test_supervision import cosign

    cosign(rt, p.dr_ben, v.id)
    if amend:
        clock.advance(minutes=1)
        with session_scope(rt.engine) as s:
            records.correct(s, rt.audit_key, rt.policies, actor=p.sam, encounter_id=e.id or 0, kind=VersionKind.ADDENDUM,
                            password=PASSWORD, attested=True, now=clock(), addendum="Called back.")
    if consented:
        grant(rt, p.sam, p.priya.id, ["part2_disclosure"])
    assert reload(rt, e).part2
    with session_scope(rt.engine) as s:
        versions = s.exec(select(NoteVersion)).all()
        assert versions and all(x.content.get("part2") is True for x in versions)
        x = exports.prepare_export(s, rt.audit_key, rt.policies, actor=p.sam, encounter_id=e.id or 0, password=PASSWORD,
                                   now=clock(), fmt="text")
    text = exports.render_text(x)
    assert text.startswith(PART2_NOTICE) and (("recipient practice-ehr" in text) == consented)
    labels = {lab["code"] for lab in fhir.note_bundle(x, drafted_by="m")["meta"]["security"]}
    assert {"42CFRPart2", "NORDSCLCD", "ETH"} <= labels
    with session_scope(rt.engine) as s:
        ok, _ = consent.part2_basis(s, rt.policies, client_id=p.priya.id or 0, recipient="practice-ehr", now=clock())
        assert ok == consented
        assert not consent.part2_basis(s, rt.policies, client_id=p.priya.id or 0, recipient="elsewhere", now=clock())[0]
    with session_scope(rt.engine) as s, pytest.raises(NotFound):  # emergency access never opens it
        breakglass.request_grant(s, rt.audit_key, rt.policies.security, actor=p.dr_cole, mrn=p.priya.mrn,
                                 reason="client in crisis, treating clinician away", minutes=30, now=clock())
    if meet:
        m = meeting(rt, p)
        assert reload(rt, m).part2
    rt.engine.dispose()


def test_every_consent_function_stops_what_it_covers(runtime: Runtime, practice: Practice, wav: bytes) -> None:
    """Walk the policy: without each function, what it covers does not happen (the steps'
    own tests are in test_consent_ledger; this checks every function has a covered step)."""
    from scribe.domain.notes import PIPELINE

    steps = runtime.policies.consent.steps
    covered = {f for funcs in steps.values() for f in funcs}
    assert covered == set(runtime.policies.consent.functions)
    assert {"record", "upload", *(k.value for k in PIPELINE), "keep_audio", "supervision", "egress",
            "part2_disclosure"} <= set(steps)


# --- retention: every kind of record by its own rule ------------------------------------

def _retention(runtime: Runtime) -> RetentionSummary:
    from scribe.services import retention

    with session_scope(runtime.engine) as s:
        return retention.run(s, runtime.audit_key, runtime.policies, now=runtime.clock())


def test_a_supervisees_session_comes_due_after_its_cosignature(
    runtime: Runtime, practice: Practice, wav: bytes, clock: Clock
) -> None:
    from scribe.db.tables import Transcript
    from tests.services.test_supervision import cosign, signed_by_sam

    encounter, version = signed_by_sam(runtime, practice, wav)
    days = runtime.policies.retention.after_signing.transcript_days
    clock.advance(days=days + 1)
    assert _retention(runtime)["by_rule"]["after signing: transcript"] == 0  # not a record yet: not due
    cosign(runtime, practice.dr_ben, version.id)
    clock.advance(days=days - 1)
    assert _retention(runtime)["by_rule"]["after signing: transcript"] == 0  # counted from the co-signature
    clock.advance(days=2)
    summary = _retention(runtime)
    assert summary["by_rule"]["after signing: transcript"] == 1
    with session_scope(runtime.engine) as s:
        assert s.exec(select(Transcript).where(Transcript.encounter_id == encounter.id)).first() is None


def test_supervision_meetings_come_due_and_their_keys_are_shredded(runtime: Runtime, practice: Practice, clock: Clock) -> None:
    from scribe.db.tables import DataKey, Transcript

    encounter = meeting(runtime, practice)
    sign(runtime, practice.dr_ben, encounter, resolve_all(runtime, practice.dr_ben, encounter))
    rules = runtime.policies.retention.supervision_meetings
    clock.advance(days=max(rules.audio_days, rules.transcript_days, rules.draft_days) + 1)
    summary = _retention(runtime)
    assert summary["by_rule"]["supervision meeting: transcript"] == 1
    with session_scope(runtime.engine) as s:
        assert s.exec(select(Transcript).where(Transcript.encounter_id == encounter.id)).first() is None
        receipt = s.get_one(DeletionReceipt, summary["receipts"][0])
        assert receipt.client_id is None and receipt.owner == f"meetings:{practice.dr_ben.id}"
        keys = s.exec(select(DataKey).where(DataKey.owner == f"meetings:{practice.dr_ben.id}")).all()
        gone = {k.kind for k in keys if k.destroyed_at is not None}
        assert {"transcript", "draft"} <= gone and "record" not in gone  # the signed note's key stays
        assert s.get(NoteVersion, 1) is not None


def test_unsigned_sessions_and_abandoned_recordings_come_due(
    runtime: Runtime, practice: Practice, wav: bytes, clock: Clock
) -> None:
    from scribe.db.tables import RecordingChunk, Transcript
    from scribe.services import recording as rec_service

    left = upload(runtime, practice.dr_ada, practice.maya.id, wav, transcript=TRANSCRIPT)
    run_pipeline(runtime)
    with session_scope(runtime.engine) as s:
        open_one = rec_service.start(s, runtime.audit_key, runtime.policies, actor=practice.dr_ada,
                                     client_id=practice.maya.id or 0, note_type="soap", now=clock())
    with session_scope(runtime.engine) as s:
        rec_service.add_chunk(s, runtime.policies, actor=practice.dr_ada, encounter_id=open_one.id or 0, seq=0,
                              data=b"\x1aE\xdf\xa3 piece", recordings_dir=runtime.recordings_dir, now=clock())
    policy = runtime.policies.retention
    clock.advance(hours=policy.abandoned_recording_hours + 1)
    summary = _retention(runtime)
    assert summary["by_rule"]["abandoned recording: audio"] == 1 and summary["by_rule"]["never signed: transcript"] == 0
    abandoned = reload(runtime, open_one)
    assert abandoned.status == "stopped" and "abandoned" in abandoned.status_reason
    with session_scope(runtime.engine) as s:
        assert s.exec(select(RecordingChunk).where(RecordingChunk.encounter_id == open_one.id)).first() is None
    clock.advance(days=policy.unsigned.days)
    summary = _retention(runtime)
    assert summary["by_rule"]["never signed: transcript"] == 1 and summary["by_rule"]["never signed: draft"] == 1
    with session_scope(runtime.engine) as s:
        assert s.exec(select(Transcript).where(Transcript.encounter_id == left.id)).first() is None


def test_the_retention_report_shows_due_held_and_disposed_per_rule(
    runtime: Runtime, practice: Practice, wav: bytes, clock: Clock
) -> None:
    from scribe.services import retention

    encounter = upload(runtime, practice.dr_ada, practice.maya.id, wav, transcript=TRANSCRIPT)
    run_pipeline(runtime)
    sign(runtime, practice.dr_ada, encounter, resolve_all(runtime, practice.dr_ada, encounter))
    other = upload(runtime, practice.dr_cole, practice.jonah.id, wav, transcript=TRANSCRIPT)
    run_pipeline(runtime)
    sign(runtime, practice.dr_cole, other, resolve_all(runtime, practice.dr_cole, other))
    with session_scope(runtime.engine) as s:
        retention.set_legal_hold(s, runtime.audit_key, actor=practice.root, client_id=practice.jonah.id or 0, hold=True,
                                 reason="subpoena", now=clock())
    clock.advance(days=400)

    def rows() -> tuple[dict[tuple[str, str], ReportRow], list[DeletionReceipt]]:
        with session_scope(runtime.engine) as s:
            found, receipts = retention.report(s, runtime.audit_key, runtime.policies, actor=practice.root, now=clock())
        return {(r.rule, r.artefact): r for r in found}, receipts

    before, _ = rows()
    assert before[("after signing", "transcript")].due == 1 and before[("after signing", "transcript")].held == 1
    _retention(runtime)
    after, receipts = rows()
    assert after[("after signing", "transcript")].due == 0 and after[("after signing", "transcript")].held == 1
    assert after[("after signing", "transcript")].disposed == 1 and receipts
    with pytest.raises(Exception, match="admins"), session_scope(runtime.engine) as s:
        retention.report(s, runtime.audit_key, runtime.policies, actor=practice.dr_ada, now=clock())


# --- the access report ------------------------------------------------------------------

# Client actions a scenario in one test process cannot reach, and why (each is covered elsewhere):
NOT_IN_SCENARIO = {
    "note.send": "needs an EHR endpoint: tests/services/test_exports.py sends one and checks its audit row",
    "recording.start": "browser recording: tests/services/test_consent_ledger.py", "recording.finish": "the same",
    # one code path (pipeline._stop) records every stage's failure; the scenario fails transcription
    "pipeline.pseudonymize.failed": "pipeline._stop", "pipeline.draft.failed": "pipeline._stop",
    "pipeline.evidence.failed": "pipeline._stop",
}


def _report(runtime: Runtime, practice: Practice, client: Client, *, since: datetime | None = None,
            until: datetime | None = None) -> list[AccessRow]:
    from scribe.services import audit_report

    with session_scope(runtime.engine) as s:
        query = audit_report.resolve_query(s, runtime.audit_key, actor=practice.root, mrn=client.mrn, since=since,
                                           until=until, now=runtime.clock())
    return list(audit_report.access_rows(runtime.engine, practice.root.clinic_id, query))


def test_every_audited_client_action_appears_in_that_clients_access_report(
    runtime: Runtime, practice: Practice, wav: bytes, clock: Clock, fakes: Fakes
) -> None:
    """Walk the catalogue: a day's work that does every client action at least once, then each
    client's report. Every action the catalogue says touches a client is in some client's
    report; nothing in a client's report is about another client; nothing is capped."""
    from scribe.domain.audit_actions import TOUCHES, Touches
    from scribe.domain.notes import VersionKind
    from scribe.services import admin, breakglass, clients, encounters, records, retention, review
    from scribe.services import supervision as sup
    from tests.services.test_encounters import _second_client, set_service
    from tests.services.test_supervision import cosign, return_it, signed_by_sam

    ada, maya = practice.dr_ada, practice.maya
    e = upload(runtime, ada, maya.id, wav, transcript=TRANSCRIPT)
    run_pipeline(runtime)
    v = view(runtime, ada, e)
    with session_scope(runtime.engine) as s:  # a refused signature (sections unreviewed)
        with pytest.raises(Exception):
            review.sign(s, runtime.audit_key, runtime.policies, actor=ada, encounter_id=e.id or 0, password=PASSWORD,
                        attested=True, lock_version=lock(v), now=clock())
    with session_scope(runtime.engine) as s:  # the voices came out the wrong way round, then back
        from scribe.services import voices

        version = voices.swap(s, runtime.audit_key, runtime.policies, actor=ada, encounter_id=e.id or 0,
                              first="clinician", second="client", lock_version=lock(v),
                              now=clock()).lock_version
        voices.swap(s, runtime.audit_key, runtime.policies, actor=ada, encounter_id=e.id or 0, first="clinician",
                    second="client", lock_version=version, now=clock())
    sign(runtime, ada, e, resolve_all(runtime, ada, e))
    for kind, kw in ((VersionKind.ADDENDUM, {"addendum": "Called back."}),
                     (VersionKind.AMENDMENT, {"texts": {"plan": "Meet Tuesday."}})):
        clock.advance(minutes=1)
        with session_scope(runtime.engine) as s:
            records.correct(s, runtime.audit_key, runtime.policies, actor=ada, encounter_id=e.id or 0, kind=kind,
                            password=PASSWORD, attested=True, now=clock(), **kw)
    with session_scope(runtime.engine) as s:
        records.export_text(s, runtime.audit_key, runtime.policies, actor=ada, encounter_id=e.id or 0, password=PASSWORD,
                            now=clock())
        review.recording_for_actor(s, runtime.audit_key, actor=ada, encounter_id=e.id or 0,
                                   recordings_dir=runtime.recordings_dir, now=clock())
        encounters.queue(s, ada, key=runtime.audit_key, now=clock())
        clients.list_clients(s, runtime.audit_key, actor=ada, now=clock())
        clients.client_page(s, runtime.audit_key, actor=ada, client_id=maya.id or 0, now=clock())
        consent.ledger_view(s, runtime.audit_key, runtime.policies, actor=ada, client_id=maya.id or 0, now=clock())
    [row] = grant(runtime, ada, maya.id, ["egress"], scan=b"%PDF-1.4 form")
    with session_scope(runtime.engine) as s:
        consent.scanned_form(s, runtime.audit_key, actor=ada, client_id=maya.id or 0, consent_id=row.id or 0,
                             forms_dir=runtime.settings.forms_dir, now=clock())
        clients.update_client(s, runtime.audit_key, actor=ada, client_id=maya.id or 0,
                              chart=_chart_of(s.get_one(Client, maya.id), phone="555-010-4444"), now=clock())
    clock.advance(seconds=1)
    done = withdraw(runtime, ada, maya.id, "egress")
    with session_scope(runtime.engine) as s:
        admin.receipt_for(s, runtime.audit_key, actor=ada, receipt_id=done.receipt.id or 0, now=clock())
        admin.admin_view(s, runtime.audit_key, runtime.policies, actor=practice.root, now=clock())
    second = _second_client(runtime, practice)
    wrong = upload(runtime, ada, second, wav, transcript=TRANSCRIPT)
    voided = upload(runtime, ada, maya.id, wav, transcript=TRANSCRIPT)
    set_service(runtime, ada, voided)
    with session_scope(runtime.engine) as s:
        encounters.move_session(s, runtime.audit_key, runtime.policies, actor=ada, encounter_id=wrong.id or 0,
                                client_id=maya.id or 0, recordings_dir=runtime.recordings_dir, now=clock())
        encounters.void_session(s, runtime.audit_key, actor=ada, encounter_id=voided.id or 0,
                                reason="duplicate of another session", now=clock())
    from scribe.domain.errors import EngineError

    fakes.transcriber.fail_with = EngineError("unreadable", retryable=False)
    failing = upload(runtime, ada, maya.id, wav, transcript=TRANSCRIPT)
    run_pipeline(runtime)
    fakes.transcriber.fail_with = None
    with session_scope(runtime.engine) as s:
        encounters.retry_stage(s, runtime.audit_key, runtime.policies, actor=ada, encounter_id=failing.id or 0, now=clock())
    run_pipeline(runtime)
    # the supervisee's side: a co-signature queue, a return, a co-signature
    se, sv = signed_by_sam(runtime, practice, wav)
    with session_scope(runtime.engine) as s:
        sup.pending_for(s, runtime.audit_key, actor=practice.dr_ben, now=clock())
    return_it(runtime, practice.dr_ben, sv.id)
    sv2 = sign(runtime, practice.sam, se, resolve_all(runtime, practice.sam, se))
    cosign(runtime, practice.dr_ben, sv2.id)
    with session_scope(runtime.engine) as s:  # a refused co-signature: it is a record already
        with pytest.raises(Exception):
            sup.cosign(s, runtime.audit_key, runtime.policies, actor=practice.dr_ben, version_id=sv2.id or 0,
                       password=PASSWORD, attested=True, now=clock())
    # emergency access: refused for a Part 2 client (audited under the client), then granted for Maya
    with session_scope(runtime.engine) as s:
        part2 = s.get_one(Client, practice.priya.id)
        part2.part2_program = True
        s.add(part2)
    with session_scope(runtime.engine) as s, pytest.raises(Exception):
        breakglass.request_grant(s, runtime.audit_key, runtime.policies.security, actor=practice.dr_cole,
                                 mrn=practice.priya.mrn, reason="client in crisis, treating clinician away",
                                 minutes=30, now=clock())
    with session_scope(runtime.engine) as s:
        g = breakglass.request_grant(s, runtime.audit_key, runtime.policies.security, actor=practice.dr_cole,
                                     mrn=maya.mrn, reason="client in crisis, treating clinician away", minutes=30,
                                     now=clock())
    with session_scope(runtime.engine) as s:
        breakglass.grant_view(s, runtime.audit_key, actor=practice.dr_cole, grant_id=g.id or 0, now=clock())
    with session_scope(runtime.engine) as s:
        admin_two = _second_admin(s, practice)
        breakglass.review(s, runtime.audit_key, runtime.policies.security, actor=admin_two, grant_id=g.id or 0,
                          note="appropriate", now=clock())
    # a supervision meeting, a withdrawal that reaches it, holds, discharge, a transfer, retention
    meeting(runtime, practice)
    clock.advance(seconds=1)
    withdraw(runtime, practice.sam, practice.priya.id, "supervision_use")
    with session_scope(runtime.engine) as s:
        retention.set_legal_hold(s, runtime.audit_key, actor=practice.root, client_id=maya.id or 0, hold=True,
                                 reason="request", now=clock())
        retention.set_legal_hold(s, runtime.audit_key, actor=practice.root, client_id=maya.id or 0, hold=False,
                                 reason="", now=clock())
        clients.set_status(s, runtime.audit_key, actor=ada, client_id=maya.id or 0, status="discharged", now=clock())
        clients.set_status(s, runtime.audit_key, actor=ada, client_id=maya.id or 0, status="active", now=clock())
    with session_scope(runtime.engine) as s:
        clients.create_client(s, runtime.audit_key, actor=practice.ivy, chart=_chart_of(s.get_one(Client, maya.id),
                              given_name="Nadia", mrn="MRN-NEW-1"), clinician_id=ada.id, now=clock())
    clock.advance(days=800)
    _retention(runtime)
    with session_scope(runtime.engine) as s:
        clients.transfer_client(s, runtime.audit_key, actor=ada, client_id=maya.id or 0, to_clinician_id=practice.dr_cole.id or 0,
                                reason="client request", now=clock())

    reports = {}
    with session_scope(runtime.engine) as s:
        everyone = list(s.exec(select(Client).where(Client.clinic_id == practice.root.clinic_id)))
    for c in everyone:
        reports[c.id] = _report(runtime, practice, c)
    seen = {r.action for rows in reports.values() for r in rows}
    wanted = {a for a, t in TOUCHES.items() if t == Touches.CLIENT and a not in NOT_IN_SCENARIO
              and not a.endswith(".stopped")}
    assert wanted - seen == set(), f"client actions missing from every report: {sorted(wanted - seen)}"
    # attribution is exact: a row in Maya's report names Maya, and concerns an object of hers
    maya_rows = reports[maya.id]
    assert maya_rows and all(r.client.startswith("Maya Thompson") for r in maya_rows)
    assert not any(f"#{practice.jonah.id}" == r.object.split()[-1] and r.object.startswith("client") for r in maya_rows)
    assert {"draft.edit", "draft.flag.confirm", "consent.form.read", "breakglass.grant", "cosign.queue.read",
            "encounter.list", "client.list", "consent.status.read"} <= {r.action for r in maya_rows} | \
        {r.action for r in reports[practice.priya.id]}
    # a date range cuts the report; the roles and bases are there
    late = _report(runtime, practice, maya, since=clock() - timedelta(days=1))
    assert late and all(r.at >= clock() - timedelta(days=1) for r in late) and len(late) < len(maya_rows)
    assert {r.role for r in maya_rows} >= {"clinician", "admin"}
    assert any(r.action == "breakglass.list" and "grant #" in r.basis for r in maya_rows)


def _chart_of(client: Client, **changes: Any) -> ChartInput:
    from datetime import date as _date

    from scribe.domain.clients import ChartInput, Person

    base: dict[str, Any] = {
        "given_name": client.given_name,
        "family_name": client.family_name,
        "preferred_name": client.preferred_name,
        "date_of_birth": client.date_of_birth or _date(1990, 1, 1),
        "mrn": client.mrn,
        "phone": client.phone,
        "contacts": tuple(Person(c["name"], c.get("relation", ""), c.get("phone", "")) for c in client.contacts),
    }
    return ChartInput(**{**base, **changes})


def _second_admin(s: Session, practice: Practice) -> User:
    from scribe.db.tables import User
    from tests.conftest import persona_password_hash

    admin = User(clinic_id=practice.root.clinic_id, username="root2", full_name="Second Admin", role="admin",
                 password_hash=persona_password_hash(), created_at=practice.root.created_at, licence_status="inactive")
    s.add(admin)
    s.flush()
    return admin


def test_the_access_report_streams_every_row_as_csv_without_a_cap(
    runtime: Runtime, practice: Practice, wav: bytes, settings: Settings
) -> None:
    from fastapi.testclient import TestClient  # noqa: F401

    from scribe.app import create_app
    from tests.web.test_web import client_for

    e = upload(runtime, practice.dr_ada, practice.maya.id, wav, transcript=TRANSCRIPT)
    run_pipeline(runtime)
    with session_scope(runtime.engine) as s:
        from scribe.services import review

        for _ in range(600):  # more reads than the page shows
            review.review_view(s, runtime.audit_key, runtime.policies, actor=practice.dr_ada, encounter_id=e.id or 0,
                               now=runtime.clock())
    app = create_app(settings, runtime=runtime, start_worker=False)
    web = client_for(app, "root")
    page = web.get(f"/admin/audit?mrn={practice.maya.mrn}")
    assert page.status_code == 200 and "the CSV export has them all" in page.text
    out = web.get(f"/admin/audit.csv?mrn={practice.maya.mrn}")
    lines = out.text.strip().splitlines()
    assert out.status_code == 200 and lines[0].startswith("at_utc,user,role,action")
    assert sum(1 for line in lines if ",encounter.read," in line) == 600 and len(lines) > 601
    assert "Riverside Bakery" not in out.text  # ids and names, never clinical text
    assert web.get("/admin/audit?mrn=NOPE").status_code == 404
    assert client_for(app, "dr_ada").get(f"/admin/audit.csv?mrn={practice.maya.mrn}").status_code == 403
    overview = web.get("/admin/compliance")
    assert overview.status_code == 200 and "Emergency access grants" in overview.text and "Maya" not in overview.text


def test_after_a_withdrawal_no_chunk_is_accepted_and_the_model_is_not_called(
    runtime: Runtime, practice: Practice, wav: bytes, fakes: Fakes
) -> None:
    """S14: withdrawal stops what needs the consent at once: no further piece of a recording
    is accepted, and the drafting model is not called for the client again."""
    from scribe.domain.errors import Conflict, ConsentMissing
    from scribe.services import recording
    from scribe.worker import Worker

    encounter = upload(runtime, practice.dr_ada, practice.maya.id, wav, transcript=TRANSCRIPT)
    Worker(runtime).run_once()  # transcribed
    with session_scope(runtime.engine) as s:
        live = recording.start(s, runtime.audit_key, runtime.policies, actor=practice.dr_ada, client_id=practice.maya.id or 0,
                               note_type="soap", now=runtime.clock())
    with session_scope(runtime.engine) as s:
        recording.add_chunk(s, runtime.policies, actor=practice.dr_ada, encounter_id=live.id or 0, seq=0, data=b"piece-0",
                            recordings_dir=runtime.recordings_dir, now=runtime.clock())
    calls = len(fakes.drafter.calls)
    clock_of(runtime).advance(seconds=1)
    withdraw(runtime, practice.dr_ada, practice.maya.id, "ai_drafting")
    withdraw(runtime, practice.dr_ada, practice.maya.id, "record_audio")
    with session_scope(runtime.engine) as s, pytest.raises((ConsentMissing, Conflict)):
        recording.add_chunk(s, runtime.policies, actor=practice.dr_ada, encounter_id=live.id or 0, seq=1, data=b"piece-1",
                            recordings_dir=runtime.recordings_dir, now=runtime.clock())
    run_pipeline(runtime)
    assert len(fakes.drafter.calls) == calls  # 0 model calls after the withdrawal
    assert reload(runtime, encounter).status == "stopped"
