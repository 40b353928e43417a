"""Spoken identifiers read back as written ones, with every character mapped home."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from scribe.domain.spoken import shadow, speak_digits, speak_email


def test_spoken_digits_become_a_number_and_map_back_to_the_words() -> None:
    text = "call me at five five five two oh one three three four four ok"
    sh = shadow(text)
    assert sh.text == "call me at 5552013344 ok"
    start = sh.text.index("555")
    assert text[slice(*sh.to_original(start, start + 10))] == "five five five two oh one three three four four"


def test_spoken_emails_dates_and_ids() -> None:
    assert shadow("it is jane dot doe at gmail dot com").text == "it is jane.doe@gmail.com"
    assert shadow("j underscore smith at yahoo dot co dot uk").text == "j_smith@yahoo.co.uk"
    assert shadow("born march fourth nineteen eighty one").text == "born march 4 1981"
    assert shadow("on july twenty first two thousand five").text.startswith("on july 21")
    assert shadow("my ssn is oh seven eight oh five one one two oh.").text == "my ssn is 078051120."
    assert shadow("double five triple two").text == "55222"


def test_ordinary_speech_is_left_alone() -> None:
    for text in ("about twenty minutes", "I went to the store dot com", "we met at noon", "one of them",
                 "Mail jane.doe@gmail.com now", "Oh, I see."):
        assert shadow(text).text == text


def test_speaking_forms() -> None:
    assert speak_digits("555-201-3344") == "five five five two oh one three three four four"
    assert speak_email("Jane.Doe@gmail.com") == "jane dot doe at gmail dot com"
    assert shadow(speak_email("a.b@example.org")).text == "a.b@example.org"


@given(st.lists(st.sampled_from(["a", "b", " ", ".", ",", "-", "five", "oh", "at", "dot", "com", "march", "first",
                                   "twenty", "double"]), max_size=30).map(" ".join))
def test_the_map_always_points_inside_the_original(text: str) -> None:
    sh = shadow(text)
    assert len(sh.origin) == len(sh.text)
    for a, b in sh.origin:
        assert 0 <= a <= b <= len(text)
