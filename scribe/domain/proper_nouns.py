"""Names, employers and places that a news-trained NER model misses, found with word lists
and what surrounds them: a known first name ("Eve Magrath", "jessica came over"), where
someone works ("I work for Socrata", "Acme Labs Inc"), a firm of surnames ("Owens, Duran and
Oneal"), and a place after a preposition that is no everyday word ("flew to Loeches", "I am
in TROMSØ"). Each yields (start, end, entity); the redactor's filters still apply."""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Iterator

from scribe.domain.months import MONTHS_AND_DAYS
from scribe.domain.vocabulary import Lexicon

_UPPER = "A-ZÀ-ÞĀ-ŽΑ-ΩА-Я"
_LOWER = "a-zß-ÿā-žα-ωа-я"
_TOKEN = re.compile(rf"[{_UPPER}{_LOWER}][\w'’-]*")
# what may follow a first name as more of the name: capitalised words and initials
_NAME_TAIL = re.compile(rf"(?:[ \t]+(?:[{_UPPER}][{_LOWER}'’][\w'’-]*|[{_UPPER}]\.?|(?:ten|van|von|de|da|del)"
                        rf"(?=[ \t]+[{_UPPER}]))(?![\w'’:-])){{1,3}}")
_NAME_TAIL_LOWER = re.compile(rf"[ \t]+(?:[{_LOWER}][\w'’-]+)")


def find_first_names(text: str, lexicon: Lexicon, *, speech: bool = True) -> Iterator[tuple[int, int, str]]:
    """A known first name that is no everyday word, with the capitalised words and initials
    after it ("Eve Magrath", "Maja S Hermansen"). In lowercase speech the next word is taken
    too when it is a known surname ("laura quill" only if quill is one). Lowercase names are
    read only in speech (``speech``): a lowercase nursing note says "last eve" and "amber urine"."""
    lowercase = speech and not any(c.isupper() for c in text)
    for m in _TOKEN.finditer(text):
        word = m.group(0)
        low = word.lower().rstrip("'’s") if word.lower().endswith(("'s", "’s")) else word.lower()
        if low not in lexicon.first_names or low in lexicon.common or low in lexicon.clinical or low in MONTHS_AND_DAYS:
            continue
        if not (word[:1].isupper() and not word.isupper()) and not lowercase:
            continue  # in cased text a name is capitalised; in capitals every word is
        end = m.end()
        tail = (_NAME_TAIL_LOWER if lowercase else _NAME_TAIL).match(text, end)
        if tail and (not lowercase or lexicon.unusual_name(tail.group(0).strip())):
            end = tail.end()
        yield m.start(), end, "PERSON"


_ORG_SUFFIX = (r"inc|llc|ltd|corp|corporation|company|co|group|partners|associates|technologies|technology|"
               r"solutions|systems|labs|holdings|industries|enterprises|consulting|agency|bank|foundation|"
               r"institute|university|college|academy|pharmacy|church|markets|research|insight|finance")
_ORG = re.compile(rf"\b((?:[{_UPPER}0-9][\w&'’.-]*[ \t]+(?:(?:and|&|of)[ \t]+)?){{1,3}}(?:{_ORG_SUFFIX})\b\.?)", re.I)
_ORG_WORD = re.compile(rf"[ \t](?:{_ORG_SUFFIX})\b", re.I)  # what every _ORG match ends with: a cheap first look
_WORKPLACE = re.compile(rf"\b(?:work(?:s|ed|ing)?[ \t]+(?:for|at)|employed[ \t]+(?:by|at)|job[ \t]+at|hired[ \t]+by|"
                        rf"intern(?:ing|ship)?[ \t]+at|is[ \t]+from|of)[ \t]+((?:[{_UPPER}][\w&'’.-]*)(?:[ \t]+[{_UPPER}]"
                        rf"[\w&'’.-]*){{0,2}})")
_FIRM = re.compile(rf"\b([{_UPPER}][{_LOWER}]+,[ \t]+[{_UPPER}][{_LOWER}]+,?[ \t]+(?:and|&)[ \t]+[{_UPPER}][{_LOWER}]+)\b",
                   re.I)


