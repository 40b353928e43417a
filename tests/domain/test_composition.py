"""The redaction composition without spaCy: the kind of a text decided once, the model's finds
filtered, each declared rule run only on its kinds, certain rules kept whatever the words,
entity names checked where they are declared."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from collections.abc import Iterable

import pytest

from scribe.domain.composition import (
    NOTES_MODEL,
    NOTES_MODEL_SCORE,
    SPEECH_DISCOUNT,
    Composition,
    ModelFind,
    UnknownEntity,
)
from scribe.domain.recognizers import (
    EVERY_KIND,
    RECOGNIZERS,
    Find,
    Recognizer,
    TextKind,
    TextView,
    text_kind,
    view_of,
)
from scribe.domain.redaction import ENTITY_TYPES, KnownIdentifier, KnownMatcher, Span
from scribe.domain.vocabulary import Lexicon
from tests.helpers import shipped_clinical_terms, shipped_grammar, shipped_patterns

LEX = Lexicon(
    names=frozenset({"laura", "quill", "brown"}),
    places=frozenset({"canada", "tulsa"}),
    common=frozenset({"brown", "travelling", "sister", "called", "the", "with", "week", "last", "said", "dog", "we"}),
    first_names=frozenset({"laura"}),
    stop_words=frozenset({"to", "with", "the", "my", "and", "in"}),
    clinical=shipped_clinical_terms(), patterns=shipped_patterns(), grammar=shipped_grammar(),
)
POLICY = {"PERSON": 0.5, "LOCATION": 0.5, "ORGANIZATION": 0.5, "DATE": 0.5, "DATE_TIME": 0.5, "PHONE_NUMBER": 0.5,
          "ADDRESS": 0.5, "ZIP_CODE": 0.5, "ID_NUMBER": 0.5}
COMPOSE = Composition(thresholds=POLICY, specific_dates=True)
NO_CHART = KnownMatcher.of([])


def _values(text: str, spans: Iterable[Span]) -> set[tuple[str, str]]:
    return {(s.entity, text[s.start:s.end]) for s in spans}


def test_the_composition_runs_without_any_nlp_library() -> None:
    code = ("import sys, scribe.domain.composition, scribe.domain.recognizers; "
            "print(','.join(m for m in ('spacy', 'presidio_analyzer', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""


@pytest.mark.parametrize(("text", "kind"), [
    ("pt sbp 90s on levo gtt, abd soft, ivf given, uop low, will monitor", TextKind.SHORTHAND),
    ("PT SBP 90S ON LEVO GTT, ABD SOFT, IVF GIVEN, UOP LOW, WILL MONITOR", TextKind.SHORTHAND),  # shorthand first
    ("PATIENT TRANSFERRED TO THE WARD TODAY, WIFE CALLED AND WAS TOLD", TextKind.CAPITALS),
    ("my sister laura called from tulsa last week", TextKind.SPEECH),
    ("My sister Laura called from Tulsa last week.", TextKind.PROSE),
    ("12/04 10:30", TextKind.PROSE),  # no letters: nothing to read case from
])
def test_the_kind_of_a_text_is_decided_once(text: str, kind: TextKind) -> None:
    assert text_kind(text, LEX) is kind
    assert view_of(text, LEX).kind is kind


def test_speech_is_read_with_the_words_that_could_be_names_capitalised() -> None:
    view = view_of("travelling to canada with laura and the brown dog", LEX)
    assert view.read == "travelling to Canada with Laura and the brown dog"  # an everyday name stays ('brown')
    assert len(view.read) == len(view.text) and view.spoken == view.read
    written = view_of("Travelling to Canada with Laura.", LEX)
    assert written.read == written.text and written.spoken is None


def test_spoken_numbers_are_found_as_digits_and_mapped_back_to_the_words() -> None:
    text = "you can call me at five five five two oh one nine three three four"
    spans = COMPOSE.spans(view_of(text, LEX), [], NO_CHART)
    assert [text[s.start:s.end] for s in spans] == ["five five five two oh one nine three three four"]


def _person(view: TextView, words: str, score: float = 0.85, entity: str = "PERSON") -> ModelFind:
    start = view.text.index(words)
    return ModelFind(start, start + len(words), entity, score)


@pytest.mark.parametrize(("text", "find", "entity", "kept"), [
    ("My friend Laura Quill came by.", "Laura Quill", "PERSON", True),
    ("The nurse gave Lasix today.", "Lasix", "PERSON", False),                      # clinical vocabulary
    ("She works at Quill Partners now.", "Quill Partners", "ORGANIZATION", True),
    ("she works at quill partners now", "quill partners", "ORGANIZATION", False),  # speech: every word looks like one
    ("We met last week to talk.", "last week", "DATE_TIME", False),                # points at no day
    ("We met on March 4, 2021 to talk.", "March 4, 2021", "DATE_TIME", True),
    ("Her US passport number was given.", "passport", "US_PASSPORT", False),       # not in the practice's policy
])
def test_the_models_finds_pass_the_same_checks_everywhere(text: str, find: str, entity: str, kept: bool) -> None:
    view = view_of(text, LEX)
    spans = COMPOSE.on_shadow(view, [_person(view, find, entity=entity)], NO_CHART)
    assert any(s.source == "presidio" for s in spans) is kept


def test_a_find_below_its_threshold_is_dropped_and_speech_discounts_the_rest() -> None:
    prose = view_of("My friend Laura Quill came by.", LEX)
    spans = COMPOSE.on_shadow(prose, [_person(prose, "Laura Quill", score=0.4)], NO_CHART)
    assert spans and not any(s.source == "presidio" for s in spans)  # the rules still find her
    speech = view_of("my friend laura quill came by", LEX)
    (span,) = [s for s in COMPOSE.on_shadow(speech, [_person(speech, "laura quill")], NO_CHART)
               if s.source == "presidio"]
    assert span.score == pytest.approx(0.85 * SPEECH_DISCOUNT)


def _notes_find(view: TextView, words: str, entity: str) -> ModelFind:
    start = view.text.index(words)
    return ModelFind(start, start + len(words), entity, NOTES_MODEL_SCORE, NOTES_MODEL)


@pytest.mark.parametrize(("text", "find", "entity", "kept"), [
    ("PT SENT TO TULSA EW FOR EVAL, SON AT BEDSIDE.", "TULSA", "LOCATION", True),            # capitals
    ("pt sent to tulsa ew for eval, abd soft, tol po, son at bedside.", "tulsa", "LOCATION", True),  # shorthand
    ("We drove to Tulsa for the weekend.", "Tulsa", "LOCATION", False),                    # prose: not read
    ("we drove to tulsa for the weekend", "tulsa", "LOCATION", False),                     # speech: not read
    ("PT TO HAVE LASIX 40 IV, WIFE AWARE, QUILL AT BEDSIDE.", "LASIX", "PERSON", False),  # clinical vocabulary
    ("PT SENT TO WARREN EW FOR EVAL, SON AT BEDSIDE.", "WARREN", "LOCATION", False),      # unlisted, the model alone
    ("PT C/O CP 5/10 AT REST, NTG GIVEN.", "5/10", "DATE", False),                         # a pain score
    ("PT LAST SEEN 11/17 BY PCP, NTG GIVEN.", "11/17", "DATE", True),
])
def test_the_notes_models_finds_are_read_on_notes_only_and_pass_the_same_checks(
        text: str, find: str, entity: str, kept: bool) -> None:
    view = view_of(text, LEX)
    spans = COMPOSE.on_shadow(view, [_notes_find(view, find, entity)], NO_CHART)
    assert any(s.source == NOTES_MODEL and text[s.start:s.end] == find for s in spans) is kept


def test_an_unlisted_word_from_the_notes_model_holds_when_the_stock_model_found_it_too() -> None:
    text = "PT SENT TO WARREN EW FOR EVAL, SON AT BEDSIDE."
    view = view_of(text, LEX)
    notes = _notes_find(view, "WARREN", "LOCATION")
    stock = _person(view, "WARREN", entity="ORGANIZATION", score=0.1)  # below its threshold: agreement is enough
    spans = COMPOSE.on_shadow(view, [notes, stock], NO_CHART)
    assert [(text[s.start:s.end], s.source) for s in spans if s.source != "pattern"] == [("WARREN", NOTES_MODEL)]


def test_undated_dates_are_kept_when_the_policy_redacts_every_date() -> None:
    every_date = Composition(thresholds=POLICY, specific_dates=False)
    view = view_of("We met last week to talk.", LEX)
    assert every_date.on_shadow(view, [_person(view, "last week", entity="DATE_TIME")], NO_CHART)


class _Spy:
    def __init__(self, finds: list[Find]) -> None:
        self.kinds_seen: list[TextKind] = []
        self.finds = finds

    def __call__(self, view: TextView) -> list[Find]:
        self.kinds_seen.append(view.kind)
        return self.finds


def test_a_rule_reads_only_the_kinds_of_text_it_declares() -> None:
    spy = _Spy([])
    compose = Composition(thresholds=POLICY, specific_dates=True,
                          recognizers=(Recognizer("spy", frozenset({"PERSON"}), frozenset({TextKind.PROSE}), spy),))
    for text in ("My sister Laura called.", "my sister laura called from tulsa",
                 "PATIENT TRANSFERRED TO THE WARD TODAY, WIFE CALLED AND WAS TOLD"):
        compose.spans(view_of(text, LEX), [], NO_CHART)
    assert spy.kinds_seen == [TextKind.PROSE]


@pytest.mark.parametrize("certain", [True, False])
def test_a_certain_rule_is_kept_whatever_the_words_and_the_others_are_checked(certain: bool) -> None:
    text = "Her reading was 70/38 at noon."
    start = text.index("70/38")
    rule = Recognizer("rule", frozenset({"DATE"}), EVERY_KIND, lambda v: [(start, start + 5, "DATE")], certain=certain)
    spans = Composition(thresholds=POLICY, specific_dates=True, recognizers=(rule,)).spans(
        view_of(text, LEX), [], NO_CHART)
    assert (("DATE", "70/38") in _values(text, spans)) is certain  # not a date: plausible() drops it when checked


def test_an_entity_outside_the_policy_is_never_redacted_even_by_a_certain_rule() -> None:
    rule = Recognizer("rule", frozenset({"MRN"}), EVERY_KIND, lambda v: [(0, 4, "MRN")], certain=True)
    assert not Composition(thresholds=POLICY, specific_dates=True, recognizers=(rule,)).spans(
        view_of("A123 was the number", LEX), [], NO_CHART)


def test_chart_identifiers_win_over_any_rule() -> None:
    text = "My sister Laura called."
    chart = KnownMatcher.of([KnownIdentifier("Laura", "PERSON", "client")])
    (span,) = [s for s in COMPOSE.spans(view_of(text, LEX), [], chart) if text[s.start:s.end] == "Laura"]
    assert span.source == "chart" and span.key == "client"


@pytest.mark.parametrize(("entities", "thresholds"), [
    ({"PERSN"}, {"PERSON": 0.5}),        # a recognizer's declaration
    ({"PERSON"}, {"ZIPCODE": 0.5}),      # the policy's
])
def test_an_unknown_entity_name_is_refused_where_it_is_declared(entities: set[str], thresholds: dict[str, float]) -> None:
    rule = Recognizer("typo", frozenset(entities), EVERY_KIND, lambda v: [])
    with pytest.raises(UnknownEntity):
        Composition(thresholds=thresholds, specific_dates=True, recognizers=(rule,))


# text of every kind, with something for most rules to find
_SAMPLES = [
    "I live at 2217 Alder Creek Road, Apt 4B, Springfield, IL 62704. Call 555-201-9334.",
    "my sister laura called from tulsa and said dr patel moved to canada in 2019",
    "Name: Nayla Montero\nAddress: Pohlstrasse 9\nGermany",
    "PT TRANSFERRED TO UNION HOSPITAL ON 10/5, WIFE CALLED, DR SMALL AWARE. MRN 4451208",
    "pt seen by J. Yi, MD. abd soft, sbp 90s on levo gtt, wife laura at bedside, s/p MI 92",
    "Laura Quill works at Quill Partners. She and Maria, Tom and Ann went to St. Mary's Hospital.",
    "hi this is mark, my medicaid id is AB1234567 and my zip is six two seven oh four",
]


def test_every_rule_finds_only_the_entities_it_declares() -> None:
    seen: set[str] = set()
    for text in _SAMPLES:
        view = view_of(text, LEX)
        for rule in RECOGNIZERS:
            for _, _, entity in rule.find(view):
                assert entity in rule.entities, (rule.name, entity)
                seen.add(rule.name)
    assert len(seen) >= 10, seen  # the samples reach most rules, or this test proves little


def test_the_declared_entities_are_all_known() -> None:
    assert {e for rule in RECOGNIZERS for e in rule.entities} <= ENTITY_TYPES
    assert len({rule.name for rule in RECOGNIZERS}) == len(RECOGNIZERS)


@pytest.mark.parametrize("text", ["pt transferred to kernan 4 overnight, sbp stable",
                                  "Pt was transferred to Kernan 4 overnight."])
def test_a_ward_a_practice_lists_as_its_own_word_is_no_place(text: str) -> None:
    before = COMPOSE.spans(view_of(text, LEX), [], NO_CHART)
    assert [text[s.start:s.start + 8].lower() for s in before] == ["kernan 4"]  # a ward moved to reads as a place
    listed = dataclasses.replace(LEX, clinical=LEX.clinical | {"kernan"})  # policies/vocabulary/local.txt
    assert not COMPOSE.spans(view_of(text, listed), [], NO_CHART)


@pytest.mark.parametrize(("text", "model", "expected"), [
    # the other word of a name the model half found, and a second person joined by "and"
    ("Maite Quill's killers were sentenced.", [("Quill", "PERSON")], {("PERSON", "Maite Quill")}),
    ("Usamov and Quill were engineers.", [("Quill", "PERSON")], {("PERSON", "Usamov"), ("PERSON", "Quill")}),
    ("Quill and Usamov were engineers.", [("Quill", "PERSON")], {("PERSON", "Usamov"), ("PERSON", "Quill")}),
    # a postcode after a found town
    ("Looking to support them in ARENDAL 4844 in its mission.", [("ARENDAL", "LOCATION")],
     {("LOCATION", "ARENDAL"), ("ZIP_CODE", "4844")}),
    # not: an everyday, grammar or clinical word beside the name, a day, or a decimal
    ("Yesterday Quill called.", [("Quill", "PERSON")], {("PERSON", "Quill")}),
    ("Then Quill and Sertraline.", [("Quill", "PERSON")], {("PERSON", "Quill")}),
    ("Monday Quill called.", [("Quill", "PERSON")], {("PERSON", "Quill")}),
    ("my stepdaughter quill called", [("quill", "PERSON")], {("PERSON", "quill")}),  # a relation is no name
    ("Looking to support them in ARENDAL 12.5 percent of the time.", [("ARENDAL", "LOCATION")], {("LOCATION", "ARENDAL")}),
])
def test_a_find_makes_its_neighbours_certain_in_cased_text(text: str, model: list[tuple[str, str]],
                                                           expected: set[tuple[str, str]]) -> None:
    finds = [ModelFind(text.index(v), text.index(v) + len(v), entity, 0.85) for v, entity in model]
    assert _values(text, COMPOSE.spans(view_of(text, LEX), finds, NO_CHART)) == expected


def test_neighbours_are_not_taken_where_case_tells_nothing() -> None:
    """In a note written in capitals every word is capitalised: a word beside a name is no name for that."""
    text = "PT SEEN BY QUILL AND TEAM TODAY, ABD SOFT, FAMILY AT BEDSIDE, PLAN TO CONTINUE IVF AND MONITOR UOP"
    assert view_of(text, LEX).kind is not TextKind.PROSE
    finds = [ModelFind(text.index("QUILL"), text.index("QUILL") + 5, "PERSON", 0.85)]
    assert ("PERSON", "TEAM") not in _values(text, COMPOSE.spans(view_of(text, LEX), finds, NO_CHART))
