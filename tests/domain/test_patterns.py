"""Each of our recognizers, on the forms it exists for, and on text it must leave alone."""

from __future__ import annotations

import pytest

from scribe.domain.composition import Composition
from scribe.domain.patterns import plausible, tidy_person
from scribe.domain.recognizers import view_of
from scribe.domain.redaction import ENTITY_TYPES, KnownMatcher
from scribe.engines.presidio import build_lexicon
from tests.helpers import shipped_clinical_terms, shipped_grammar, shipped_patterns

EVERYTHING = Composition(thresholds=dict.fromkeys(ENTITY_TYPES, 0.5), specific_dates=True)


def found(text: str) -> set[tuple[str, str]]:
    """What the redactor's own composition finds with no NER model and no chart."""
    lexicon = build_lexicon(shipped_clinical_terms(), shipped_patterns(), shipped_grammar())
    spans = EVERYTHING.spans(view_of(text, lexicon), [], KnownMatcher.of([]))
    return {(s.entity, text[s.start:s.end]) for s in spans}


@pytest.mark.parametrize(("text", "kind", "value"), [
    ("I live at 2217 Alder Creek Road, Apt 4B now", "ADDRESS", "2217 Alder Creek Road, Apt 4B"),
    ("we moved to twenty two seventeen alder creek road last year", "ADDRESS", "twenty two seventeen alder creek road"),
    ("send it to PO Box 4471", "ADDRESS", "PO Box 4471"),
    ("Springfield, IL 62704", "ZIP_CODE", "62704"),
    ("the zip code is six two seven oh four", "ZIP_CODE", "six two seven oh four"),
    ("MRN: A-0042917", "MRN", "A-0042917"),
    ("my medicaid id is AB1234567", "MEMBER_ID", "AB1234567"),
    ("member number is 88812345", "MEMBER_ID", "88812345"),
    ("NPI 1234567893", "NPI", "1234567893"),
    ("her licence plate is 7ABC123", "LICENSE_PLATE", "7ABC123"),
    ("he is ninety two years old", "AGE", "ninety two years old"),
    ("aged 97", "AGE", "aged 97"),
    ("see www.example.org/intake", "URL", "www.example.org/intake"),
    ("from 10.0.0.12", "IP_ADDRESS", "10.0.0.12"),
    ("call five five five two oh one three three four four", "ID_NUMBER", "five five five two oh one three three four four"),
    ("admitted 7/22 after a fall", "DATE", "7/22"),
    ("seen 2000-04-16 11:34:35 in clinic", "DATE", "2000-04-16 11:34:35"),
    ("call +44 7700 921 916 today", "PHONE_NUMBER", "+44 7700 921 916"),
    ("or (37) 788-063", "PHONE_NUMBER", "(37) 788-063"),
    ("or 60-56-85-91", "PHONE_NUMBER", "60-56-85-91"),
    ("born on march fourth nineteen eighty one", "DATE", "march fourth nineteen eighty one"),
    ("on 4 March 2019", "DATE", "4 March 2019"),
    ("admitted from home in sept. and seen again", "DATE", "sept."),  # a month alone after a word of time
    ("things got better since October", "DATE", "October"),
    ("my sister laura called", "PERSON", "laura"),
    ("hi, this is mark", "PERSON", "mark"),
    ("dr patel said so", "PERSON", "patel"),
    ("my name is jane doe", "PERSON", "jane doe"),
    ("she lives at Pohlstrasse 9 now", "ADDRESS", "Pohlstrasse 9"),
    ("write to Via Tasso 129", "ADDRESS", "Via Tasso 129"),
    ("at ul. Grochowa 80", "ADDRESS", "ul. Grochowa 80"),
    ("Skogstien 106 Apt. 4", "ADDRESS", "Skogstien 106 Apt. 4"),
    ("USNS Møller\nFPO AA 85844", "ADDRESS", "USNS Møller\nFPO AA 85844"),
    ("420 Gairbekov Rapids", "ADDRESS", "420 Gairbekov Rapids"),
    ("the code was 62488 on the form", "ID_NUMBER", "62488"),
    ("Name:    Nayla Montero Address: somewhere", "PERSON", "Nayla Montero"),
    ("Directed By:    Johannes Varvio", "PERSON", "Johannes Varvio"),
    ("Sometimes people call me Csanád", "PERSON", "Csanád"),
    ("it's suite eight three eight on the left", "ADDRESS", "suite eight three eight"),
    ("apartment four oh two", "ADDRESS", "apartment four oh two"),
])
def test_each_recognizer_finds_its_identifier(text: str, kind: str, value: str) -> None:
    assert (kind, value) in found(text)


