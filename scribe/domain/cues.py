"""Identifiers that what surrounds them makes certain, whatever the words are, and numbers
that what surrounds them makes clinical.

A word after "Dr." is a name even when it is an everyday word ("Dr. Small", "dr yi"); the
words before "Hospital" or "Rehab" are a facility's name even when they are everyday words
("Union Hospital", "Sacred Heart Memorial"); a two-digit number after a past event in a
history is a year ("MI 92", "CABG 81"). The other way round, "PSV 10/5" is a ventilator
setting and "c/o 3/10 pain" a pain score, not dates, and "SVR 954-1183" a range, not a phone
number. Each finder yields (start, end, entity) for the identifier itself."""

from __future__ import annotations

import re
from collections.abc import Iterator

from scribe.domain.months import WEEKDAYS
from scribe.domain.vocabulary import Lexicon, capitals_text, near_word

# a title, then an optional initial, then the name: "Dr. L. Ruuska", "DRS JOSEPH AND ROBBINSON", "dr o rourke"
_TITLED = re.compile(r"\b(?:dr|drs|doctor|dr's)(?:\.\s*|\s+)(?:([a-z])\.?\s+)?([a-z][a-z'’]*(?:-[a-z][a-z'’]*)?)"
                     r"(?:\s+([a-z][a-z'’]+(?:-[a-z][a-z'’]*)?))?", re.I)
_AND_TITLED = re.compile(r"\s*(?:,|\band\b|&)\s*([a-z][a-z'’]+(?:-[a-z][a-z'’]*)?)", re.I)
# a name before its credential: "J. Yi, MD", "Stord-Painter MD", "Q. LANDER RRT" (the credential in capitals);
# a physician assistant only after an initial ("J. Chang PA", not "Swan PA catheter")
_CREDENTIALED = re.compile(r"\b((?:[A-Z]\.\s*)?[A-Z][A-Za-z'’]+(?:[- ][A-Z][A-Za-z'’]+)?)\b(?:,\s*|\s+)"
                           r"(?-i:MD|M\.D\.|RN|NP|RRT|PA-C|PA|LCSW|LICSW|LMFT|LPC|PhD|PsyD)\b(?!-)")
_CREDENTIALED_LOWER = re.compile(r"(?<![\w.])((?:[a-z]\.\s*)?[a-z][a-z'’]+(?:[- ][a-z][a-z'’]+)?)\b(?:,\s*|\s+)"
                                 r"(?:md|rn|np|rrt|lcsw|licsw)\b")
# a courtesy title before a capitalised name, whatever the word: "mrs. Park", "Mr. Brown", "Ms. Hope" (ms
# is written so, with its full stop: "MS Contin" is a drug, "MS. Verbal" mental status then a sentence; Miss
# has its capital: "I MISS Home")
_HONORIFIC = re.compile(r"\b(?:(?i:mrs|mr)\.?[ \t]+|Miss[ \t]+|Ms\.[ \t]*)(?:([A-Z])\.?[ \t]+)?"
                        r"([A-Z][a-z'’]+(?:-[A-Z][a-z'’]+)?)\b")
# a colleague told of something, in a note written in capitals: "BEA TURA AWARE", "NP JEN AWARE"
_TOLD = re.compile(r"\b([A-Z][A-Z'’]+(?:\s+[A-Z][A-Z'’]+)?)\s+(?:AWARE|NOTIFIED|PAGED|INFORMED|MADE AWARE|CALLED)\b")


def _name_word(word: str, lexicon: Lexicon) -> bool:
    low = word.lower().strip(".'’")
    return bool(low) and low not in lexicon.grammar.after_title and (low not in lexicon.clinical or low in lexicon.names) \
        and not low.endswith(("ing", "ly")) \
        and (low in lexicon.names or len(low) > 1)


