"""Live transcription on the real pinned small models: the bundled sample session, sent as the
browser's recorder sends it (WebM/Opus in two-second pieces), transcribed window by window while
it is "recorded", then finished: the final transcript is as good as the cold path's, and the
transcribe stage transcribed only what live transcription had not. Slow; runs in CI."""

from __future__ import annotations

import io
import itertools
import re
from pathlib import Path
from typing import Any

import jiwer
import pytest
from sqlmodel import select

from scribe.config import ROOT, Settings
from scribe.db.engine import session_scope
from scribe.db.tables import Transcript
from scribe.domain.notes import EncounterStatus
from scribe.domain.transcript import TranscriptResult
from scribe.engines.build import build_engines
from scribe.engines.protocols import Audio, Deadline, Engines, Transcriber
from scribe.policies import load_policies
from scribe.runtime import build_runtime
from scribe.services import recording
from scribe.services.demo import SAMPLE_AUDIO, SAMPLE_SCRIPT
from scribe.services.pipeline import load_segments
from tests.helpers import reload, run_pipeline

pytestmark = pytest.mark.slow


class Counting:
    """The real transcriber, noting the offset and length of every piece of audio it is given."""

    def __init__(self, inner: Transcriber) -> None:
        self.inner, self.name = inner, inner.name
        self.calls: list[tuple[float, float]] = []

    def transcribe(self, audio: Audio, deadline: Deadline | None = None, **kw: Any) -> TranscriptResult:
        self.calls.append((audio.offset, audio.seconds))
        return self.inner.transcribe(audio, deadline, **kw)


def words(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9' ]", " ", text.lower()).split())


def webm(data: bytes) -> bytes:
    import av

    out = io.BytesIO()
    with av.open(io.BytesIO(data), mode="r") as src, av.open(out, "w", format="webm") as dst:
        stream = dst.add_stream("libopus", rate=48000)
        stream.layout, stream.bit_rate = "mono", 32000
        resampler = av.AudioResampler(format="flt", layout="mono", rate=48000)
        for frame in src.decode(audio=0):
            for piece in resampler.resample(frame):
                for packet in stream.encode(piece):
                    dst.mux(packet)
        for packet in stream.encode(None):
            dst.mux(packet)
    return out.getvalue()


def test_the_sample_is_transcribed_live_and_the_rest_at_the_end(tmp_path: Path) -> None:
    from tests.conftest import Clock, make_practice

    settings = Settings(data_dir=tmp_path / "var", model_profile="test", models_dir=ROOT / "models")
    real = build_engines(settings, load_policies(ROOT / "policies"))
    counting = Counting(real.transcriber)
    clock = Clock()
    rt = build_runtime(settings, engines=Engines(counting, real.redactor, real.drafter, real.voices), clock=clock)
    practice = make_practice(rt, clock)
    data = webm(SAMPLE_AUDIO.read_bytes())
    n = 43  # about two seconds a piece, as the recorder sends them
    size = -(-len(data) // n)
    pieces = [data[i:i + size] for i in range(0, len(data), size)]
    with session_scope(rt.engine) as s:
        encounter = recording.start(s, rt.audit_key, rt.policies, actor=practice.dr_ada, client_id=practice.maya.id or 0,
                                    note_type="soap", now=clock())
    shown: list[list[tuple[int, str]]] = []
    for seq, piece in enumerate(pieces):
        with session_scope(rt.engine) as s:
            recording.add_chunk(s, rt.policies, actor=practice.dr_ada, encounter_id=encounter.id or 0, seq=seq, data=piece,
                                recordings_dir=settings.recordings_dir, now=clock())
        if seq % 10 == 9:
            run_pipeline(rt)  # the worker, between pieces
            with session_scope(rt.engine) as s:
                shown.append([(x.index, x.text) for x in load_segments(s, encounter.id or 0)])
    with session_scope(rt.engine) as s:
        until = s.exec(select(Transcript).where(Transcript.encounter_id == encounter.id)).one().live_until
    assert until > 40  # most of the 85 s was transcribed while it was recorded
    for earlier, later in itertools.pairwise(shown):
        assert later[:len(earlier)] == earlier  # what was shown never changed
    live_calls = len(counting.calls)
    with session_scope(rt.engine) as s:
        recording.finish(s, rt.audit_key, rt.policies, actor=practice.dr_ada, encounter_id=encounter.id or 0,
                         recordings_dir=settings.recordings_dir, decoder=rt.decoder, now=clock())
    run_pipeline(rt)
    assert reload(rt, encounter).status == EncounterStatus.IN_REVIEW
    offset, seconds = counting.calls[live_calls]
    assert offset == pytest.approx(until) and seconds < 85 - 40  # the tail only
    with session_scope(rt.engine) as s:
        final = load_segments(s, encounter.id or 0)
    reference = words(" ".join(line.split(":", 1)[1] for line in SAMPLE_SCRIPT.read_text().splitlines() if line.strip()))
    wer = jiwer.wer(reference, words(" ".join(x.text for x in final)))
    assert wer < 0.35, wer  # the cold path's bar on the same sample (test_real_pipeline)
    assert {x.speaker.value for x in final} == {"clinician", "client"}