@pytest.mark.parametrize("text", [
    "I am fine, thanks", "my sister is worried", "we talked for twenty minutes", "I slept seven hours",
    "a PHQ-9 score of 14", "she takes 20 mg daily", "my mom said it was okay", "this is hard",
    "blood pressure 120 80", "between 10 and 20 minutes",
    "moved to unit 3 overnight", "I sent it via email 3 times", "I walked 10000 steps today", "we paid 25000 dollars",
    "2 miles in the park", "this may help", "sats dec by 4", "he was in marching band",
])
def test_ordinary_speech_is_not_redacted(text: str) -> None:
    assert found(text) == set()


@pytest.mark.parametrize(("entity", "value", "source", "keep"), [
    ("PERSON", "PMH", "presidio", False), ("PERSON", "CXR", "presidio", False), ("PERSON", "JOHN", "presidio", True),
    ("PERSON", "Laura Quill", "presidio", True),
    ("ORGANIZATION", "GBMC", "presidio", True), ("LOCATION", "200cc", "presidio", False),
    ("US_DRIVER_LICENSE", "O2", "presidio", False), ("US_DRIVER_LICENSE", "D1234567", "presidio", True),
    ("DATE", "70/38", "pattern", False), ("DATE", "7/22", "pattern", True), ("DATE", "12/31/1999", "pattern", True),
    ("URL", "intake...ad", "presidio", False), ("PHONE_NUMBER", "1645", "presidio", False),
])
def test_implausible_finds_are_dropped(entity: str, value: str, source: str, keep: bool) -> None:
    assert plausible(entity, value, source) is keep


def test_a_written_address_runs_on_over_its_place_lines() -> None:
    from scribe.domain.patterns import extend_addresses

    text = "Send it to 14 Crown Street\n Suite 321\n LONDON\n United Kingdom 75419\nThanks, see you."
    (span,) = extend_addresses(text, [(11, 26, "ADDRESS")])
    assert text[span[0]:span[1]] == "14 Crown Street\n Suite 321\n LONDON\n United Kingdom 75419"


@pytest.mark.parametrize(("text", "found_by_ner", "person"), [
    ("Maybe it's under Elita B Desaulniers", "under Elita", "Elita B Desaulniers"),
    ("Name: Fredrik L Sommerseth Address: 83393 Pärna 33", "Fredrik L", "Fredrik L Sommerseth"),
    ("my friend jane doe called", "jane doe", "jane doe"),  # all lower case: nothing to trim by
    ("REFERRED TO DR SMITH TODAY", "DR SMITH", "DR SMITH"),  # capitals: no run-on over TODAY
])
def test_a_person_found_by_ner_gets_its_edges_fixed(text: str, found_by_ner: str, person: str) -> None:
    start = text.index(found_by_ner)
    a, b = tidy_person(text, start, start + len(found_by_ner))
    assert text[a:b] == person


def test_a_phone_label_between_two_numbers_is_no_street() -> None:
    kinds = found("try pager 830-650-2352 Home 301-680-6286 Office 410-164-4517")
    assert ("PHONE_NUMBER", "301-680-6286") in kinds and not any(kind == "ADDRESS" for kind, _ in kinds), kinds
