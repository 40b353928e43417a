"""Which NER finds are too weak to keep, from word lists (a small lexicon built here), and the
cue-based recognizers for clinical notes that lean on it."""

from __future__ import annotations

import pytest

from scribe.domain.patterns import find_cued_names, find_places, plausible, specific_date
from scribe.domain.vocabulary import Lexicon, capitals_text, clinical_shorthand, weak_find
from tests.helpers import shipped_clinical_terms, shipped_grammar, shipped_patterns

LEX = Lexicon(names=frozenset({"maureen", "helen", "bill", "smith", "calvert"}),
              places=frozenset({"canada", "zealand"}),
              common=frozenset({"times", "yellow", "holy", "cross", "soft", "the", "called", "present", "twice",
                                "united", "kingdom", "spoke"}),
              clinical=shipped_clinical_terms(), patterns=shipped_patterns(), grammar=shipped_grammar())


@pytest.mark.parametrize(("value", "capitals", "shorthand", "weak"), [
    ("Lasix", False, False, True),            # a medication
    ("abd soft", False, False, True),         # clinical shorthand only
    ("Zoloft", False, False, True),           # a psychiatric medication stays in the note
    ("SECREATIONS", True, False, True),       # a clinical word typed with one slip is still clinical
    ("Sertralin", False, False, True),
    ("Sertoli", False, False, False),         # short words must match exactly: one slip there is another word
    ("GI", False, False, True), ("SBP", True, False, True),  # lone acronyms
    ("TIMES", True, False, True),             # an everyday word, written in capitals in a capitals note
    ("MAUREEN", True, False, False),          # a known name in capitals
    ("CALVERT", True, False, False),          # a known surname in capitals
    ("QUIXBY", True, False, False),           # not everyday, not clinical: could be a surname
    ("Holy Cross", False, False, False),      # Title Case in ordinary text: NER is trusted
    ("United Kingdom", False, False, False),
    ("ectopy", False, True, True),            # in a shorthand note only known names and places stay
    ("helen", False, True, False),
])
def test_weak_finds_are_dropped_and_names_stay(value: str, capitals: bool, shorthand: bool, weak: bool) -> None:
    assert weak_find(value, LEX, capitals_text=capitals, shorthand=shorthand) is weak


def test_text_written_in_capitals_and_shorthand_notes_are_recognised() -> None:
    assert capitals_text("PT ADMITTED FROM CALVERT HOSPITAL WITH HYPOTENSION")
    assert not capitals_text("I talked to my sister about it, she was upset")
    assert clinical_shorthand("pt afebrile, abd soft, foley draining yellow urine, sbp 90s on dopamine", LEX)
    assert not clinical_shorthand("I have been sleeping badly since my mother moved in with us last month", LEX)


@pytest.mark.parametrize(("entity", "value", "keep"), [
    ("DATE", "5/5", False), ("DATE", "1/2", False), ("DATE", "3/4", False), ("DATE", "7/22", True),
    ("DATE", "11/11/2024", True),
    ("PHONE_NUMBER", "1900-0700", False), ("PHONE_NUMBER", "7.34/50/95/28/0", False),
    ("PHONE_NUMBER", "555-201-3344", True), ("PHONE_NUMBER", "555-1234", True),
])
def test_fractions_time_ranges_and_blood_gases_are_not_dates_or_phones(entity: str, value: str, keep: bool) -> None:
    assert plausible(entity, value, "pattern", LEX) is keep


@pytest.mark.parametrize(("value", "keep"), [
    ("pt.was", False), ("NECESSARY.PT", False), ("present.to", False), ("ectopy.to", False), ("UEarly.se", True),
    ("https://x.example/a", True), ("www.smithfamily.com", True), ("clinic.org", True),
])
def test_only_real_web_addresses_from_presidio_stay(value: str, keep: bool) -> None:
    assert plausible("URL", value, "presidio", LEX) is keep


@pytest.mark.parametrize(("text", "value", "specific"), [
    ("MI '92 and CABG", "92", True), ("BP 70 over", "70", False), ("at 2000 pt was turned", "2000", False),
    ("moved here in 2000", "2000", True), ("on March 4", "March 4", True), ("for 2-3 hours", "2-3 hours", False),
    ("last week", "last week", False),
])
def test_a_date_must_name_something_specific(text: str, value: str, specific: bool) -> None:
    start = text.index(value)
    assert specific_date(text, start, start + len(value)) is specific