def find_titled_names(text: str, lexicon: Lexicon) -> Iterator[tuple[int, int, str]]:
    """Names after a doctor's title, before a credential, or told of something in capitals."""
    for m in _TITLED.finditer(text):
        if not _name_word(m.group(2), lexicon):
            continue
        start = m.start(1) if m.group(1) else m.start(2)
        end = m.end(2)
        # a second word belongs to the name when it is capitalised like one ("Dr. Mary Smith")
        # or a known surname ("dr o rourke" takes "rourke" after the initial-like "o")
        third = m.group(3)
        if third and _name_word(third, lexicon) and ((third[:1].isupper() and not third.isupper() and
                                                     m.group(2)[:1].isupper()) or len(m.group(2)) == 1 or
                                                     (m.group(2).lower() in lexicon.first_names and
                                                     lexicon.unusual_name(third))):
            end = m.end(3)
        yield start, end, "PERSON"
        pos = end
        for _ in range(3):  # "Drs Ferullo and Saeed"
            more = _AND_TITLED.match(text, pos)
            if not more or not _name_word(more.group(1), lexicon) or more.group(1).lower() in lexicon.common:
                break
            yield more.start(1), more.end(1), "PERSON"
            pos = more.end(1)
    for m in _HONORIFIC.finditer(text):
        if _name_word(m.group(2), lexicon):
            yield m.start(1) if m.group(1) else m.start(2), m.end(2), "PERSON"
    for m in _CREDENTIALED.finditer(text):
        words = re.findall(r"[A-Za-z'’]+", m.group(1))
        initial = re.match(r"[A-Z]\.", m.group(1)) is not None
        if m.group(0).endswith("PA") and not initial:
            continue
        if all(_name_word(w, lexicon) for w in words if len(w) > 1) and \
                (initial or any(lexicon.identifying_word(w) for w in words if len(w) > 1)):
            yield m.start(1), m.end(1), "PERSON"
    for m in _CREDENTIALED_LOWER.finditer(text):  # "florencia cooke np", "q. lander rrt"
        words = re.findall(r"[a-z'’]{2,}", m.group(1))
        initial = re.match(r"[a-z]\.", m.group(1)) is not None
        if (initial and len(words) == 1 and lexicon.identifying_word(words[0]) and _name_word(words[0], lexicon)) or \
                (len(words) == 2 and words[0] in lexicon.first_names and lexicon.unusual_name(words[1])):
            yield m.start(1), m.end(1), "PERSON"
    for m in _TOLD.finditer(text):
        words = m.group(1).split()
        while words and not lexicon.identifying_word(words[0]):
            words.pop(0)
        if words and all(_name_word(w, lexicon) and lexicon.identifying_word(w) for w in words):
            end = m.end(1)
            yield end - len(" ".join(words)), end, "PERSON"


# A facility's name before what it is: "Holy Cross Hospital", "to sacred heart hosp", "UNION HOSP.",
# "Baltimore Rehab", "Sacred Heart Memorial"; the name words only (at most three)
_FACILITY = re.compile(r"((?:(?:st|saint)\.?\s+)?(?:[a-z][\w'’-]*\s+){0,2}[a-z][\w'’-]*)\s+(?:hosp[a-z]{0,5}\.?|"
                       r"medical\s+cent(?:er|re)|med\.?\s+ctr|rehab(?:ilitation)?|memorial|regional|clinic|nursing\s+home|"
                       r"health\s*care|health\s+cent(?:er|re)|treatment\s+cent(?:er|re))\b", re.I)
# what every _FACILITY match holds (a whitespace, then the word saying what it is): a cheap first look
_FACILITY_WORD = re.compile(r"\s(?:hosp|medical\s+cent|med\.?\s+ctr|rehab|memorial|regional|clinic|nursing\s+home|"
                            r"health\s*care|health\s+cent|treatment\s+cent)", re.I)
# "St. Mary's", "ST. MARY", "St Joseph's" (not St. John's wort)
_SAINT = re.compile(r"\b(?:St|ST|Saint|SAINT)\.?\s+([A-Z][A-Za-z]+(?:'s|'S)?)\b(?!\s+(?i:wort))")
# a hospital or ward a patient is moved to or from, by name: "transfer to quartermain 2", "SENT TO ED AT GH",
# "from Quartermain 3", "medflight to GH", "brought to GH ER"
_MOVED = re.compile(r"\b(?:admitted|admit|adm|transfer(?:r?ed)?|trans|tx|sent|came|come|arrived|arrival|taken|"
                    r"followed|seen|returned|return|discharged|d/c'?d|referred|brought|medflight|medflighted|went|go|"
                    r"going|enroute)\s+(?:(?:pt|patient|him|her|them|back|over|earlier|directly|emergently|today)\s+)?"
                    r"(?:(to|at|from|into)\s+)?(?:(?:the|ed|er|ew)\s+(?:at\s+)?)?"
                    r"([a-z][a-z'’]+)(?=(\s*\d|\s+(?:er|ew|ed|hospital|hosp)\b)?)", re.I)


