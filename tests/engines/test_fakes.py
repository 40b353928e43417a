"""Fakes keep the adapters' signatures, so unit tests on fakes exercise the real contract."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

from scribe.domain.transcript import Segment, Speaker
from scribe.engines import fakes
from scribe.engines.llm import CT2Drafter, TransformersDrafter
from scribe.engines.presidio import PresidioRedactor
from scribe.engines.prompts import clean_output
from scribe.engines.speakers import label_speakers
from scribe.engines.whisper import WhisperTranscriber


@pytest.mark.parametrize("fake, real, method", [
    (fakes.FakeTranscriber, WhisperTranscriber, "transcribe"),
    (fakes.FakeRedactor, PresidioRedactor, "pseudonymize"),
    (fakes.FakeDrafter, CT2Drafter, "draft"),
    (fakes.FakeDrafter, TransformersDrafter, "draft"),
])
def test_each_fake_has_its_adapters_signature(fake, real, method) -> None:
    assert inspect.signature(getattr(fake, method)) == inspect.signature(getattr(real, method))


def test_importing_scribe_does_not_pull_heavy_engines() -> None:
    import subprocess
    import sys

    code = ("import sys, scribe.app, scribe.engines.build, scribe.services.pipeline; "
            "print(','.join(m for m in ('torch', 'ctranslate2', 'spacy', 'faster_whisper', 'presidio_analyzer') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""


def voice(f0: float, seconds: float, rate: int = 16000, seed: int = 0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    rng = np.random.default_rng(seed)
    sig = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 8))
    return (0.2 * sig + 0.01 * rng.standard_normal(len(t))).astype(np.float32)


def test_two_voices_get_two_speakers_and_the_first_is_the_clinician() -> None:
    parts, segments, start = [], [], 0.0
    for i in range(8):
        chunk = voice(110 if i % 2 == 0 else 230, 1.5, seed=i)
        parts.append(chunk)
        segments.append(Segment(i, start, start + 1.5, f"turn {i}"))
        start += 1.5
    labelled = label_speakers(np.concatenate(parts), tuple(segments), sample_rate=16000, clinician_first=True)
    assert [s.speaker for s in labelled] == [Speaker.CLINICIAN, Speaker.CLIENT] * 4


def test_model_output_is_trimmed_of_echoes_and_loops() -> None:
    raw = "CLIENT: The client slept well.\nSubjective:\nThe client slept well.\nThe client slept well.\nMore."
    assert clean_output(raw, 4) == "The client slept well."
    assert clean_output("One. Two. Three. Four.", 2) == "One. Two."
