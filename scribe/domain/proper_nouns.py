"""Names, employers and places that a news-trained NER model misses, found with word lists
and what surrounds them: a known first name ("Eve Magrath", "jessica came over"), where
someone works ("I work for Socrata", "Acme Labs Inc"), a firm of surnames ("Owens, Duran and
Oneal"), and a place after a preposition that is no everyday word ("flew to Loeches", "I am
in TROMSØ"). Each yields (start, end, entity); the redactor's filters still apply."""

from __future__ import annotations

import re
from collections.abc import Iterator

from scribe.domain.vocabulary import CLINICAL_TERMS, Lexicon

_UPPER = "A-ZÀ-ÞĀ-Ž"
_LOWER = "a-zß-ÿā-ž"
_TOKEN = re.compile(rf"[{_UPPER}{_LOWER}][\w'’-]*")
# what may follow a first name as more of the name: capitalised words and initials
_NAME_TAIL = re.compile(rf"(?:[ \t]+(?:[{_UPPER}][{_LOWER}'’][\w'’-]*|[{_UPPER}]\.?|(?:ten|van|von|de|da|del)"
                        rf"(?=[ \t]+[{_UPPER}]))(?![\w'’:-])){{1,3}}")
_NAME_TAIL_LOWER = re.compile(rf"[ \t]+(?:[{_LOWER}][\w'’-]+)")
_MONTHS_DAYS = frozenset("""january february march april may june july august september october november december
monday tuesday wednesday thursday friday saturday sunday""".split())


def find_first_names(text: str, lexicon: Lexicon, *, speech: bool = True) -> Iterator[tuple[int, int, str]]:
    """A known first name that is no everyday word, with the capitalised words and initials
    after it ("Eve Magrath", "Maja S Hermansen"). In lowercase speech the next word is taken
    too when it is a known surname ("laura quill" only if quill is one). Lowercase names are
    read only in speech (``speech``): a lowercase nursing note says "last eve" and "amber urine"."""
    lowercase = speech and not any(c.isupper() for c in text)
    for m in _TOKEN.finditer(text):
        word = m.group(0)
        low = word.lower().rstrip("'’s") if word.lower().endswith(("'s", "’s")) else word.lower()
        if low not in lexicon.first_names or low in lexicon.common or low in CLINICAL_TERMS or low in _MONTHS_DAYS:
            continue
        if not (word[:1].isupper() and not word.isupper()) and not lowercase:
            continue  # in cased text a name is capitalised; in capitals every word is
        end = m.end()
        tail = (_NAME_TAIL_LOWER if lowercase else _NAME_TAIL).match(text, end)
        if tail and (not lowercase or tail.group(0).strip().lower() in lexicon.names - lexicon.common):
            end = tail.end()
        yield m.start(), end, "PERSON"


_ORG_SUFFIX = (r"inc|llc|ltd|corp|corporation|company|co|group|partners|associates|technologies|technology|"
               r"solutions|systems|labs|holdings|industries|enterprises|consulting|agency|bank|foundation|"
               r"institute|university|college|academy|pharmacy|church|markets|research|insight|finance")
_ORG = re.compile(rf"\b((?:[{_UPPER}0-9][\w&'’.-]*[ \t]+(?:(?:and|&|of)[ \t]+)?){{1,3}}(?:{_ORG_SUFFIX})\b\.?)", re.I)
_WORKPLACE = re.compile(rf"\b(?:work(?:s|ed|ing)?[ \t]+(?:for|at)|employed[ \t]+(?:by|at)|job[ \t]+at|hired[ \t]+by|"
                        rf"intern(?:ing|ship)?[ \t]+at|is[ \t]+from|of)[ \t]+((?:[{_UPPER}][\w&'’.-]*)(?:[ \t]+[{_UPPER}]"
                        rf"[\w&'’.-]*){{0,2}})")
_FIRM = re.compile(rf"\b([{_UPPER}][{_LOWER}]+,[ \t]+[{_UPPER}][{_LOWER}]+,?[ \t]+(?:and|&)[ \t]+[{_UPPER}][{_LOWER}]+)\b",
                   re.I)


def find_organisations(text: str, lexicon: Lexicon) -> Iterator[tuple[int, int, str]]:
    """Employers and other organisations: a name before a company word ("Civic Impulse LLC"),
    a capitalised name after working for it ("I work for Socrata"), a firm of surnames."""
    lowercase = not any(c.isupper() for c in text)
    for m in _ORG.finditer(text):
        words = m.group(1).split()
        if any(lexicon.identifying_word(w) for w in words[:-1]) and (words[0][:1].isupper() or lowercase):
            yield m.start(1), m.end(1), "ORGANIZATION"
    for m in _WORKPLACE.finditer(text):
        if any(lexicon.identifying_word(w) for w in m.group(1).split()):
            yield m.start(1), m.end(1), "ORGANIZATION"
    for m in _FIRM.finditer(text):
        words = re.findall(r"[^\W\d_]+", m.group(1))
        if sum(w.lower() in lexicon.names for w in words) >= 2:
            yield m.start(1), m.end(1), "ORGANIZATION"


_PLACE_CUE = re.compile(rf"\b(?:[Ii]n|[Ff]rom|[Tt]o|[Aa]t|[Nn]ear|[Ww]here:?)[ \t]+((?:[{_UPPER}][\w'’-]*)(?:[ \t]+(?:(?:de|"
                        rf"del|la|le|do|da|di|du|dos|ben|sur|upon|on|am|an|der)[ \t]+)?[{_UPPER}][\w'’-]*){{0,3}})")


def find_cued_places(text: str, lexicon: Lexicon) -> Iterator[tuple[int, int, str]]:
    """A capitalised place after a preposition, when one of its words is no everyday or
    clinical word ("flew to Loeches", "in Store Merløse", "from ALFRICK"); not in a text
    written in capitals, where every word is capitalised."""
    for m in _PLACE_CUE.finditer(text):
        words = m.group(1).split()
        if not words[0][:1].isupper():
            continue
        if words[0].isupper() and len(words[0]) < 4:
            continue  # ICU, ER, NYC: an acronym is not enough
        if any(w.lower() in _MONTHS_DAYS or w.lower() in CLINICAL_TERMS for w in words):
            continue
        if any(lexicon.identifying_word(w) and w.lower() not in lexicon.names for w in words) or \
                any(w.lower() in lexicon.places for w in words):
            yield m.start(1), m.end(1), "LOCATION"
