"""What surroundings make certain: names after a title or before a credential, facilities by
name, years of past events; and numbers that their surroundings make clinical."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import pytest

from scribe.domain.cues import (
    clinical_number,
    find_event_years,
    find_facilities,
    find_titled_names,
    phone_cued,
    take_initial,
)
from scribe.domain.vocabulary import Lexicon
from tests.helpers import shipped_clinical_terms, shipped_grammar, shipped_patterns

LEX = Lexicon(names=frozenset({"mary", "joseph", "smith", "calvert"}), places=frozenset({"baltimore"}),
              common=frozenset({"small", "union", "memorial", "sacred", "drug", "the", "bed", "home", "lab", "poss"}),
              first_names=frozenset({"mary", "joseph"}),
              clinical=shipped_clinical_terms(), patterns=shipped_patterns(), grammar=shipped_grammar())


def _values(text: str, finder: Callable[[str, Lexicon], Iterable[tuple[int, int, str]]]) -> list[str]:
    return [text[a:b] for a, b, _ in finder(text, LEX)]


@pytest.mark.parametrize(("text", "names"), [
    ("pt spoke with dr small today", ["small"]),                  # an everyday word after a title is a name
    ("PRONOUNCED BY DR. L. RUUSKA. FAMILY", ["L. RUUSKA"]),        # the initial is taken in
    ("Drs Ferullo and Saeed in to see pt", ["Ferullo", "Saeed"]),
    ("Dr. Mary Smith called", ["Mary Smith"]),
    ("Seen by J. Yi, MD. Pain to right side", ["J. Yi"]),          # before a credential
    ("Stord-Painter MD plans to attempt talc", ["Stord-Painter"]),
    ("BEA TURA AWARE MGSO4 GIVEN", ["BEA TURA"]),                  # told of something, in capitals
    ("dr aware, md notified, dr to see pt", []),                   # what follows a title without a name
    ("TO HELP RETURN PC02 TO BASELINE", []),                       # RN inside RETURN is no credential
    ("gi: mrs. Park ate a little oatmeal", ["Park"]),               # a courtesy title makes any word a name
    ("Spoke with Mr. J. Brown and Ms. Hope", ["J. Brown", "Hope"]),
    ("MS Contin 30 mg. MS. Verbal support given", []),              # a drug; mental status, then a sentence
    ("I MISS Home so much", []),                                   # a verb
    ("sats 87% -> J. Chang PA into evaluate", ["J. Chang"]),       # a physician assistant after an initial
    ("Swan PA catheter placed, PA pressures 40s", []),             # a pulmonary artery
])
def test_names_after_a_title_or_before_a_credential(text: str, names: list[str]) -> None:
    assert _values(text, find_titled_names) == names


@pytest.mark.parametrize(("text", "places"), [
    ("TAKEN TO UNION HOSPITAL WHERE EKG POS", ["UNION"]),        # any word names a hospital
    ("d/c'd to Sacred Heart Memorial at 4pm", ["Sacred Heart"]),
    ("to sacred heart hospital. awaiting", ["sacred heart"]),
    ("discharge to Baltimore Rehab tomorrow", ["Baltimore"]),
    ("he'll need pt, and poss rehab when ready", []),             # a rehab is named only as a name or place
    ("went to drug rehab last year", []),
    ("sent to the psychiatric hospital", []),
    ("?transfer to St. Mary's tomorrow", ["St. Mary's"]),
    ("ST ELEVATION IN V2", []),                                   # an ST segment, not a saint
    ("PT TRANSFERRED TO GH FOR CATH, admitted to the MGH, sent to ICU, came to EW", ["GH", "MGH"]),
    ("she was sent to gh for further eval", ["gh"]),
    ("poss transfer to quartermain 2/3", ["quartermain"]),         # a ward by name, with its number
    ("went to bed, sent to lab, going to sleep", []),
])
def test_facilities_by_name(text: str, places: list[str]) -> None:
    assert _values(text, find_facilities) == places


@pytest.mark.parametrize(("text", "years"), [
    ("PMH: CABG 81, Redo CABG 84, MI 1992.", ["81", "84", "1992"]),
    ("PMHX CVA in 94 and 00 affected (R) side", ["94", "00"]),
    ("MI 2 days ago, CABG x3, PE 10 mg", []),
])
def test_years_of_past_events(text: str, years: list[str]) -> None:
    assert [text[a:b] for a, b, _ in find_event_years(text)] == years


@pytest.mark.parametrize(("text", "value", "clinical"), [
    ("on PSV 10/5 overnight", "10/5", True), ("vent 10/5/50% tolerating", "10/5/50", True),
    ("c/o 3/10 l back pain", "3/10", True), ("SVR 954-1183; received", "954-1183", True),
    ("admitted 10/5 from home", "10/5", False), ("seen on 7/22 by", "7/22", False),
])
def test_settings_scores_and_ranges_are_not_dates(text: str, value: str, clinical: bool) -> None:
    start = text.index(value)
    assert clinical_number(text, start, start + len(value)) is clinical


def test_a_phone_word_cues_a_short_number_and_an_initial_joins_its_name() -> None:
    assert phone_cued("Sister Phone # 858-4925", len("Sister Phone # "))
    assert not phone_cued("HR 100-1112 EKG", len("HR "))
    text = "nsg (d. renna and j. o'brien)"
    assert take_initial(text, text.index("o'brien")) == text.index("j. o'brien")


@pytest.mark.parametrize(("text", "value", "note", "clinical"), [
    ("pt c/o chest pressure 6/10. EKG", "6/10", True, True),      # a pain score
    ("had 3/10 incisional pain", "3/10", True, True),
    ("extubated at aprox 2030 with", "2030", True, True),          # a clock time in a note
    ("worked there from 2015 to 2019", "2015", False, False),      # in speech a year stays a year
    ("PROSTATE CA. ON 4/18 HAD CP", "4/18", True, False),          # 'HAD' is no headache
])
def test_pain_scores_and_clock_times_in_notes_are_not_dates(text: str, value: str, note: bool, clinical: bool) -> None:
    start = text.index(value)
    assert clinical_number(text, start, start + len(value), note=note) is clinical


def test_a_month_that_is_an_everyday_word_needs_a_number_or_a_date_word() -> None:
    from scribe.domain.patterns import specific_date

    for text, value, specific in (("PLAN: May require intubation", "May", False), ("dec rate to 2.5", "dec", False),
                                  ("admitted in May", "May", True), ("on May 4", "May 4", True)):
        start = text.index(value)
        assert specific_date(text, start, start + len(value)) is specific, text


def test_in_lowercase_a_name_that_is_also_an_everyday_word_is_no_name() -> None:
    from scribe.domain.vocabulary import weak_find

    lex = Lexicon(
        names=frozenset({"tan", "amber", "laura"}),
        places=frozenset(),
        common=frozenset({"tan", "thick"}),
        clinical=shipped_clinical_terms(), patterns=shipped_patterns(), grammar=shipped_grammar(),
    )
    assert weak_find("thick tan", lex, capitals_text=False)
    assert not weak_find("laura", lex, capitals_text=False)


def test_lowercase_names_before_a_credential_need_an_initial_or_known_names() -> None:
    lex = Lexicon(names=frozenset({"florencia", "cooke", "lander"}), places=frozenset(), common=frozenset({"per"}),
                  first_names=frozenset({"florencia"}),
              clinical=shipped_clinical_terms(), patterns=shipped_patterns(), grammar=shipped_grammar())
    for text, names in (("florencia cooke np into eval", ["florencia cooke"]), ("well at this time. q. lander rrt",
                        ["q. lander"]), ("per md aware, the rn notified md", [])):
        assert [text[a:b] for a, b, _ in find_titled_names(text, lex)] == names, text


def test_a_number_found_as_a_date_or_phone_is_dropped_only_in_its_clinical_context() -> None:
    from scribe.domain.cues import clinical_in_context

    text = "ON PSV 10/5. SVR 954-1183. SISTER PHONE # 858-4925"
    for value, entity, dropped in (("10/5", "DATE", True), ("954-1183", "PHONE_NUMBER", True),
                                   ("858-4925", "PHONE_NUMBER", False)):
        start = text.index(value)
        assert clinical_in_context(text, entity, start, start + len(value), note=True) is dropped, value
    speech = "call me at 954-1183"
    assert not clinical_in_context(speech, "PHONE_NUMBER", 11, 19, note=False)


def test_a_long_listed_word_is_known_one_slip_away_and_a_short_one_only_exactly() -> None:
    from scribe.domain.vocabulary import near_word

    listed = frozenset({"transferred", "admitted", "discharged", "the"})
    for typo in ("transfered", "admited", "dischraged", "discharge", "transferrred"):
        assert near_word(typo, listed), typo
    for other in ("transform", "admiral", "charged", "teh", "then"):
        assert not near_word(other, listed), other


def test_a_facility_is_found_whatever_its_hospital_word_and_however_transferred_is_typed() -> None:
    from scribe.domain.cues import find_facilities

    text = "Pt was transfered from Calvert Hospiatal to the unit. Seen at Union hosp."
    found = {text[a:b] for a, b, _ in find_facilities(text, LEX)}
    assert "Calvert" in found and "Union" in found
    assert not any("transfered" in f.lower() for f in found)