def _names(text: str) -> list[str]:
    return [text[a:b] for a, b, kind in find_cued_names(text, LEX) if plausible(kind, text[a:b], "pattern", LEX)]


def test_relations_and_listed_names_in_notes_are_found() -> None:
    assert _names("DR BOYLE SPOKE TO DAUGHTER PHILOMENA FOR CONSENT") == ["BOYLE", "PHILOMENA"]
    assert _names("son bill called twice") == ["bill"]
    assert _names("Dr. Griffin and Swackhamer aware") == ["Griffin", "Swackhamer"]
    assert _names("Dr.King aware") == ["King"]
    assert _names("husband present, son called") == []  # everyday words after a cue


def test_homes_are_found_by_what_surrounds_them() -> None:
    text = "taken to holy cross hospital. Lives in Rockville. sent to the psychiatric hospital"
    assert [text[a:b] for a, b, _ in find_places(text)] == ["Rockville"]


@pytest.mark.parametrize(("value", "keep"), [("8/87", True), ("11/92", True), ("13/92", False), ("3-24-17", True),
                                         ("13-40-17", False)])
def test_month_year_and_dashed_dates_are_dates(value: str, keep: bool) -> None:
    assert plausible("DATE", value, "pattern", LEX) is keep


def test_speakers_of_a_chat_are_names_but_a_transcripts_roles_and_headings_are_not() -> None:
    from scribe.domain.patterns import find_speakers

    text = 'Halldór: What a wife. Matthew: Remember me? CLIENT: I was sad. Plan: Continue. Note: none'
    assert [text[a:b] for a, b, _ in find_speakers(text, LEX)] == ["Halldór", "Matthew"]


def test_subjects_owners_and_towns_above_a_country_are_found() -> None:
    from scribe.domain.proper_nouns import find_lines_above_country, find_subjects_and_owners

    lex = Lexicon(
        names=frozenset(),
        places=frozenset(),
        common=frozenset({"monday", "mental", "health", "plan"}),
        clinical=shipped_clinical_terms(), patterns=shipped_patterns(), grammar=shipped_grammar(),
    )
    text = "Timotea lives on Via dei Fiorentini 17. The address of Persint is 6750 Koskikatu 25. Monday lived up to it."
    assert [text[a:b] for a, b, _ in find_subjects_and_owners(text, lex)] == ["Timotea", "Persint"]
    text = "The Mental Health office is closed"
    assert list(find_subjects_and_owners(text, lex)) == []  # everyday words own no office
    text = "Maha Cazares\n\nChiclana de la Frontera\nSpain 11130\nPlan\nCanada"
    assert [text[a:b] for a, b, _ in find_lines_above_country(text, lex)] == ["Chiclana de la Frontera"]


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("it's under Elita B Desaulniers", ["Elita B Desaulniers"]),
        ("it's under Elita b Desaulniers", ["Elita b Desaulniers"]),  # speech read with its names capitalised
        ("Wheezy w Exertion only", []),
        ("Quixby x Thrice", []),  # shorthand: with, times
        ("Vitamin B Complex", []),  # an everyday first word
    ],
)
def test_a_name_with_a_middle_initial(text: str, names: list[str]) -> None:
    from scribe.domain.proper_nouns import find_initialled_names

    lex = Lexicon(
        names=frozenset({"elita"}),
        places=frozenset(),
        common=frozenset({"vitamin", "it's", "under"}),
        clinical=shipped_clinical_terms(), patterns=shipped_patterns(), grammar=shipped_grammar(),
    )
    assert [text[a:b] for a, b, _ in find_initialled_names(text, lex)] == names


def test_in_speech_an_employer_needs_a_work_cue() -> None:
    from scribe.domain.proper_nouns import find_organisations

    lex = Lexicon(
        names=frozenset(),
        places=frozenset(),
        common=frozenset({"work", "couple", "history"}),
        clinical=shipped_clinical_terms(), patterns=shipped_patterns(), grammar=shipped_grammar(),
    )
    said, read = "i work for socrata now", "i work for Socrata now"
    assert [said[a:b] for a, b, _ in find_organisations(said, lex, spoken=read)] == ["socrata"]
    said, read = "a couple of weeks and a history of hypertension", "a couple of Weeks and a history of Hypertension"
    assert list(find_organisations(said, lex, spoken=read)) == []
