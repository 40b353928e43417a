import itertools
import re
from datetime import date

from scribe.domain.chart import ChartFacts, Contact, known_identifiers
from scribe.domain.redaction import (
    SurrogateMap,
    apply_surrogates,
    find_known,
    merge_spans,
    reidentify,
)

CHART = ChartFacts(given_name="Maya", family_name="Thompson", date_of_birth=date(1991, 3, 14), mrn="MRN-004417",
                   phone="555-201-7788", email="maya.t@example.org", employer="Riverside Bakery",
                   contacts=(Contact("Laura Thompson", "sister", "555-201-3344"),), clinician_name="Dr. Ada Reyes",
                   practice_name="Fairview Counseling")


def pseudo(text: str, surrogates: SurrogateMap | None = None) -> str:
    surrogates = surrogates or SurrogateMap()
    return apply_surrogates(text, merge_spans(find_known(text, known_identifiers(CHART))), surrogates)


def test_chart_names_match_case_insensitively_with_possessives() -> None:
    out = pseudo("maya said MAYA THOMPSON's sister laura called. Thompson agreed.")
    assert "maya" not in out.lower() and "laura" not in out.lower() and "thompson" not in out.lower()
    assert out.count("[CLIENT]") == 3


def test_numbers_match_whatever_the_separators() -> None:
    for phone in ("555 201 7788", "(555) 201-7788", "555.201.7788", "5552017788"):
        assert "7788" not in pseudo(f"call me at {phone} please")


def test_date_of_birth_matches_written_forms() -> None:
    for dob in ("03/14/1991", "3/14/1991", "1991-03-14", "March 14, 1991", "march 14th 1991"):
        assert "1991" not in pseudo(f"born {dob}"), dob


def test_surrogates_are_consistent_and_reidentify() -> None:
    surrogates = SurrogateMap()
    a = pseudo("Laura called Maya.", surrogates)
    b = pseudo("Later Laura Thompson came.", surrogates)
    assert "[RELATIVE_1]" in a and "[RELATIVE_1]" in b
    assert reidentify(a, surrogates.reverse) == "Laura called Maya."


def test_the_clinician_and_practice_are_redacted_too() -> None:
    out = pseudo("Dr. Ada Reyes at Fairview Counseling")
    assert "Reyes" not in out and "Fairview" not in out


def test_a_word_inside_another_word_is_not_matched() -> None:
    assert pseudo("the mayan ruins") == "the mayan ruins"


def test_a_span_that_partly_overlaps_a_longer_one_keeps_what_lies_outside_it() -> None:
    from scribe.domain.redaction import Span

    text = "pager 830-650-2352 Home 301-680-6286 Office"
    phone1, phone2 = (text.index("830"), text.index("2352") + 4), (text.index("301"), text.index("6286") + 4)
    wrong = (text.index("2352"), text.index("Home") + 8)  # "2352 Home 301": longer than either phone number
    spans = [Span(*phone1, "PHONE_NUMBER", 0.7, "pattern"), Span(*wrong, "ADDRESS", 0.7, "pattern"),
             Span(*phone2, "PHONE_NUMBER", 0.7, "pattern"), Span(0, 5, "PERSON", 0.4, "presidio"),
             Span(2, 4, "PERSON", 0.9, "presidio")]
    merged = merge_spans(spans, text)
    out = apply_surrogates(text, merged, SurrogateMap())
    assert not any(d.isdigit() for d in re.sub(r"\[[A-Z_]+\d*\]", "", out)), out  # no digit outside a surrogate
    assert all(a.end <= b.start for a, b in itertools.pairwise(merged))  # never overlapping
    assert [text[s.start:s.end] for s in merged if s.start < 6] == ["pager"]  # a span inside another is covered
    # a leftover of fewer than two letters or digits is let go ("-x", a possessive "s"); "-xy" stays
    def merged_of(end: int) -> list[tuple[int, int]]:
        pair = [Span(0, 9, "ADDRESS", 0.7, "pattern"), Span(5, end, "ID_NUMBER", 0.7, "pattern")]
        return [(s.start, s.end) for s in merge_spans(pair, "2352 Home-xy")]

    assert merged_of(11) == [(0, 9)]
    assert merged_of(12) == [(0, 9), (9, 12)]
