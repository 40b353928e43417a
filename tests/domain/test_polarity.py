"""Polarity against the evidence: a denial turned into an affirmation (or back) is a
contradiction; the same polarity said another way, or a claim the transcript leaves unsaid,
is not. bench/faithfulness.py measures the check on ACI-Bench with flipped negations."""

from __future__ import annotations

import pytest

from scribe.domain.evidence import FlagKind, check_draft
from scribe.domain.polarity import polarity_clashes, said_in
from scribe.domain.transcript import parse_plain_transcript

WRONG = [  # (note sentence, transcript)
    ("He endorses shortness of breath.",
     "CLINICIAN: Any shortness of breath when you walk?\nCLIENT: No, none at all."),
    ("She has had panic attacks since the last session.",
     "CLIENT: I haven't had any panic attacks since the last session."),
    ("The client is sleeping through the night.", "CLIENT: I'm still not sleeping through the night."),
    ("Denies nightmares about the accident.",
     "CLINICIAN: Are you having nightmares about the accident?\nCLIENT: Yeah, most nights."),
    ("Tobacco use: never.", "CLIENT: I still use chewing tobacco every day."),
    # the note's verb denies its subject: the negation follows the shared words
    ("Her morning panic attacks have not come back this month.",
     "CLIENT: The morning panic attacks came back this month, almost every day."),
    # a word and its plural meet (migraine / migraines)
    ("He endorses issues with the migraines.",
     "CLINICIAN: Okay, so no issue with the migraine?\nCLIENT: None whatsoever."),
    # a statement that ends by checking the listener follows is not a question
    ("Range of motion is not decreased.",
     "CLINICIAN: You have some pain to palpation and some decreased range of motion, okay?\nCLIENT: Mm-hmm."),
    # a short question about one thing the sentence names, answered yes or no
    ("She endorses blood in her stool.", "CLINICIAN: Any blood?\nCLIENT: No."),
    ("He is no longer on his metformin.", "CLINICIAN: And you are still on your metformin?\nCLIENT: Yes."),
]

RIGHT = [
    ("He denies shortness of breath.",
     "CLINICIAN: Any shortness of breath when you walk?\nCLIENT: No, none at all."),
    ("She has not had panic attacks since the last session.",
     "CLIENT: I haven't had any panic attacks since the last session."),
    ("Reports nightmares about the accident.",
     "CLINICIAN: Are you having nightmares about the accident?\nCLIENT: Yeah, most nights."),
    ("The client is sleeping through the night.", "CLINICIAN: Are you sleeping through the night?\nCLIENT: Mm."),
    ("She has good days and bad days at work.", "CLIENT: Work is not easy, but I have good days and bad days."),
    # in speech a negated verb after the words is about something else
    ("Reports eczema on both hands.", "CLIENT: The eczema on both hands just isn't going away."),
    ("She denies blood in her stool.", "CLINICIAN: Any blood?\nCLIENT: No."),
    ("He is still on his metformin.", "CLINICIAN: And you are still on your metformin?\nCLIENT: Yes."),
    # a real question at the end of a turn keeps its answer's polarity
    ("Denies chest pain.", "CLINICIAN: Any chest pain, okay?\nCLIENT: No."),
]


def _flags(sentence: str, transcript: str) -> list[str]:
    checked = check_draft([("subjective", sentence)], parse_plain_transcript(transcript))
    return [f.reason for s in checked.sentences for f in s.flags if f.kind == FlagKind.CONTRADICTION]


@pytest.mark.parametrize(("sentence", "transcript"), WRONG)
def test_the_other_polarity_than_the_transcript_is_a_contradiction(sentence: str, transcript: str) -> None:
    segments = parse_plain_transcript(transcript)
    position = {s.index: at for at, s in enumerate(segments)}
    assert polarity_clashes(sentence, said_in([s.index for s in segments], segments, position))
    assert any("the transcript" in reason for reason in _flags(sentence, transcript))


@pytest.mark.parametrize(("sentence", "transcript"), RIGHT)
def test_the_same_polarity_or_an_unanswered_question_passes(sentence: str, transcript: str) -> None:
    assert _flags(sentence, transcript) == []