def find_organisations(text: str, lexicon: Lexicon, *, spoken: str | None = None) -> Iterator[tuple[int, int, str]]:
    """Employers and other organisations: a name before a company word ("Civic Impulse LLC"),
    a capitalised name after working for it ("I work for Socrata"), a firm of surnames.
    ``spoken``: lowercase speech read with its possible names capitalised (the same length as
    ``text``). The name after a work cue is looked for there, but only after a work cue, not a
    bare "of" or "is from": a word missing from the word lists is capitalised too ("a couple
    of Weeks", "history of Hypertension")."""
    lowercase = not any(c.isupper() for c in text)
    for m in _ORG.finditer(text) if _ORG_WORD.search(text) else ():
        words = m.group(1).split()
        if any(lexicon.identifying_word(w) for w in words[:-1]) and (words[0][:1].isupper() or lowercase):
            yield m.start(1), m.end(1), "ORGANIZATION"
    for m in _WORKPLACE.finditer(spoken if spoken is not None else text):
        if spoken is not None and m.group(0).lower().startswith(("of", "is")):
            continue
        if any(lexicon.identifying_word(w) for w in m.group(1).split()):
            yield m.start(1), m.end(1), "ORGANIZATION"
    for m in _FIRM.finditer(text):
        words = re.findall(r"[^\W\d_]+", m.group(1))
        if sum(w.lower() in lexicon.names for w in words) >= 2:
            yield m.start(1), m.end(1), "ORGANIZATION"


@functools.lru_cache(maxsize=4)
def _place_cue(connectors: frozenset[str]) -> re.Pattern[str]:
    """A capitalised name of up to four words after a preposition, small words between them
    ('Rio de Janeiro'): the grammar's ``name_connectors``."""
    joined = "|".join(sorted(map(re.escape, connectors), key=len, reverse=True)) or "(?!)"
    return re.compile(rf"\b(?:[Ii]n|[Ff]rom|[Tt]o|[Aa]t|[Nn]ear|[Ww]here:?)[ \t]+((?:[{_UPPER}][\w'’-]*)"
                      rf"(?:[ \t]+(?:(?:{joined})[ \t]+)?[{_UPPER}][\w'’-]*){{0,3}})")


def find_cued_places(text: str, lexicon: Lexicon, *, known_only: bool = False) -> Iterator[tuple[int, int, str]]:
    """A capitalised place after a preposition, when one of its words is no everyday or
    clinical word ("flew to Loeches", "in Store Merløse", "from ALFRICK"); not in a text
    written in capitals, where every word is capitalised."""
    for m in _place_cue(lexicon.grammar.name_connectors).finditer(text):
        words = m.group(1).split()
        for n, w in enumerate(words):  # "Loeches on Saturday": the place ends before a day or a clinical word
            if w.lower() in MONTHS_AND_DAYS or w.lower() in lexicon.clinical:
                words = words[:n]
                break
        while words and words[-1] in lexicon.grammar.name_connectors:
            words.pop()
        if not words or not words[0][:1].isupper():
            continue
        if words[0].isupper() and len(words[0]) < 4:
            continue  # ICU, ER, NYC: an acronym is not enough
        value = " ".join(words)
        if not m.group(1).startswith(value):
            continue  # words were joined by more than one space: leave it to the other recognizers
        if (not known_only and any(lexicon.identifying_word(w) and w.lower() not in lexicon.names for w in words)) or \
                any(w.lower() in lexicon.places for w in words):
            yield m.start(1), m.start(1) + len(value), "LOCATION"


# a name with a middle initial: "Elita B Desaulniers", "Szabina J. Gelencsér", "codey m ross"
_INITIALLED = re.compile(
    rf"\b([{_UPPER}{_LOWER}][{_LOWER}'’-]+)[ \t]+[{_UPPER}{_LOWER}]\.?[ \t]+([{_UPPER}{_LOWER}][{_LOWER}'’-]+)\b"
)
# a list of three or more single words: "They had 6: Gaetane, Hannah, Anthony, Derek, Anna and Andrew."
_LIST = re.compile(rf"\b[{_UPPER}][{_LOWER}'’-]+(?:,[ \t]+[{_UPPER}][{_LOWER}'’-]+){{1,}},?[ \t]+(?:and|&)[ \t]+"
                   rf"[{_UPPER}][{_LOWER}'’-]+\b")


