"""Our own recognizers of names and places by their cues (the regular expressions for
identifiers with a shape are data: policies/vocabulary/patterns.yaml, read into the
Lexicon's PatternTable); the plausibility checks on what any recognizer finds; where an
address goes on; and when a date is specific enough to identify."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator

from scribe.domain.months import MONTH_PATTERN
from scribe.domain.vocabulary import Lexicon, capitals_text, words_of


# Names said in speech, lowercase: found by what comes before them (a relation or role of the
# grammar's ``relations``, a greeting, a title)
@functools.lru_cache(maxsize=4)
def _name_cues(relations: tuple[str, ...]) -> tuple[re.Pattern[str], re.Pattern[str]]:
    """'my sister laura', 'this is mark', 'dr patel'; and a relation named without a
    possessive, as notes write it: 'daughter Philomena', 'SON BILL', 'wife-Helen'."""
    joined = "|".join(sorted(map(re.escape, relations), key=len, reverse=True)) or "(?!)"
    cue = re.compile(
        r"\b(?:(?:my|his|her|our|their)\s+(?:name\s+is|(?:" + joined + r")(?:\s*,)?)"
        r"|(?:i\s*am|i'm|this\s+is|it's|call\s+me|named|called|name's|hi|hello|hey|dear|thanks|thank\s+you)"
        r"|(?:mr|mrs|ms|miss|mx|dr|drs|dr's|doctor|nurse|officer|judge|pastor|father|sister|np|md|rn)(?:\.\s*|\s+)"
        r"(?:[a-z]\.\s*)?)"
        r"\s*(?<=[\s.])([a-z][a-z'’-]+(?:\s+[a-z][a-z'’-]+)?)", re.I)
    relation = re.compile(r"\b(?:" + joined + r")s?(?:\s*[-:,]+\s*|\s+)([a-z][a-z'’-]+)", re.I)
    return cue, relation


# more names joined to a found one: "Dr. Griffin and Swackhamer", "sons Smokey, Morris and Roger"
_AND_NAME = re.compile(r"(?:\s*,\s*|\s+(?:and|&)\s+)([a-z][a-z'’-]+)", re.I)


def find_cued_names(text: str, lexicon: Lexicon) -> Iterator[tuple[int, int, str]]:
    """'my sister laura', 'this is mark', 'dr patel': the word(s) after the cue, unless they
    are ordinary words ('my sister is', 'i'm fine')."""
    grammar = lexicon.grammar
    cue_pattern, relation_pattern = _name_cues(grammar.relations)
    for m in cue_pattern.finditer(text):
        words = m.group(1).split()
        cue = m.group(0)[: m.start(1) - m.start(0)].lower()
        full_name_cue = any(c in cue for c in ("name", "named", "called", "this is", "i'm", "i am"))
        title_cue = re.match(r"(?:mr|mrs|ms|miss|mx|dr|drs|dr's|doctor|np|md|rn)\b", cue) is not None
        keep = []
        for n, w in enumerate(words):
            if w.lower().strip("'") in grammar.not_names or (w.lower().endswith(("ing", "ed", "ly")) and
                                                      not (title_cue and w[:1].isupper())):
                break  # "i'm feeling", "my son started"; but "Dr. King", "Mr. Fleming"
            if n == 1 and not (full_name_cue or w[:1].isupper()):
                break  # "my friend rupert drove": a second lowercase word is a name only after "my name is"
            if n == 1 and w.isupper() and not lexicon.identifying_word(w):
                break  # "DR BOYLE SPOKE": in capitals, a second word must look like a name
            keep.append(w)
        if keep:
            start = m.start(1)
            end = start + len(" ".join(keep))
            yield start, end, "PERSON"
            yield from _joined_names(text, end, lexicon)
    for m in relation_pattern.finditer(text):
        if m.group(1).lower() not in grammar.not_names:
            yield m.start(1), m.end(1), "PERSON"
            yield from _joined_names(text, m.end(1), lexicon)


def _joined_names(text: str, end: int, lexicon: Lexicon) -> Iterator[tuple[int, int, str]]:
    """Names listed after a found one; the caller's word lists decide which are names."""
    grammar = lexicon.grammar
    for _ in range(3):
        m = _AND_NAME.match(text, end)
        if not m or m.group(1).lower() in grammar.not_names or m.group(1).lower().rstrip("s") in grammar.relations:
            return
        yield m.start(1), m.end(1), "PERSON"
        end = m.end(1)


# where someone lives or comes from: "lives in Hampton", "LIVES WITH SON AND FAMILY IN ROCKVILLE",
# "called from Seattle", "moved to Tulsa"
_RESIDENCE = re.compile(r"\b(?:lives?|living|lived|resides?|residing|moved|relocated|born|raised|grew\s+up|called|"
                        r"calling|visiting|vacation(?:ing)?)\b(?:\s+\w+){0,4}?\s+(?:in|to|from|at|on)\s+(?:the\s+)?"
                        r"([a-z][\w'’-]*(?:\s+[a-z][\w'’-]*)?)", re.I)


def find_places(text: str) -> Iterator[tuple[int, int, str]]:
    """Places after living, moving or calling from. The caller's word lists decide whether
    the words could identify (plausible). Facilities: see cues.find_facilities."""
    for m in _RESIDENCE.finditer(text):
        yield m.start(1), m.end(1), "LOCATION"


# A name in a labelled field ("Name: Nayla Montero", "Directed by: Johannes Varvio"; not a speaker
# label such as CLIENT:, which is followed by speech)
# or said to be one ("call me Csanád"): the words up to the next label, line end or punctuation.
# One to four words after the label. Each word is taken whole (possessive ``*+``) and words
# are separated by at least one space, so a long unbroken run has one way to match, not
# O(n^4) (a label and 400 letters then "!" took 103 s with optional separators).
_WORD = r"[A-Za-zÀ-ÿĀ-ž][\w'’.-]*+"
_FIELD = re.compile(r"\b(?:name|contact|attn|directed by|written by|author|"
                    rf"signed by|call me|goes by)\s*:?[ \t]+({_WORD}(?:[ \t]++{_WORD}){{0,3}}?)"
                    r"(?=[ \t]*(?:\n|$|[,;>|]|\b(?:address|phone|email|dob|date|age|and|is|was|from|at)\b))", re.I)


def find_field_names(text: str, lexicon: Lexicon) -> Iterator[tuple[int, int, str]]:
    for m in _FIELD.finditer(text):
        words = m.group(1).split()
        if not words or words[0].lower().strip(".") in lexicon.grammar.not_names:
            continue
        start = m.start(1)
        yield start, start + len(m.group(1).rstrip()), "PERSON"


def find_speakers(text: str, lexicon: Lexicon) -> Iterator[tuple[int, int, str]]:
    """The named speakers of a chat or a script (not a note's headings: call it on speech)."""
    grammar = lexicon.grammar
    for m in _SPEAKER.finditer(text):
        if m.group(1).lower() not in grammar.not_names and m.group(1).lower() not in grammar.speaker_roles:
            yield m.start(1), m.end(1), "PERSON"


# a chat or a script names its speakers: "Alice: Who are you?", "Matthew: Remember me" (not the
# capitals of a transcript's roles, CLIENT: and CLINICIAN:, nor "Note:" or "Plan:")
_SPEAKER = re.compile(r"(?:^|(?<=[.!?\"”]\s)|(?<=[.!?\"”]))\s*([A-ZÀ-ÞĀ-Ž][a-zß-ÿā-ž]{2,})(?=:\s*[\"“A-Z])", re.M)


_PERSON_TAIL = re.compile(r"(?:[ \t]+(?:[A-ZÀ-ÞĀ-Ž][a-zß-ÿā-ž'’][\w'’-]*|[A-Z]\.?)(?![\w'’:-])){1,3}")


def tidy_person(text: str, start: int, end: int) -> tuple[int, int]:
    """A person found by NER, with its edges fixed: leading lower-case words dropped ("under
    Mathias" -> "Mathias") and the capitalised words and initials that follow taken in
    ("Elita" -> "Elita B Desaulniers")."""
    value = text[start:end]
    words = list(re.finditer(r"\S+", value))
    while len(words) > 1 and words[0].group(0)[:1].islower() and any(w.group(0)[:1].isupper() for w in words[1:]):
        words.pop(0)
    if words:
        start, end = start + words[0].start(), start + words[-1].end()
    m = _PERSON_TAIL.match(text, end)
    if m:
        end = m.end()
    return start, end




def extend_addresses(text: str, spans: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    """A written address goes on: over the rest of its line while the words look like a place
    (capitalised words, unit numbers, a postcode: "1737 Cheriton Dr Reuquén Extensions"), then
    over up to three short following lines or '>'-separated pieces that look like a place, not
    a sentence (city, state, country, ZIP); a house number just before it is taken in."""
    out = []
    for start, end, kind in spans:
        if kind == "ADDRESS":
            before = _HOUSE_BEFORE.search(text, 0, start)
            if before and before.end() == start:
                start = before.start()
            # in a note written in capitals every word looks like a place: lines only there
            same_line = not capitals_text(text[max(0, start - 100) : end + 100])
            for _ in range(3):
                m = _SAME_LINE.match(text, end) if same_line else None
                if m and m.end(1) > end:
                    end = m.end(1)
                m = _NEXT_LINE.match(text, end)
                if not m or not _PLACE_LINE.match(m.group(1)) or len(m.group(1).split()) > 5 or \
                        m.group(1).rstrip().endswith((".", "?", "!")) or not _PLACE_START.match(m.group(1)):
                    break
                end = m.end(1)
            m = _SAME_LINE.match(text, end) if same_line else None
            if m and m.end(1) > end:
                end = m.end(1)
        out.append((start, end, kind))
    return out


# one more piece of an address on the same line: "Reuquén Extensions", "Apt. 724", ", KNIVSTA", "NO 9100"
_PLACE_PIECE = (r"(?:(?:apt|suite|unit|ste|floor|fl|room|rm|box)\.?\s*#?\d+[A-Za-z]?|"
                r"[A-ZÀ-ÞĀ-Ž][\w'’.-]*(?<!\.)|\d{3,6}(?:[ -]\d{3,4})?(?!\s*(?:mg|am|pm|%))|\(\w+\))")
# A separator is spaces, or a comma with optional spaces around it (spaces then a comma
# need a space after). Each alternative is possessive, so a run of blanks has one parse.
_SEP = r"(?:[ \t]++|[ \t]*+,[ \t]++|,)"
_SAME_LINE = re.compile(rf"({_SEP}(?:{_PLACE_PIECE})(?:{_SEP}(?:{_PLACE_PIECE})){{0,5}})")
_NEXT_LINE = re.compile(r"[ \t]*(?:\n|>)[ \t,>]*(?:\n[ \t,>]*)?([^\n>]{1,40})")
_PLACE_LINE = re.compile(r"^[\w .,'’()-]+$")
_PLACE_START = re.compile(r"^(?:[A-ZÀ-ÞĀ-Ž0-9]|(?:apt|suite|unit|ste)\b|nan\b|[a-zà-ÿ]+,)", re.I)
_HOUSE_BEFORE = re.compile(r"\b\d{1,6}[ \t]+")


_SHORT_ACRONYM = re.compile(r"^[A-Z0-9/.\s-]{1,3}$|^[B-DF-HJ-NP-TV-Z]{4,6}$")  # PMH; no vowel: CXR


def plausible(entity: str, value: str, source: str, lexicon: Lexicon | None = None) -> bool:
    """Drop what a recognizer often gets wrong in clinical text: all-caps abbreviations as
    people (PMH, CABG), anything with digits as a name or place, lab shorthand as licences
    (O2, x3), a blood pressure as a date (70/38), a fraction or a strength as a date (1/2,
    5/5), a sentence run into the next as a web address (pt.was, NECESSARY.PT), a blood gas
    or a clock-time range as a phone number (7.34/50/95, 1900-0700), everyday words after a
    cue as a name ('husband present'). Acronyms as organizations stay: a hospital may be
    written GBMC."""
    v = value.strip()
    if source == "presidio" and entity in ("ORGANIZATION", "PERSON", "LOCATION", "NRP"):
        if any(ch.isdigit() for ch in v) or len(v) < 2:
            return False
        if entity == "PERSON" and _SHORT_ACRONYM.match(v):
            return False  # people are not written PMH or CXR (JOHN, in a note written in capitals, is kept)
    if entity in ("PERSON", "LOCATION") and source == "pattern" and lexicon is not None and \
            not any(lexicon.identifying_word(w) for w in words_of(v)):
        return False
    if entity == "ADDRESS" and source == "pattern" and lexicon is not None and \
            not re.search(r"\bP\.?\s?O\.?\s*Box\b", v, re.I) and \
            any(len(w) > 2 and w.lower().strip(".") in lexicon.clinical
                and not lexicon.patterns.street_suffix.fullmatch(w.strip(".")) for w in words_of(v)):
        return False  # "on Lexapro 10", "3 way Foley", "to CCu 9": a dose, a device or a ward, not a street
    if entity == "LICENSE_PLATE" and not any(ch.isdigit() for ch in v):
        return False  # "plate in frig"
    if entity == "US_DRIVER_LICENSE" and (len(v) < 6 or v.isalpha()):
        return False
    if entity in ("URL", "DOMAIN_NAME") and (".." in v or (source == "presidio" and not _real_url(v, lexicon))):
        return False
    if entity == "PHONE_NUMBER":
        digits = sum(ch.isdigit() for ch in v)
        if digits < 7 or digits > 15 or re.fullmatch(r"(?:19|20)\d\d-\d\d-\d\d", v) or "/" in v or \
                (re.search(r"\d\.\d", v) and not re.fullmatch(r"\d{3}\.\d{3}\.\d{4}(?:\s*x\s*\d+)?", v)) or \
                _TIME_RANGE.fullmatch(v):
            return False
    if entity == "DATE" and re.fullmatch(r"\d{1,2}-\d{1,2}-\d{2,4}", v):
        month, day = (int(x) for x in v.split("-")[:2])
        return 1 <= month <= 12 and 1 <= day <= 31
    if entity == "DATE" and re.fullmatch(r"\d{1,2}/\d{2}", v) and 1 <= int(v.split("/")[0]) <= 12 and \
            int(v.split("/")[1]) > 31:
        return True  # month and year: 8/87, 11/92
    if entity == "DATE" and re.fullmatch(r"\d{1,2}/\d{1,2}(?:/\d{2,4})?", v):
        month, day = (int(x) for x in v.split("/")[:2])
        if v.count("/") == 1 and (month == day or (day <= 4 and month < day)):
            return False  # 5/5 strength, 1/2, 1/3, 3/4: fractions
        return 1 <= month <= 12 and 1 <= day <= 31
    return True


# 1900-0700, 0330-0630: a span of clock times in a nursing note
_TIME_RANGE = re.compile(r"(?:[01]\d|2[0-4])[0-5]\d\s*-\s*(?:[01]\d|2[0-4])[0-5]\d")
_TLDS = {"com", "org", "net", "edu", "gov", "mil", "int", "io", "info", "biz", "health"}


def _real_url(value: str, lexicon: Lexicon | None) -> bool:
    """A web address found by Presidio's loose pattern: a scheme or www, or a name that is not
    an everyday or clinical word before a lowercase domain ('UEarly.se' yes; 'pt.was',
    'NECESSARY.PT', 'placed.ch' no)."""
    if "://" in value or value.lower().startswith("www.") or "@" in value:
        return True
    host = value.split("/")[0]
    parts = host.split(".")
    if len(parts) < 2 or host.isupper() or not parts[-1].islower():
        return False
    first = parts[0].lower()
    last_word = first.split("-")[-1]
    if lexicon is not None and (first in lexicon.common or first in lexicon.clinical or
                                last_word in lexicon.common or last_word in lexicon.clinical):
        return False
    if parts[-1] in _TLDS:
        return len(parts[-2]) > 2
    # a country domain: only a name written as a name ("UEarly.se"), never a run-on word ("ectopy.to")
    name = parts[-2]
    return len(first) > 3 and any(c.isupper() for c in name) and not name.isupper()


_EVERYDAY_MONTHS = frozenset({"may", "dec", "mar", "march", "jun", "aug"})
_MONTH_WORD = re.compile(rf"\b{MONTH_PATTERN}\b\.?", re.I)


def specific_date(text: str, start: int, end: int) -> bool:
    """Does a date found by NER name something specific enough to identify (Safe Harbor): a
    month, a year (not a clock time: 'at 2000'), a numeric day ('3/14'), or a two-digit year
    with its apostrophe ('92)? 'Last week', 'Tuesday', '70s' and a bare '80' are kept."""
    value = text[start:end]
    month = _MONTH_WORD.search(value)
    if month and month.group(0).lower().rstrip(".") in _EVERYDAY_MONTHS and not re.search(r"\d", value) and \
            not re.search(r"\b(?:in|of|since|early|late|mid|last|next|this|until|by)\s*$", text[max(0, start - 12):start], re.I):
        return False  # "May require intubation", "dec rate": a verb or shorthand, not a month
    if month or re.search(r"'\d\d\b", value):
        return True
    numeric = re.fullmatch(r"\s*(\d{1,2})/(\d{1,2})(?:/\d{2,4})?\s*|\s*\d{1,2}([.-])\d{1,2}\3\d{2,4}\s*", value)
    if numeric:  # a whole numeric date, not a blood pressure range or a vent setting chain
        return numeric.group(1) is None or plausible("DATE", value.strip(), "presidio")
    if _TIME_RANGE.search(value):
        return False
    year = re.search(r"\b(?:19\d\d|20[0-2]\d)\b", value)
    if year:
        before = text[max(0, start - 4) : start + year.start()].lower()
        return not re.search(r"(?:\bat|@)\s*$", before)
    return bool(re.fullmatch(r"\d\d", value.strip()) and start > 0 and text[start - 1] in "'’")
