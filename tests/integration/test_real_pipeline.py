"""The whole pipeline on the real pinned small models (the `test` profile) and the bundled
sample session. Slow, and still run in CI: `make test` installs the test profile first."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from scribe.config import ROOT, Settings
from scribe.db.engine import session_scope
from scribe.db.tables import DraftSentence, NoteVersion
from scribe.domain.notes import EncounterStatus
from scribe.domain.transcript import Speaker
from scribe.engines.build import build_decoder, build_engines
from scribe.engines.protocols import Engines, VoiceHints
from scribe.policies import Policies, load_policies
from scribe.runtime import build_runtime
from scribe.services.demo import SAMPLE_AUDIO, SAMPLE_SCRIPT
from scribe.worker import Worker
from tests.helpers import reload, upload

pytestmark = pytest.mark.slow


class RecordingDrafter:
    """Wraps the real drafter and keeps exactly what it was given."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.name = inner, inner.name
        self.inputs: list[str] = []
        self.leaves_host = inner.leaves_host
        self.digests = inner.digests

    def draft(self, transcript: Any, note_name: str, sections: Any, deadline: Any = None,
              earlier: tuple[str, ...] = ()) -> Any:
        self.inputs.append("\n".join([*earlier, transcript.text]))
        return self.inner.draft(transcript, note_name, sections, deadline, earlier)

    def digest(self, part: Any, deadline: Any = None) -> Any:
        self.inputs.append(part.text)
        return self.inner.digest(part, deadline)


def recorded(engines: Engines) -> RecordingDrafter:
    drafter = engines.drafter
    assert isinstance(drafter, RecordingDrafter)
    return drafter


@pytest.fixture(scope="module")
def real_engines() -> Engines:
    settings = Settings(model_profile="test", models_dir=ROOT / "models")
    engines = build_engines(
        settings, load_policies(ROOT / "policies")
    )  # fails loudly (never skips) if the test profile is not installed
    return Engines(engines.transcriber, engines.redactor, RecordingDrafter(engines.drafter), engines.voices)


def words(text: str) -> list[str]:
    return re.sub(r"[^a-z0-9' ]", " ", text.lower()).split()


def test_the_real_engines_stop_at_a_passed_deadline(real_engines: Engines) -> None:
    """Whisper stops after the segment it is on, the drafter after the token it is on."""
    from scribe.domain.errors import StageTimedOut
    from scribe.engines.protocols import Deadline, SectionRequest

    audio = build_decoder(load_policies(ROOT / "policies")).pcm(SAMPLE_AUDIO.read_bytes(), max_seconds=3600)
    with pytest.raises(StageTimedOut, match="transcription took longer"):
        real_engines.transcriber.transcribe(audio, Deadline.after(0.001, "transcription"))
    transcript = real_engines.redactor.pseudonymize(real_engines.transcriber.transcribe(audio).segments[:4], [])
    with pytest.raises(StageTimedOut, match="drafting took longer"):
        real_engines.drafter.draft(transcript, "SOAP note", [SectionRequest("s", "Subjective", "Summarise.", 3)],
                                   Deadline.after(0.001, "drafting"))


def test_the_sample_transcribes_in_time_order_with_both_speakers(real_engines: Engines) -> None:
    audio = build_decoder(load_policies(ROOT / "policies")).pcm(SAMPLE_AUDIO.read_bytes(), max_seconds=3600)
    result = real_engines.transcriber.transcribe(audio)
    assert real_engines.voices is not None
    result = dataclasses.replace(result, segments=real_engines.voices.label(audio.samples, result.segments,
                                                                              VoiceHints(2)))
    starts = [s.start for s in result.segments]
    assert starts == sorted(starts) and all(s.end >= s.start for s in result.segments)
    assert 80 < result.duration < 90
    speakers = [s.speaker for s in result.segments]
    assert speakers[0] == Speaker.CLINICIAN and Speaker.CLIENT in speakers
    import jiwer

    reference = " ".join(line.split(":", 1)[1] for line in SAMPLE_SCRIPT.read_text().splitlines() if line.strip())
    wer = jiwer.wer(" ".join(words(reference)), " ".join(words(" ".join(s.text for s in result.segments))))
    assert wer < 0.35, wer


