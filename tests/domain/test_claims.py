"""Claims against their evidence: a quantity's time and a quality's direction (issue 15's
examples), and the faithful sentences beside them that must pass. bench/faithfulness.py measures the
same checks on ACI-Bench with injected errors."""

from __future__ import annotations

import pytest

from scribe.domain.claims import contradictions, quantities
from scribe.domain.evidence import FlagKind, check_draft
from scribe.domain.transcript import parse_plain_transcript

SAMPLE = "About a five, last week it was closer to eight."

WRONG = [  # (note sentence, evidence): each must be flagged
    ("The client rated their anxiety as a five last week and an eight this week.", SAMPLE),
    ("Client reported sleeping poorly.", "I slept well, honestly the best in months."),
    ("The client feels better this week.", "I feel worse than I did, if I'm honest."),
    ("Her mood has improved since the last session.", "My mood has worsened since we last met."),
    ("The client reports he is doing poorly.", "Honestly I'm doing well this week."),
    ("Client reported sleeping well.", "I haven't slept well in weeks."),
]

RIGHT = [  # faithful renderings of the same evidence: none may be flagged
    ("The client rated their anxiety at about a five this week, down from about eight last week.", SAMPLE),
    ("The client rated their anxiety as a five.", SAMPLE),
    ("Client reported sleeping well.", "I slept well, honestly the best in months."),
    ("He says he has good days and bad days.", "I still have my good days and my bad days."),
    ("She will be unable to play this season but able to next season.", "Were you able to keep playing?"),
    ("The client reports two panic attacks in the past week.", "I had two panic attacks last week."),
    ("The client reports he is doing poorly.", "I'm not doing well at all."),
    ("Client reported sleeping poorly.", "I haven't slept well in weeks."),
]


@pytest.mark.parametrize(("sentence", "evidence"), WRONG)
def test_a_claim_the_evidence_contradicts_is_found(sentence: str, evidence: str) -> None:
    assert contradictions(sentence, [evidence])


@pytest.mark.parametrize(("sentence", "evidence"), RIGHT)
def test_a_faithful_claim_is_not_flagged(sentence: str, evidence: str) -> None:
    assert contradictions(sentence, [evidence]) == []


def test_a_number_inside_a_time_expression_is_part_of_the_time() -> None:
    assert [(q.value, q.when) for q in quantities("Two weeks ago it was a seven")] == [("7", "before")]


def test_the_reversed_rating_of_the_sample_is_a_contradiction_flag_in_the_draft_check() -> None:
    session = parse_plain_transcript("CLINICIAN: How has your anxiety been, from zero to ten?\nCLIENT: " + SAMPLE)
    result = check_draft([("subjective", WRONG[0][0]), ("subjective", RIGHT[0][0])], session)
    flags = [{f.kind for f in s.flags} for s in result.sentences]
    assert FlagKind.CONTRADICTION in flags[0] and FlagKind.CONTRADICTION not in flags[1]


SPEAKER_WRONG = [  # (note sentence, transcript): the note gives the client's report to the clinician
    ("The clinician observed that she runs five miles a day.",
     "CLINICIAN: how much are you running?\nCLIENT: I run about five miles a day before work."),
    ("The therapist noticed that he has been sleeping poorly since the move.",
     "CLINICIAN: I know you've been sleeping poorly since the move.\nCLIENT: yeah."),
    ("The clinician stated that the panic attacks started after the accident.",
     "CLINICIAN: okay.\nCLIENT: the panic attacks started right after the accident."),
]
SPEAKER_RIGHT = [  # what the clinician did observe or say
    ("On exam, her lungs are clear to auscultation.", "CLINICIAN: your lungs are clear.\nCLIENT: good."),
    ("The clinician observed that the client was tearful when discussing her mother.",
     "CLINICIAN: I notice you are tearful as you talk about your mother.\nCLIENT: it's hard."),
    ("I advised the patient to stop the ibuprofen.",
     "CLIENT: I take ibuprofen for the pain.\nCLINICIAN: I'd like you to stop the ibuprofen for now."),
    ("The client reports that she runs five miles a day.", "CLIENT: I run about five miles a day before work."),
]


def _contradicted(sentence: str, transcript: str) -> list[str]:
    checked = check_draft([("assessment", sentence)], parse_plain_transcript(transcript))
    return [f.reason for s in checked.sentences for f in s.flags if f.kind == FlagKind.CONTRADICTION]


@pytest.mark.parametrize(("sentence", "transcript"), SPEAKER_WRONG)
def test_the_clients_report_given_to_the_clinician_is_a_contradiction(sentence: str, transcript: str) -> None:
    assert any("the note says the clinician" in reason for reason in _contradicted(sentence, transcript))


@pytest.mark.parametrize(("sentence", "transcript"), SPEAKER_RIGHT)
def test_what_the_clinician_observed_or_said_passes(sentence: str, transcript: str) -> None:
    assert _contradicted(sentence, transcript) == []


def test_an_event_added_to_a_supported_sentence_is_found() -> None:
    """The sentence's support stays high (most of it was said); its added part shares no word
    with the transcript, and that part is named."""
    transcript = parse_plain_transcript("CLIENT: I run about five miles a day, mostly in the morning.")
    checked = check_draft([("subjective", "She runs five miles a day, after a bicycle crash.")], transcript)
    reasons = [f.reason for s in checked.sentences for f in s.flags if f.kind == FlagKind.UNSUPPORTED]
    assert reasons == ["nothing in the transcript says 'a bicycle crash'"]
    faithful = check_draft([("subjective", "She runs five miles a day, mostly in the morning.")], transcript)
    assert not [f for s in faithful.sentences for f in s.flags]


def test_a_named_day_the_transcript_never_says_is_unsupported() -> None:
    transcript = parse_plain_transcript("CLIENT: I had two panic attacks last week, both at work.\n"
                                        "CLINICIAN: Let's look at what happened before each one.")
    made_up = check_draft([("subjective", "The client had two panic attacks yesterday at work.")], transcript)
    assert any(f.kind == FlagKind.UNSUPPORTED and "'yesterday'" in f.reason for f in made_up.sentences[0].flags)
    said = check_draft([("subjective", "The client had two panic attacks last week at work.")], transcript)
    assert not [f for f in said.sentences[0].flags if "never says" in f.reason]


def test_an_invented_part_is_named_even_when_the_whole_sentence_is_unsupported() -> None:
    transcript = parse_plain_transcript("CLIENT: Work has been a lot lately.\nCLINICIAN: How is your running going?")
    checked = check_draft([("subjective", "Marathon training continues despite exhaustion, after a bicycle crash.")],
                          transcript)
    reasons = [f.reason for s in checked.sentences for f in s.flags if f.kind == FlagKind.UNSUPPORTED]
    assert "nothing in the transcript says 'a bicycle crash'" in reasons
    assert len(reasons) >= 2  # the sentence's own low support is flagged beside it


def test_a_negated_quality_is_named_as_said() -> None:
    assert contradictions("The client reports he is doing well.", ["I'm not doing well at all."]) == [
        "the note says 'do … well', the transcript 'do … not well'"]
    assert contradictions("Client reported sleeping well.", ["I've been sleeping more lately."]) == []
