"""Fakes keep the adapters' signatures, so unit tests on fakes exercise the real contract."""

from __future__ import annotations

import inspect

import pytest

from scribe.engines import fakes
from scribe.engines.llm import CT2Drafter, TransformersDrafter
from scribe.engines.presidio import PresidioRedactor
from scribe.engines.prompts import clean_output
from scribe.engines.whisper import WhisperTranscriber


@pytest.mark.parametrize(("fake", "real", "method"), [
    (fakes.FakeTranscriber, WhisperTranscriber, "transcribe"),
    (fakes.FakeRedactor, PresidioRedactor, "pseudonymize"),
    (fakes.FakeDrafter, CT2Drafter, "draft"),
    (fakes.FakeDrafter, TransformersDrafter, "draft"),
])
def test_each_fake_has_its_adapters_signature(fake: type, real: type, method: str) -> None:
    assert inspect.signature(getattr(fake, method)) == inspect.signature(getattr(real, method))


def test_importing_scribe_does_not_pull_heavy_engines() -> None:
    import subprocess
    import sys

    code = (
        "import sys, scribe.app, scribe.engines.build, scribe.services.pipeline; "
        "print(','.join(m for m in ('torch', 'ctranslate2', 'spacy', 'faster_whisper', 'presidio_analyzer') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""


def test_model_output_is_trimmed_of_echoes_and_loops() -> None:
    raw = "CLIENT: The client slept well.\nSubjective:\nThe client slept well.\nThe client slept well.\nMore."
    assert clean_output(raw, 4) == "The client slept well."
    assert clean_output("One. Two. Three. Four.", 2) == "One. Two."


def test_a_sentence_an_earlier_section_holds_is_not_written_again() -> None:
    written: set[str] = set()
    assert clean_output("The client slept well. She walked daily.", 4, written) == "The client slept well. She walked daily."
    assert clean_output("The client slept well. Mood was brighter.", 4, written) == "Mood was brighter."
    # a section that only repeats the earlier ones had nothing of its own
    assert clean_output("She walked daily.", 3, written) == "Not discussed in session."