def test_the_real_pipeline_drafts_without_identifiers_and_signs(
    tmp_path: Path, real_engines: Engines, policies: Policies
) -> None:
    from tests.conftest import Clock, make_practice

    settings = Settings(data_dir=tmp_path / "var", model_profile="test", worker_in_process=False)
    clock = Clock()
    runtime = build_runtime(settings, policies=policies, engines=real_engines, clock=clock)
    people = make_practice(runtime, clock)
    encounter = upload(runtime, people.dr_ada, people.maya.id, SAMPLE_AUDIO.read_bytes())
    Worker(runtime).run_until_idle()
    fresh = reload(runtime, encounter)
    assert fresh.status == EncounterStatus.IN_REVIEW, fresh.status_reason

    seen = recorded(real_engines).inputs[-1].lower()
    for identifier in ("maya", "thompson", "laura", "555-201", "maya.t@example.org", "riverside bakery"):
        assert identifier not in seen, identifier
    assert "[client]" in seen

    with session_scope(runtime.engine) as s:
        sentences = s.exec(select(DraftSentence)).all()
    assert sentences and all(x.evidence or x.flags for x in sentences)

    from tests.services.test_review import resolve_all, sign

    version = sign(runtime, people.dr_ada, encounter, resolve_all(runtime, people.dr_ada, encounter))
    from sqlalchemy import text
    from sqlalchemy.exc import DatabaseError

    with pytest.raises(DatabaseError, match="append-only"), runtime.engine.begin() as conn:
        conn.execute(text("UPDATE note_versions SET content_sha256 = 'forged'"))
    with session_scope(runtime.engine) as s:
        assert s.get_one(NoteVersion, version.id).content_sha256 == version.content_sha256


def test_the_real_redactor_catches_what_the_chart_does_not_know(real_engines: Engines) -> None:
    from scribe.domain.transcript import parse_plain_transcript

    segments = parse_plain_transcript(
        "CLIENT: My neighbor Gregory Hall drove me, you can reach me at 415-555-0199 or greg.hall@example.com.\n"
        "CLIENT: I was born on April 2, 1979 and my social is 078-05-1120.")
    out = real_engines.redactor.pseudonymize(segments, []).text
    for leaked in ("Gregory", "415-555-0199", "greg.hall@example.com", "1979", "078-05-1120"):
        assert leaked not in out, leaked


def test_redaction_makes_no_outbound_connection(real_engines: Engines) -> None:
    import socket
    import sys

    from scribe.domain.transcript import parse_plain_transcript

    attempts: list[tuple[Any, ...]] = []

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if event == "socket.connect":
            attempts.append(args)

    sys.addaudithook(hook)
    real_engines.redactor.pseudonymize(parse_plain_transcript("CLIENT: see https://example.com or a@b.org"), [])
    assert attempts == [] and socket  # the redactor never dialled out (tldextract forced offline)


def test_a_real_supervision_meeting_is_drafted_by_case_reference(
    tmp_path: Path, real_engines: Engines, policies: Policies
) -> None:
    """The supervisor uploads a meeting with a supervisee who treats the client heard in it:
    the real redactor withholds every chart identifier of the supervisee's clients from the
    real drafter, and the signed supervision note feeds the supervisee's hours."""
    import io

    from scribe.db.tables import Client, HoursEntry
    from scribe.services import uploads
    from tests.conftest import Clock, make_practice
    from tests.services.test_review import resolve_all, sign, view

    settings = Settings(data_dir=tmp_path / "var", model_profile="test", worker_in_process=False)
    clock = Clock()
    runtime = build_runtime(settings, policies=policies, engines=real_engines, clock=clock)
    people = make_practice(runtime, clock)
    with session_scope(runtime.engine) as s:
        maya = s.get_one(Client, people.maya.id)
        maya.clinician_id = people.sam.id or 0  # Maya is the supervisee's client here
        s.add(maya)
    with session_scope(runtime.engine) as s:
        encounter = uploads.accept_supervision_upload(
            s, runtime.audit_key, policies, recordings_dir=settings.recordings_dir, decoder=runtime.decoder,
            actor=people.dr_ben,
            participant_ids=[people.sam.id or 0], participants_agreed=True, stream=io.BytesIO(SAMPLE_AUDIO.read_bytes()),
            now=clock())
    Worker(runtime).run_until_idle()
    fresh = reload(runtime, encounter)
    assert fresh.status == EncounterStatus.IN_REVIEW, fresh.status_reason

    seen = recorded(real_engines).inputs[-1].lower()
    for identifier in ("maya", "thompson", "laura", "555-201", "riverside bakery"):
        assert identifier not in seen, identifier
    assert "[case_1]" in seen

    v = view(runtime, people.dr_ben, encounter)
    assert [x.key for x in v.sections] == [x.key for x in policies.template("supervision").sections]
    shown = " ".join(x.text for x in v.sections).lower()
    assert "maya" not in shown and "thompson" not in shown
    assert next(x for x in v.sections if x.key == "duration").text == "Individual supervision, 1 minute(s), with Sam Tester."
    sign(runtime, people.dr_ben, encounter, resolve_all(runtime, people.dr_ben, encounter))
    with session_scope(runtime.engine) as s:
        (entry,) = s.exec(select(HoursEntry).where(HoursEntry.user_id == people.sam.id)).all()
    assert entry.category == "individual_supervision" and 80 / 3600 < entry.hours < 90 / 3600