def find_facilities(text: str, lexicon: Lexicon) -> Iterator[tuple[int, int, str]]:
    """Hospitals, rehabs and wards by name: before the word saying what they are, a saint's
    name, or a name that is no everyday or clinical word where a patient is moved."""
    capitals, grammar = capitals_text(text), lexicon.grammar
    # _FACILITY may start at any letter, so it costs a tenth of all rule time: first a look for its last word
    for m in _FACILITY.finditer(text) if _FACILITY_WORD.search(text) else ():
        words = list(re.finditer(r"\S+", m.group(1)))
        keep: list[re.Match[str]] = []
        for w in reversed(words):  # from the facility word back, up to the first word that is not a name's
            low = w.group(0).lower().strip("(")
            not_a_name = low in grammar.not_facility or near_word(low, grammar.not_facility) or low in grammar.after_title
            if not_a_name or (low in lexicon.clinical and low not in ("heart", "cross")) \
                    or low in grammar.not_places or not w.group(0)[:1].isalpha():
                break
            keep.insert(0, w)
        # "Union Hospital" names a hospital whatever its words; "Baltimore Rehab", "Sacred Heart Memorial"
        # only when written as a name (or a known place): "drug rehab", "poss rehab" do not
        hospital = re.match(r"hosp|medical|med\b", m.group(0)[len(m.group(1)):].strip(), re.I) is not None
        if keep and not hospital and not any(
                (w.group(0)[:1].isupper() and not capitals) or lexicon.known_name_or_place(w.group(0)) or
                (capitals and lexicon.known_name_or_place(w.group(0))) for w in keep):
            keep = []
        if keep:
            yield m.start(1) + keep[0].start(), m.start(1) + keep[-1].end(), "LOCATION"
    for m in _SAINT.finditer(text):
        name = m.group(1)
        if name.lower().endswith("'s") or name.lower() in lexicon.first_names:
            yield m.start(), m.end(), "LOCATION"
    for m in _MOVED.finditer(text):
        preposition, word = m.group(1), m.group(2)
        low = word.lower()
        if low in lexicon.clinical or low in grammar.not_facility or low in grammar.after_title or low in grammar.not_places:
            continue
        if len(word) > 3 and lexicon.identifying_word(word) and low not in lexicon.names and low not in WEEKDAYS and \
                (m.group(3) or lexicon.known_name_or_place(word) or (preposition and word.istitle() and not capitals)):
            yield m.start(2), m.end(2), "LOCATION"  # "transfer to quartermain 2", "from kernan ew"
        elif (preposition and word.isupper() and 2 <= len(word) <= 5 and not capitals) or \
                (preposition and 2 <= len(word) <= 3 and low not in lexicon.common):
            yield m.start(2), m.end(2), "LOCATION"  # "sent to GH", "sent to gh": a hospital's initials


# a past event in a history, then its year: "MI 92", "CABG 81, Redo CABG 84", "CVA in 94 and 00", "MI 1992."
_EVENTS = (r"mi|cva|cabg|ptca|pci|avr|mvr|tvr|aicd|icd|ppm|tia|dvt|pe|stent(?:s|ed)?|turp|tah|bso|appy|"
           r"appendectomy|cholecystectomy|chole|hysterectomy|mastectomy|lumpectomy|dx|dx'd|diagnosed|"
           r"surgery|repair|removal|replacement|arrest|stroke|amputation|thr|tkr|orif|fx|ablation|cath|bypass")
_EVENT_YEAR = re.compile(rf"\b(?:{_EVENTS})\s+(?:in\s+|x\s*\d\s+)?((?:19|20)?\d\d)(?:\s+and\s+((?:19|20)?\d\d))?"
                         r"(?![\d%/:-]|\.\d|\s*(?:%|mg|cc|ml|units?|mm|cm|min|hrs?|x\b|yo|y/o|yr|years?))", re.I)


_TWO_DIGITS = re.compile(r"\d\d")


def find_event_years(text: str) -> Iterator[tuple[int, int, str]]:
    if not _TWO_DIGITS.search(text):
        return
    for m in _EVENT_YEAR.finditer(text):
        for g in (1, 2):
            if m.group(g):
                yield m.start(g), m.end(g), "DATE"


