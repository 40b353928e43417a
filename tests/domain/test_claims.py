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
]

RIGHT = [  # faithful renderings of the same evidence: none may be flagged
    ("The client rated their anxiety at about a five this week, down from about eight last week.", SAMPLE),
    ("The client rated their anxiety as a five.", SAMPLE),
    ("Client reported sleeping well.", "I slept well, honestly the best in months."),
    ("He says he has good days and bad days.", "I still have my good days and my bad days."),
    ("She will be unable to play this season but able to next season.", "Were you able to keep playing?"),
    ("The client reports two panic attacks in the past week.", "I had two panic attacks last week."),
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
