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


def test_markdown_and_an_echoed_title_are_taken_out_of_a_section() -> None:
    raw = ("History of Present Illness** **Heart failure:** **Symptoms:** Chest pain and shortness of breath. "
           "**Start:** [DATE]\n## Depression\n* Feeling *sad* most days")
    assert clean_output(raw, 6, title="History of present illness") == (
        "Symptoms: Chest pain and shortness of breath. Start: [DATE] Depression. Feeling sad most days.")
    # a sentence that opens with the title's word is no echo of it
    assert clean_output("Plan: meet weekly.\nPlan to call her sister.", 4, title="Plan") == \
        "meet weekly. Plan to call her sister."
    # without markdown the answer is as before
    assert clean_output("The client slept well. Mood was brighter.", 4, title="Subjective") == \
        "The client slept well. Mood was brighter."


def test_a_long_section_gets_a_token_budget_to_match() -> None:
    """A section asked for ten sentences may generate more tokens than one asked for three: the
    budget follows the sentence budget, with the drafter's own as its floor."""
    from scribe.domain.transcript import parse_plain_transcript
    from scribe.engines.fakes import FakeRedactor
    from scribe.engines.llm import _SectionDrafter
    from scribe.engines.protocols import Deadline, SectionRequest

    budgets: list[int] = []

    class Recording(_SectionDrafter):
        def _generate(self, messages: list[dict[str, str]], static: str, deadline: Deadline | None,
                      max_new: int) -> tuple[str, int, int]:
            budgets.append(max_new)
            return "The client slept well.", 1, 1

    transcript = FakeRedactor().pseudonymize(parse_plain_transcript("CLIENT: I slept well."), [])
    sections = [SectionRequest("a", "A", "What was said.", 3), SectionRequest("b", "B", "What was said.", 10)]
    Recording().draft(transcript, "note", sections)
    assert budgets == [160, 320]
