"""Numbers as said and as written, and what each counts: a note that counts the same thing with
another number than the transcript is flagged; the same number written another way is not.
bench/faithfulness.py measures the check on ACI-Bench with injected numbers."""

from __future__ import annotations

import pytest

from scribe.domain.evidence import FlagKind, check_draft
from scribe.domain.quantities import count_mismatches, counted, numbers, spoken_to_digits
from scribe.domain.transcript import parse_plain_transcript


@pytest.mark.parametrize(("said", "digits"), [
    ("twenty five", "25"), ("fifteen hundred", "1500"), ("a thousand", "1000"), ("one hundred and twenty", "120"),
    ("one point five", "1.5"), ("zero point six", "0.6"), ("three out of six", "3/6"),
    ("a hundred and twenty over eighty", "120/80"), ("1,000", "1000"), ("two three", "2 3"),
])
def test_spoken_numbers_are_read_as_digits(said: str, digits: str) -> None:
    assert spoken_to_digits(said) == digits


def test_what_a_number_counts() -> None:
    assert counted("about 5 or 6 pounds") == [("5", "pound"), ("6", "pound")]
    assert counted("20 milligrams") == counted("20 mg") == [("20", "mg")]
    assert ("2", "type") in counted("type 2 diabetes")
    assert counted("a three out of six murmur") == [("3", "/6")]
    assert numbers("I'll see you in a couple of weeks") == {"2"}


WRONG = [  # (note sentence, transcript): each counts a thing otherwise than the transcript does
    ("He has gained 8 pounds.", "I put on like five pounds over the summer."),
    ("Cardiovascular: Grade 6/6 systolic ejection murmur.", "you have a three out of six systolic ejection murmur"),
    ("Diabetes type 5.", "your type 2 diabetes is well controlled"),
    ("The pain started 7 days ago.", "it started about four days ago , and the pain started then"),
    ("Follow up in 5 weeks.", "i want to see you again in a couple weeks to follow up"),
    ("Pain between the big toe and the 3rd toe.", "it hurts between the big toe and the second toe"),
    ("Elbow pain for 2.5 years.", "my elbow has hurt for a year and a half"),
]

RIGHT = [  # the same numbers written another way
    ("He has gained 5 pounds.", "I put on like five pounds over the summer."),
    ("Continue metformin 1000 mg twice a day.", "keep taking the metformin , 1,000 milligrams twice a day"),
    ("Blood pressure 120/80.", "your blood pressure is a hundred and twenty over eighty"),
    ("Follow up in 2 weeks.", "i want to see you again in a couple weeks to follow up"),
    ("He runs 4 to 5 miles a day.", "i run like four or five miles a day"),
    # a number inside a name is not a quantity; ordinals, clock hours, months and halves are numbers
    ("SpO2: 98%.", "your oxygen is ninety eight percent"),
    ("He got his COVID-19 vaccine.", "i got my covid vaccine"),
    ("Pain between the big toe and the 2nd toe.", "it hurts between the big toe and the second toe"),
    ("He woke around 2:00 am with pain.", "i woke up at like two am with the pain"),
    ("Mammogram in 01/2021 was normal.", "the mammogram in january 2021 was normal"),
    ("Short of breath after approximately 30 minutes.", "after about half an hour i was short of breath"),
    ("Elbow pain for 1.5 years.", "my elbow has hurt for a year and a half"),
    ("Uses the cream one time per week.", "i use the cream once a week"),
]


@pytest.mark.parametrize(("sentence", "said"), WRONG)
def test_a_number_counting_the_same_thing_otherwise_is_flagged(sentence: str, said: str) -> None:
    assert count_mismatches(sentence, [said])
    checked = check_draft([("plan", sentence)], parse_plain_transcript(f"CLIENT: {said}"))
    assert FlagKind.NUMBER_MISMATCH in {f.kind for s in checked.sentences + checked.removed for f in s.flags}


@pytest.mark.parametrize(("sentence", "said"), RIGHT)
def test_the_same_number_written_another_way_passes(sentence: str, said: str) -> None:
    assert count_mismatches(sentence, [said]) == []
    checked = check_draft([("plan", sentence)], parse_plain_transcript(f"CLIENT: {said}"))
    assert FlagKind.NUMBER_MISMATCH not in {f.kind for s in checked.sentences + checked.removed for f in s.flags}


def test_a_spine_level_is_still_a_number_and_a_name_s_number_is_not() -> None:
    assert numbers("Disc degeneration at C5-7.") == {"5", "7"}
    assert numbers("SpO2 98%, A1c 7.5, G5P5, COVID-19") == {"98", "7.5"}
    assert numbers("lymphadenectomy x5 on 01/20/2020") == {"5", "1", "20", "2020"}
    checked = check_draft([("plan", "Disc degeneration at C5-7.")],
                          parse_plain_transcript("CLINICIAN: there is degeneration at c five six"))
    assert FlagKind.NUMBER_MISMATCH in {f.kind for s in checked.sentences for f in s.flags}