def find_initialled_names(text: str, lexicon: Lexicon) -> Iterator[tuple[int, int, str]]:
    """First name, initial, surname. Capitalised, the first word must be no everyday or
    clinical word ('Vitamin B Complex', 'Hepatitis C Virus' are not names); in lowercase both
    words must be known names. Speech read with its names capitalised leaves the initial in
    lowercase ('Elita b Desaulniers'): that counts as capitalised, but for 'a', 'i' and the
    shorthand 'w' (with) and 'x' (times)."""
    for m in _INITIALLED.finditer(text):
        first, last = m.group(1), m.group(2)
        initial = text[m.start() + len(first) + 1 :].lstrip()[:1]
        if first[:1].isupper() and last[:1].isupper() and (initial.isupper() or initial not in "aiwx"):
            if lexicon.identifying_word(first) and first.lower() not in lexicon.common and \
                    last.lower() not in lexicon.clinical:
                yield m.start(), m.end(), "PERSON"
        elif first.islower() and last.islower() and first in lexicon.first_names and last in lexicon.names \
                and first not in lexicon.common:
            yield m.start(), m.end(), "PERSON"


def find_name_lists(text: str, lexicon: Lexicon) -> Iterator[tuple[int, int, str]]:
    """In a list of single capitalised words, most of them known first names, every word is a name."""
    for m in _LIST.finditer(text):
        words = list(re.finditer(rf"[{_UPPER}][{_LOWER}'’-]+", m.group(0)))
        known = sum(w.group(0).lower() in lexicon.first_names for w in words)
        if known * 2 > len(words) and not any(w.group(0).lower() in lexicon.clinical for w in words):
            for w in words:
                yield m.start() + w.start(), m.start() + w.end(), "PERSON"


_LINE_MARK = re.compile(r"[ \t>|?]*")


def _line_mark_end(line: str) -> int:
    """Where a line's quoting and table marks end (the pattern matches the empty string too)."""
    mark = _LINE_MARK.match(line)
    return mark.end() if mark else 0


def find_block_lines(text: str, addresses: list[tuple[int, int]], lexicon: Lexicon) -> Iterator[tuple[int, int, str]]:
    """A contact block: the short lines just above an address that begins a line are the
    person's and the firm's names ("Marta Palermo / Cityscan / 1072 Pohlstrasse 9"). A line
    is taken when it is a few words without sentence punctuation or a label, and holds a word
    that could identify; at most four lines, blank ones skipped."""
    for start, _ in addresses:
        line_start = text.rfind("\n", 0, start) + 1
        if _LINE_MARK.fullmatch(text, line_start, start) is None or line_start == 0:
            continue
        pos, taken = line_start - 1, 0
        while pos > 0 and taken < 4:
            prev = text.rfind("\n", 0, pos) + 1
            line = text[prev:pos]
            mark = _line_mark_end(line)
            body = line[mark:].rstrip()
            pos = prev - 1
            if not body:
                if prev == 0:
                    break
                continue
            words = body.split()
            if len(words) > 4 or ":" in body or body.endswith((".", "?", "!", ",")) or "@" in body or \
                    not any(lexicon.identifying_word(w) for w in words) or any(c.isdigit() for c in body):
                break
            kind = "PERSON" if words[0].lower() in lexicon.first_names else "ORGANIZATION"
            yield prev + mark, prev + mark + len(body), kind
            taken += 1
            if prev == 0:
                break


# the one a sentence is about, before what people do: "Timotea lives on…", "Quionia is from…"
_SUBJECT = re.compile(rf"(?:^|(?<=[.!?])[ \t]+|(?<=\n))[ \t]*([{_UPPER}][{_LOWER}'’-]+)[ \t]+(?:lives|lived|moved|works|worked|"
                      rf"spent|had[ \t]+given|was[ \t]+born|is[ \t]+from|came[ \t]+from|flew|grew[ \t]+up)\b")
# an organisation by what it has: "The address of Persint is", "The Propublica office is at",
# "the Standard And Poors website"
_ORG_OF = re.compile(rf"\b(?:address|offices?|headquarters|website)[ \t]+of[ \t]+((?:[{_UPPER}][\w'’-]*)"
                     rf"(?:[ \t]+(?:(?:and|And|&)[ \t]+)?[{_UPPER}][\w'’-]*){{0,3}})(?=[ \t]+(?:is|are|was|in|at)\b|[,.])")