# what comes before a number that is a setting or a measurement, not a date or a phone number
_SETTING = re.compile(r"(?:\b(?:psv|ps|ips|peep|cpap|bipap|flowby|settings?|vent|simv|imv|ac|a/c|co/ci|pads?|pas|"
                      r"pa\s+sats?|svr|tv|tvs|vt|rr|hr|bp|sbp|map|cvp|glucose|bs|fs|is|cpks?|ck|ckmb|platelets?|"
                      r"plt|hct|wbc|voiding|vols?|flow|rate|ratio|amt|c/o|pain|cp|ha|scale|@|~)\s*(?:of|at|to|was|is|=|:)?"
                      r"\s*|[@~=]\s*)$", re.I)
_SETTING_AFTER = re.compile(r"^\s*(?:%|/\s*\d+\s*%|(?:peep|ps|ips|cc|ml|fio2|bipap|cpap|pain|cp|ha|l|lpm|mcg|mg|"
                            r"units?)\b)", re.I)


# a clock time in a note: "until 2000", "approx 2030", "0700->1930", "1900 - 0700", "the 1940s"
_TIME_BEFORE = re.compile(r"(?:\b(?:approx|aprox|approximately|due|until|till|til|by|from|at|around)\s*|[~@>-]\s*)$", re.I)
_TIME_AFTER = re.compile(r"^(?:s\b|'?s\b|\s*-+>?\s*\d{4}|\s*to\s+\d{4}|\+|\s*c/o)", re.I)
# a pain score: "c/o 3/10 pain", "3-4/10", "chest pressure 6/10", "#4/10"
_PAIN = re.compile(r"^\s*(?:\w+\s+){0,2}(?:pain|cp|ha|headache|discomfort|pressure)\b", re.I)


def clinical_number(text: str, start: int, end: int, *, note: bool = False) -> bool:
    """Is the number at text[start:end] a setting, a score, a clock time or a measurement, by
    the words around it ('PSV 10/5', '12/10/40%', 'c/o 3/10 pain', 'SVR 954-1183'; in a nursing
    note (``note``) 'until 2000', 'approx 2030')?"""
    value = text[start:end]
    if _SETTING.search(text[max(0, start - 16) : start]) or _SETTING_AFTER.match(text[end : end + 12]):
        return True
    before = text[max(0, start - 12):start]
    if re.fullmatch(r"(?:10|[0-9])/10", value) and (
            _PAIN.match(text[end : end + 30]) or re.search(r"(?:pain|pressure|c/o|#|\d-)\s*$", before, re.I)):
        return True
    clock = note and re.fullmatch(r"(?:19|20)\d\d", value) and int(value[2:]) < 60 and int(value[:2]) < 24
    return bool(clock and (_TIME_BEFORE.search(text[max(0, start - 16):start]) or _TIME_AFTER.match(text[end:end + 10])))


def clinical_in_context(text: str, entity: str, start: int, end: int, *, note: bool) -> bool:
    """Is a date or phone number found at text[start:end] a setting, score, clock time or range
    instead ('PSV 10/5', 'SVR 954-1183')? In a note (``note``: capitals or shorthand) a bare
    number of eight digits or fewer is a phone number only after a phone word."""
    if entity in ("DATE", "DATE_TIME") and re.fullmatch(r"[\d/.-]+", text[start:end]):
        return clinical_number(text, start, end, note=note)
    if entity == "PHONE_NUMBER" and note and sum(ch.isdigit() for ch in text[start:end]) <= 8:
        return not phone_cued(text, start)
    return False


_PHONE_CUE = re.compile(r"\b(?:phone|ph|tel|telephone|cell|mobile|home|work|number|no|call|called|calling|reach|"
                        r"contact|fax|pager|beeper|w|h|c)\b\.?\s*[:#]?\s*(?:is\s*|at\s*)?$|#\s*$", re.I)


def phone_cued(text: str, start: int) -> bool:
    """A phone word just before a number: 'Phone # 858-492-5403', 'call 555-0199', 'W: 858-…'."""
    return bool(_PHONE_CUE.search(text[max(0, start - 24) : start]))


_INITIAL_BEFORE = re.compile(r"(?<![\w.])[A-Za-z]\.\s?$")


def take_initial(text: str, start: int) -> int:
    """A person's span starts at the initial written before it: 'L. Ruuska', 'S. DOMINICO'."""
    m = _INITIAL_BEFORE.search(text[max(0, start - 4) : start])
    return start - len(m.group(0)) if m else start
