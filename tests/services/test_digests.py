"""A long session is read in parts: the drafting model notes each whole part while the session
is recorded, and at the end writes the note from those notes and the last stretch only. The
notes are made from pseudonymized text, stored sealed, reused only for the words they were made
from, never the evidence, and removed with the draft or the transcript."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import pytest
from sqlalchemy import text
from sqlmodel import select

from scribe.db.engine import session_scope
from scribe.db.tables import DraftSentence, Transcript
from scribe.domain.notes import EncounterStatus
from scribe.domain.transcript import Segment, Speaker, Word
from scribe.engines.fakes import FakeDrafter
from scribe.engines.protocols import Engines
from scribe.runtime import Runtime
from scribe.services import recording
from tests.conftest import Clock, Practice
from tests.helpers import media, reload, run_pipeline
from tests.services.test_live import TimedTranscriber, claimed_live_job, committed, send, start, webm_pieces

PART = 1000


@dataclass
class Talker(TimedTranscriber):
    """One turn per four seconds of audio, about 120 characters each, naming the recording's own
    time; every fifth turn names the client (chart-known, so it must never reach the model)."""

    name: str = "talker"

    def segment(self, index: int, t: float, at: int) -> Segment:
        who = "Maya said" if at % 20 == 0 else "I said"
        line = f"{who} at {at} that the week was long and that sleep came late most nights after work again"
        return Segment(index, t, t + 3.5, line, Speaker.CLIENT if (at // 4) % 2 else Speaker.CLINICIAN,
                       words=(Word(t, t + 3.5, line),))


@pytest.fixture
def talker(runtime: Runtime, engines: Engines) -> Talker:
    transcriber = Talker()
    runtime.engines = Engines(transcriber, engines.redactor, engines.drafter, engines.voices)
    runtime.policies = dataclasses.replace(runtime.policies, pipeline=runtime.policies.pipeline.model_copy(
        update={"digest_part_chars": PART}))
    return transcriber


def drafter_of(runtime: Runtime) -> FakeDrafter:
    drafter = runtime.require_engines().drafter
    assert isinstance(drafter, FakeDrafter)
    return drafter


def notes(runtime: Runtime, encounter_id: int) -> list[dict[str, object]]:
    with session_scope(runtime.engine) as s:
        t = s.exec(select(Transcript).where(Transcript.encounter_id == encounter_id)).first()
        return list(t.digests or []) if t is not None else []


def finish(runtime: Runtime, practice: Practice, clock: Clock, encounter_id: int) -> None:
    with session_scope(runtime.engine) as s:
        recording.finish(s, runtime.audit_key, runtime.policies, actor=practice.dr_ada, encounter_id=encounter_id,
                         recordings_dir=runtime.settings.recordings_dir, decoder=runtime.decoder, now=clock())


def test_a_long_session_is_noted_while_recorded_and_drafted_from_the_notes_and_its_end(
        runtime: Runtime, practice: Practice, clock: Clock, talker: Talker) -> None:
    drafter = drafter_of(runtime)
    encounter = start(runtime, practice, clock)
    eid = encounter.id or 0
    pieces = webm_pieces(250.0)
    for i in range(0, len(pieces), 20):  # the worker keeps up as the pieces arrive
        send(runtime, practice, clock, encounter, pieces[i:i + 20], first=i)
        run_pipeline(runtime)
    live_parts = len(drafter.digested)
    assert live_parts >= 4 and reload(runtime, encounter).status == EncounterStatus.RECORDING
    assert len(notes(runtime, eid)) == live_parts
    # only pseudonymized text reaches the model, and what it noted is stored sealed
    seen = " ".join(p.text for p in drafter.digested)
    assert "[CLIENT] said" in seen and "Maya" not in seen
    with session_scope(runtime.engine) as s:
        raw = s.execute(text("SELECT digests FROM transcripts")).scalar_one()
    assert "said" not in raw and "CLIENT" not in raw

    finish(runtime, practice, clock, eid)
    run_pipeline(runtime)
    assert reload(runtime, encounter).status == EncounterStatus.IN_REVIEW
    assert len(drafter.digested) == live_parts  # nothing left to note: a part closed at the end is read as it is
    (earlier,) = drafter.earlier
    assert len(earlier) == len(notes(runtime, eid)) == live_parts
    given, _, _ = drafter.calls[-1]
    whole = committed(runtime, encounter)
    assert 0 < len(given.segments) < len(whole) / 4  # the drafter read the end, not the session
    assert given.segments[-1].end == pytest.approx(max(s for _, s, _ in whole) + 3.5)
    # the notes are a reading aid: every sentence is still linked to the transcript's segments
    with session_scope(runtime.engine) as s:
        sentences = s.exec(select(DraftSentence)).all()
    assert sentences and all(x.evidence for x in sentences if "said" in x.text)


def test_an_upload_is_noted_part_by_part_at_the_end(runtime: Runtime, practice: Practice, clock: Clock,
                                                    talker: Talker) -> None:
    from tests.conftest import wav_bytes
    from tests.helpers import upload

    drafter = drafter_of(runtime)
    encounter = upload(runtime, practice.dr_ada, practice.maya.id, wav_bytes(seconds=200.0))
    run_pipeline(runtime)
    assert reload(runtime, encounter).status == EncounterStatus.IN_REVIEW
    made = len(drafter.digested)
    assert made >= 3 and len(notes(runtime, encounter.id or 0)) == made  # kept for a retry of the stage
    assert len(drafter.earlier[-1]) == made
    assert all(len(p.text) < 2 * PART for p in drafter.digested)  # no prompt holds the session


def test_without_drafting_consent_nothing_is_noted_and_transcription_goes_on(
        runtime: Runtime, practice: Practice, clock: Clock, talker: Talker) -> None:
    from scribe.services import purge

    drafter = drafter_of(runtime)
    encounter = start(runtime, practice, clock)
    with session_scope(runtime.engine) as s:
        purge.withdraw(s, runtime.audit_key, runtime.policies, actor=practice.dr_ada, client_id=practice.maya.id or 0,
                       function="ai_drafting", tools=media(runtime), now=clock())
    pieces = webm_pieces(200.0)
    for i in range(0, len(pieces), 20):
        send(runtime, practice, clock, encounter, pieces[i:i + 20], first=i)
        run_pipeline(runtime)
    assert len(committed(runtime, encounter)) > 30  # transcribed live
    assert drafter.digested == [] and notes(runtime, encounter.id or 0) == []


def test_the_notes_go_with_the_draft_and_with_the_transcript(
        runtime: Runtime, practice: Practice, clock: Clock, talker: Talker) -> None:
    from scribe.services import purge

    encounter = start(runtime, practice, clock)
    eid = encounter.id or 0
    pieces = webm_pieces(200.0)
    for i in range(0, len(pieces), 20):
        send(runtime, practice, clock, encounter, pieces[i:i + 20], first=i)
        run_pipeline(runtime)
    assert notes(runtime, eid)
    with session_scope(runtime.engine) as s:  # on_withdrawal: ai_drafting purges the draft
        items = purge.withdraw(s, runtime.audit_key, runtime.policies, actor=practice.dr_ada,
                                 client_id=practice.maya.id or 0, function="ai_drafting", tools=media(runtime),
                                 now=clock()).receipt.items
    assert notes(runtime, eid) == [] and committed(runtime, encounter)  # the transcript stays
    assert [x["artefact"] for x in items] == ["AI notes on the session's parts"]
    assert all("said" not in str(x) for x in items)  # a receipt holds hashes and counts only
    with session_scope(runtime.engine) as s:  # and any left go with the transcript
        transcript = s.exec(select(Transcript).where(Transcript.encounter_id == eid)).one()
        transcript.digests = [{"start": 0.0, "end": 1.0, "sha256": "0" * 64, "text": "- noted", "model": "m"}]
        s.add(transcript)
    with session_scope(runtime.engine) as s:
        purge.purge_artefact(s, eid, "transcript", clock())
    assert notes(runtime, eid) == [] and committed(runtime, encounter) == []


def test_notes_off_reads_the_whole_transcript(runtime: Runtime, practice: Practice, clock: Clock,
                                               talker: Talker) -> None:
    runtime.policies = dataclasses.replace(runtime.policies, pipeline=runtime.policies.pipeline.model_copy(
        update={"digest_part_chars": 0}))
    drafter = drafter_of(runtime)
    encounter = start(runtime, practice, clock)
    pieces = webm_pieces(200.0)
    for i in range(0, len(pieces), 20):
        send(runtime, practice, clock, encounter, pieces[i:i + 20], first=i)
        run_pipeline(runtime)
    finish(runtime, practice, clock, encounter.id or 0)
    run_pipeline(runtime)
    assert reload(runtime, encounter).status == EncounterStatus.IN_REVIEW
    assert drafter.digested == [] and drafter.earlier == [()]
    given, _, _ = drafter.calls[-1]
    assert len(given.segments) == len(committed(runtime, encounter))


def test_a_failed_note_leaves_live_transcription_running_and_is_made_at_the_end(
        runtime: Runtime, practice: Practice, clock: Clock, talker: Talker, monkeypatch: pytest.MonkeyPatch) -> None:
    from scribe.db.tables import Job
    from scribe.domain.notes import JobKind, JobStatus

    drafter = drafter_of(runtime)
    real_digest = drafter.digest
    monkeypatch.setattr(drafter, "digest", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("model crashed")))
    encounter = start(runtime, practice, clock)
    pieces = webm_pieces(250.0)
    for i in range(0, len(pieces), 20):
        send(runtime, practice, clock, encounter, pieces[i:i + 20], first=i)
        run_pipeline(runtime)
    assert len(committed(runtime, encounter)) > 50 and notes(runtime, encounter.id or 0) == []
    with session_scope(runtime.engine) as s:
        job = s.exec(select(Job).where(Job.encounter_id == encounter.id, Job.kind == JobKind.LIVE)).one()
        assert job.status == JobStatus.DONE and job.error == ""
    monkeypatch.setattr(drafter, "digest", real_digest)
    finish(runtime, practice, clock, encounter.id or 0)
    run_pipeline(runtime)
    assert reload(runtime, encounter).status == EncounterStatus.IN_REVIEW
    assert len(drafter.digested) >= 4 and drafter.earlier[-1]


def test_a_note_from_a_worker_that_lost_the_job_is_refused(runtime: Runtime, practice: Practice, clock: Clock,
                                                           talker: Talker) -> None:
    from scribe.domain.digest import Digest
    from scribe.services import digests
    from scribe.services.jobs import LeaseLost

    encounter = start(runtime, practice, clock)
    pieces = webm_pieces(60.0)
    send(runtime, practice, clock, encounter, pieces)
    run_pipeline(runtime)
    job = claimed_live_job(runtime, encounter)
    note = Digest(0.0, 40.0, "0" * 64, "- The client said: late", "fake")
    with pytest.raises(LeaseLost):
        digests._keep(runtime, job.model_copy(update={"worker_id": "someone-else"}), note)
    assert notes(runtime, encounter.id or 0) == []
    digests._keep(runtime, job, note)
    assert notes(runtime, encounter.id or 0) == [note.to_json()]


def test_nothing_is_noted_for_a_drafter_off_this_host(runtime: Runtime, practice: Practice, clock: Clock,
                                                      talker: Talker, monkeypatch: pytest.MonkeyPatch) -> None:
    """A remote drafter reads at the end through the egress gateway; nothing leaves while recording."""
    drafter = drafter_of(runtime)
    monkeypatch.setattr(drafter, "leaves_host", True)
    encounter = start(runtime, practice, clock)
    pieces = webm_pieces(200.0)
    for i in range(0, len(pieces), 20):
        send(runtime, practice, clock, encounter, pieces[i:i + 20], first=i)
        run_pipeline(runtime)
    assert len(committed(runtime, encounter)) > 30
    assert drafter.digested == [] and notes(runtime, encounter.id or 0) == []


def test_a_remote_drafter_refuses_to_take_notes() -> None:
    from scribe.domain.errors import EngineError
    from scribe.domain.redaction import SurrogateMap
    from scribe.engines.protocols import PseudonymizedTranscript
    from scribe.engines.remote import RemoteDrafter

    class Gateway:
        def __init__(self) -> None:
            self.sent: list[object] = []

        def post_json(self, *args: object, **kwargs: object) -> dict[str, object]:
            self.sent.append(args)
            return {}

    gateway = Gateway()
    drafter = RemoteDrafter(gateway, "on-prem-llm", "m")  # type: ignore[arg-type]
    part = PseudonymizedTranscript.restore(("[S0 00:00] CLIENT: I slept well",), (), SurrogateMap(), {})
    with pytest.raises(EngineError, match="does not take notes"):
        drafter.digest(part)
    assert gateway.sent == [] and drafter.digests is False