_ORG_HAS = re.compile(rf"\b[Tt]he[ \t]+((?:[{_UPPER}][\w'’-]*)(?:[ \t]+(?:(?:and|And|&)[ \t]+)?[{_UPPER}][\w'’-]*){{0,3}})"
                      rf"[ \t]+(?:office|offices|website|headquarters)\b")


def find_subjects_and_owners(text: str, lexicon: Lexicon) -> Iterator[tuple[int, int, str]]:
    """A capitalised word that is no everyday word, opening a sentence about where someone
    lives or works; a firm named as the owner of an address, office or website."""
    for m in _SUBJECT.finditer(text):
        word = m.group(1)
        low = word.lower()
        if lexicon.identifying_word(word) and low not in lexicon.common and low not in lexicon.places and \
                low not in MONTHS_AND_DAYS:
            yield m.start(1), m.end(1), "PERSON"
    for pattern in (_ORG_OF, _ORG_HAS):
        for m in pattern.finditer(text):
            if any(lexicon.identifying_word(w) for w in m.group(1).split()):
                yield m.start(1), m.end(1), "ORGANIZATION"


def find_lines_above_country(text: str, lexicon: Lexicon) -> Iterator[tuple[int, int, str]]:
    """In a written address, the short line just above a country's name is its town:
    "Chiclana de la Frontera / Spain", "ALFRICK / United Kingdom"."""
    from scribe.domain.places import COUNTRIES

    lines = list(re.finditer(r"[^\n]+", text))
    for above, line in itertools.pairwise(lines):
        country = re.sub(r"[\d\s,()]+$", "", _LINE_MARK.sub("", line.group(0), count=1)).strip().lower()
        if country not in COUNTRIES:
            continue
        mark = _line_mark_end(above.group(0))
        body = above.group(0)[mark:].rstrip()
        words = body.split()
        if 1 <= len(words) <= 4 and not body.endswith((".", "?", "!", ":")) and ":" not in body and \
                words[0][:1].isupper() and any(lexicon.identifying_word(w) for w in words):
            yield above.start() + mark, above.start() + mark + len(body), "LOCATION"


# a name's other word beside a found one: "Maite Lemmens", "Usamov and Bowers" (a capitalised word,
# then one space, or "and" between two people)
_WORD_BEFORE = re.compile(rf"([{_UPPER}][\w'’-]+)([ \t]+(?:and|&)[ \t]+|[ \t])$")
_WORD_AFTER = re.compile(rf"[ \t]+(?:and|&)[ \t]+([{_UPPER}][\w'’-]+)\b(?!['’]?[ \t]*[{_UPPER}])")
# a postcode written after its town: "in ARENDAL 4844", "København K 1421" (four or five digits,
# or the Portuguese "3610-114"; not a longer number, nor one a decimal point continues)
_NUMBER_AFTER = re.compile(r"(?<=\w)[ \t]*+,?[ \t]*+(\d{4,5}(?:-\d{3})?)(?![\d.,]?\d)")


def beside_finds(read: str, persons: list[tuple[int, int]], places: list[tuple[int, int]],
                 lexicon: Lexicon) -> Iterator[tuple[int, int, str]]:
    """What a find makes certain next to it, in written or spoken text where case tells names
    (``read``: speech with its possible names capitalised). A capitalised word that is no
    everyday, clinical or grammar word, just before a found person or joined to one by "and",
    is that person's other name or the other person; a number of four or five digits right
    after a found place is its postcode."""
    grammar = lexicon.grammar

    def name_word(word: str) -> bool:
        low = word.lower()
        return lexicon.identifying_word(word) and low not in lexicon.stop_words and low not in grammar.not_names \
            and low not in grammar.relations and low not in grammar.after_title and low not in lexicon.places \
            and low not in MONTHS_AND_DAYS and not lexicon.clinical_word(word)

    for start, end in persons:
        m = _WORD_BEFORE.search(read, max(0, start - 40), start)
        if m and name_word(m.group(1)):
            yield m.start(1), m.end(1) if m.group(2).strip() else end, "PERSON"
        after = _WORD_AFTER.match(read, end)
        if after and name_word(after.group(1)):
            yield after.start(1), after.end(1), "PERSON"
    for _, end in places:
        m = _NUMBER_AFTER.match(read, end)
        if m:
            yield m.start(1), m.end(1), "ZIP_CODE"