def test_scribe_redact_reads_stdin_and_prints_spans(tmp_path: Path) -> None:
    """`scribe redact --chart` on speech-like text: the chart's identifiers in spoken form,
    and what no chart knows (a spoken email, a cued lowercase name) are all found."""
    import json
    import os
    import subprocess
    import sys

    chart = tmp_path / "chart.json"
    chart.write_text(json.dumps({"given_name": "Maya", "family_name": "Thompson", "date_of_birth": "1991-03-14",
                                 "contacts": [{"name": "Laura Thompson", "relation": "sister", "phone": "555-201-3344"}]}))
    text = ("maya said laura's number is five five five two oh one three three four four, she was born march "
            "fourteenth nineteen ninety one, write to sam dot lee at example dot org, my friend jonah came too")
    env = {**os.environ, "SCRIBE_MODEL_PROFILE": "test", "SCRIBE_MODELS_DIR": str(ROOT / "models")}
    out = subprocess.run([sys.executable, "-m", "scribe.cli", "redact", "--chart", str(chart)], input=text,
                         capture_output=True, text=True, env=env, timeout=300, check=True)
    result = json.loads(out.stdout)
    redacted = result["redacted"].lower()
    for leaked in ("maya", "laura", "five five five", "march fourteenth", "nineteen ninety one", "sam dot lee", "jonah"):
        assert leaked not in redacted, leaked
    assert {"start", "end", "entity_type", "score"} <= set(result["spans"][0])
    assert all(text[s["start"]:s["end"]] for s in result["spans"])


def test_the_transcript_is_a_cached_prefix_for_every_section(real_engines: Engines) -> None:
    """The drafter reads the transcript once per note: it is the generator's static (cached)
    prompt, the same for every section, even where the tokenizer would merge across its end
    (SmolLM2 does at the blank line); prompt and rest still spell the whole prompt."""
    from scribe.engines.prompts import chat_messages, source_block
    from scribe.engines.protocols import SectionRequest

    drafter = recorded(real_engines).inner
    text = "CLINICIAN: How was your week?\nCLIENT: Better, I slept well.\n" * 40
    source = source_block(text)
    parts = [drafter._prompt_tokens(chat_messages(source, "SOAP note", SectionRequest(k, k.title(), "Summarise.", 3)),
                                    source) for k in ("subjective", "plan")]
    (static_a, rest_a), (static_b, rest_b) = parts
    assert static_a and static_a == static_b and rest_a != rest_b
    assert len(static_a) > 10 * len(rest_a)
    whole = drafter._tok.convert_tokens_to_string(static_a + rest_a)
    assert "I slept well" in whole and whole.rstrip().endswith(drafter._tok.convert_tokens_to_string(rest_a).rstrip())


def test_the_real_drafter_notes_a_part_and_drafts_from_notes_and_the_rest(real_engines: Engines) -> None:
    """A long session's path on the real model: one part's notes (pseudonymized text in, one fact
    a line out), then sections written from the notes and the last stretch, with the notes and
    the rest read once as the cached prefix."""
    from scribe.domain.transcript import parse_plain_transcript
    from scribe.engines.prompts import chat_messages, source_block
    from scribe.engines.protocols import SectionRequest
    from scribe.services.digests import part_of
    from tests.helpers import TRANSCRIPT

    drafter = recorded(real_engines)
    transcript = real_engines.redactor.pseudonymize(parse_plain_transcript(TRANSCRIPT), [])
    noted = drafter.digest(part_of(transcript, 0, 5))
    assert noted.text and all(line.startswith("- ") for line in noted.text.splitlines())
    assert noted.prompt_tokens > 0 < noted.generated_tokens
    assert "Laura" not in drafter.inputs[-1] and "555-201-3344" not in drafter.inputs[-1]
    rest = part_of(transcript, 6)
    sections = [SectionRequest(k, k.title(), "Summarise.", 2) for k in ("subjective", "plan")]
    result = drafter.draft(rest, "SOAP note", sections, earlier=(noted.text,))
    assert set(result.sections) == {"subjective", "plan"} and result.generated_tokens > 0
    assert noted.text in drafter.inputs[-1] and "Laura" not in drafter.inputs[-1]
    source = source_block(rest.text, (noted.text,))
    static, tail = drafter.inner._prompt_tokens(chat_messages(source, "SOAP note", sections[0]), source)
    assert "Notes taken on the earlier parts" in drafter.inner._tok.convert_tokens_to_string(static)
    assert len(static) > len(tail)
