"""The risk lexicon against phrasings it was not written from, its negations, and ordinary
sentences that share its words (its error-injection suite: what it catches, what it wrongly
flags). The phrasings are the C-SSRS items and abuse screening questions as clients say them."""

from __future__ import annotations

import pytest

from scribe.domain.evidence import FlagKind, addresses, check_draft, find_risk_mentions, polarity_said, risk_in_sentence
from scribe.domain.transcript import parse_plain_transcript

SAID = [  # (what a client says, the category it must be found in)
    ("I just don't want to be here anymore.", "suicidal ideation"),
    ("Some nights I wish I could go to sleep and not wake up.", "suicidal ideation"),
    ("I want to end it all.", "suicidal ideation"),
    ("I keep thinking about taking all my pills at once.", "suicidal ideation"),
    ("There's no point in living like this.", "suicidal ideation"),
    ("Everyone would be better off without me.", "suicidal ideation"),
    ("I've been saving up my sleeping pills.", "suicidal ideation"),
    ("I wrote a goodbye letter last week.", "suicidal ideation"),
    ("I wish I was dead.", "suicidal ideation"),
    ("I've been scratching myself until it bleeds.", "self-harm"),
    ("Sometimes I want to hurt him so badly.", "homicidal ideation"),
    ("He slapped me in front of the kids.", "abuse or neglect"),
    ("My stepdad touches me when mom is at work.", "abuse or neglect"),
    ("She threatened to kill me if I left.", "abuse or neglect"),
    ("He chokes me when he's drunk.", "abuse or neglect"),
    ("There was no food in the house for the kids.", "abuse or neglect"),
    ("They locked me out overnight.", "abuse or neglect"),
]

DENIED = [
    "I have never wanted to end it all.",
    "I don't have any thoughts of taking all my pills.",
    "No, he has never hit me.",
    "I did not think about killing myself.",
]

ORDINARY = [  # the lexicon's words in sentences that state no risk
    "I took my pills this morning, like the doctor said.",
    "It really touched me when she called.",
    "Your letter touched me so much.",
    "It hit me that I had been alone all week.",
    "The kids hit the books after dinner.",
    "I finally woke up early and went for a run.",
    "We ended the call on a good note.",
    "I want to get back at the gym.",
    "I cut my hair short.",
    "The project is dead in the water.",
]


@pytest.mark.parametrize(("text", "category"), SAID)
def test_what_clients_say_is_found_endorsed(text: str, category: str) -> None:
    assert (category, False) in risk_in_sentence(text)


@pytest.mark.parametrize("text", DENIED)
def test_a_denial_is_found_denied(text: str) -> None:
    found = risk_in_sentence(text)
    assert found and all(negated for _, negated in found)


def test_the_lexicon_catches_every_phrasing_and_flags_no_ordinary_sentence() -> None:
    caught = sum(any(c == category and not n for c, n in risk_in_sentence(t)) for t, category in SAID)
    wrongly = [t for t in ORDINARY if risk_in_sentence(t)]
    print(f"risk lexicon: {caught}/{len(SAID)} phrasings caught, {len(wrongly)}/{len(ORDINARY)} ordinary flagged")
    assert caught == len(SAID) and wrongly == []


def test_every_mention_in_a_segment_counts_not_only_the_first() -> None:
    session = parse_plain_transcript("CLIENT: I was never suicidal before, but now I want to end it all.")
    polarities = {m.negated for m in find_risk_mentions(session) if m.category == "suicidal ideation"}
    assert polarities == {True, False}


SESSION = parse_plain_transcript("""CLINICIAN: How have things been at home?
CLIENT: Honestly, some nights I wish I could go to sleep and not wake up.
CLINICIAN: Thank you for telling me. Let's talk about keeping you safe.""")


def test_a_note_that_states_the_risk_with_the_wrong_polarity_does_not_address_it() -> None:
    flipped = check_draft([("subjective", "The client denied any suicidal ideation.")], SESSION)
    assert FlagKind.RISK_NOT_ADDRESSED in {f.kind for f in flipped.draft_flags}
    assert FlagKind.RISK_POLARITY in {f.kind for s in flipped.sentences for f in s.flags}
    faithful = check_draft([("subjective", "The client reported passive suicidal ideation at night.")], SESSION)
    assert [f.kind for f in faithful.draft_flags] == [FlagKind.RISK_NO_PLAN]  # addressed; no plan yet (below)
    [flag] = [f for f in flipped.draft_flags if f.kind == FlagKind.RISK_NOT_ADDRESSED]
    assert flag.to_json()["polarity"] == "endorsed"
    assert not addresses("The client denies suicidal ideation.", "suicidal ideation", "endorsed")
    assert addresses("The client endorsed suicidal ideation.", "suicidal ideation", "endorsed")


def test_every_unstated_clinical_decision_is_found_not_only_the_first() -> None:
    session = parse_plain_transcript("CLINICIAN: Your PTSD symptoms are easing.\nCLIENT: Yes, a little.")
    result = check_draft([("assessment", "PTSD symptoms are easing; meets criteria for bipolar disorder.")], session)
    assert not result.sentences and result.removed  # PTSD was said; bipolar was not


def test_an_endorsed_risk_with_no_plan_in_the_note_gets_its_own_flag() -> None:
    noted = ("subjective", "The client reported passive suicidal ideation at night.")
    bare = check_draft([noted], SESSION)
    assert [f.kind for f in bare.draft_flags] == [FlagKind.RISK_NO_PLAN]
    planned = check_draft([noted, ("plan", "Follow up on safety at the next session.")], SESSION)
    assert not planned.draft_flags
    denied = parse_plain_transcript("CLINICIAN: Any thoughts of suicide?\nCLIENT: No, never.")
    assert not check_draft([("subjective", "The client denied suicidal ideation.")], denied).draft_flags


@pytest.mark.parametrize("question", [
    "Does anyone at home hit you or hurt you?", "Has your partner ever threatened you?",
    "Does your husband scream at you?", "Is anyone hurting you at home?",
])
def test_the_abuse_screening_question_and_a_no_is_a_denial(question: str) -> None:
    """HITS's question (does anyone hurt, insult, threaten or scream at you?) answered "no" is
    the client's denial, which the note must then address."""
    said = parse_plain_transcript(f"CLINICIAN: {question}\nCLIENT: No, never.")
    assert polarity_said(find_risk_mentions(said), "abuse or neglect") == "denied"
    assert risk_in_sentence("Did the ball hit you?") == []
