"""Spoken forms of identifiers, both ways. Speech recognition writes "five five five two oh
one" and "jane at gmail dot com"; the redactor reads them back as digits and addresses
(``shadow``), keeping a map from every character back to the words it came from."""

from __future__ import annotations

import re
from dataclasses import dataclass

from scribe.domain.months import MONTH_WORDS

DIGIT_WORDS = {"zero": 0, "oh": 0, "o": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
               "seven": 7, "eight": 8, "nine": 9}
TEENS = {"ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16,
         "seventeen": 17, "eighteen": 18, "nineteen": 19}
TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90}
ORDINALS = {"first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7, "eighth": 8,
            "ninth": 9, "tenth": 10, "eleventh": 11, "twelfth": 12, "thirteenth": 13, "fourteenth": 14,
            "fifteenth": 15, "sixteenth": 16, "seventeenth": 17, "eighteenth": 18, "nineteenth": 19, "twentieth": 20,
            "thirtieth": 30}
_DIGIT_NAMES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


def speak_digits(text: str) -> str:
    """'555-201-3344' -> 'five five five two oh one three three four four' (as people read ids)."""
    words = []
    for ch in text:
        if ch.isdigit():
            words.append("oh" if ch == "0" else _DIGIT_NAMES[int(ch)])
        elif ch.isalpha():
            words.append(ch.lower())
    return " ".join(words)


def speak_email(email: str) -> str:
    """'jane.doe@gmail.com' -> 'jane dot doe at gmail dot com'."""
    spoken = email.strip().lower().replace("@", " at ").replace(".", " dot ").replace("_", " underscore ")
    spoken = spoken.replace("-", " dash ")
    return re.sub(r"\s+", " ", spoken).strip()


@dataclass(frozen=True)
class Shadow:
    """Text with spoken numbers and addresses written out; ``origin[i]`` is the (start, end)
    in the original text of the words that produced shadow character i."""

    text: str
    origin: list[tuple[int, int]]

    def to_original(self, start: int, end: int) -> tuple[int, int]:
        pieces = self.origin[start:end]
        return (min(p[0] for p in pieces), max(p[1] for p in pieces)) if pieces else (start, end)


_WORD = re.compile(r"[A-Za-z]+(?:'[a-z]+)?|\d+|[^\sA-Za-z\d]")
_JOINERS = {"dot": ".", "at": "@", "underscore": "_", "dash": "-", "hyphen": "-"}


def _number_run(words: list[str], i: int) -> tuple[str, int]:
    """Digits read from the number words starting at i, and how many words they used.
    Digit words concatenate (ids are read digit by digit); 'twenty two' is 22; 'nineteen
    eighty one' is 1981; 'two thousand five' is 2005."""
    out, j, pad = "", i, 0

    def add(group: str) -> None:
        nonlocal out, pad
        out += group.rjust(pad, "0") if pad else group
        pad = 0

    while j < len(words):
        w = words[j].lower()
        nxt = words[j + 1].lower() if j + 1 < len(words) else ""
        if w in ("double", "triple") and nxt in DIGIT_WORDS:
            add(str(DIGIT_WORDS[nxt]) * (2 if w == "double" else 3))
            j += 2
        elif w in TENS:
            if nxt in DIGIT_WORDS and nxt not in ("oh", "o", "zero"):
                add(str(TENS[w] + DIGIT_WORDS[nxt]))
                j += 2
            else:
                add(str(TENS[w]))
                j += 1
        elif w in TEENS:
            add(str(TEENS[w]))
            j += 1
        elif w in DIGIT_WORDS and not (w in ("o", "oh") and not out and not _next_is_number(words, j)):
            add(str(DIGIT_WORDS[w]))
            j += 1
        elif w == "thousand" and out and len(out) <= 2:
            pad = 3
            j += 1
            if j < len(words) and words[j].lower() == "and":
                j += 1
        elif w == "hundred" and out and len(out) <= 2:
            pad = 2
            j += 1
        elif w.isdigit():
            add(w)
            j += 1
        else:
            break
    if pad:
        out += "0" * pad
    return out, j - i


def _next_is_number(words: list[str], j: int) -> bool:
    return j + 1 < len(words) and (words[j + 1].lower() in DIGIT_WORDS or words[j + 1].lower() in TEENS
                                   or words[j + 1].lower() in TENS)


def shadow(text: str) -> Shadow:
    """The text with spoken identifiers written out, everything else copied verbatim: runs of
    two or more number words become digits ('five five five' -> '555'; 'nineteen eighty one'
    -> '1981'); an ordinal after a month becomes its number; 'x at y dot com' becomes
    'x@y.com'. Untouched characters map to themselves."""
    tokens = [(m.group(0), m.start(), m.end()) for m in _WORD.finditer(text)]
    words = [t[0] for t in tokens]
    out: list[str] = []
    origin: list[tuple[int, int]] = []
    pos = 0

    def copy_to(end: int) -> None:
        nonlocal pos
        out.append(text[pos:end])
        origin.extend((k, k + 1) for k in range(pos, end))
        pos = end

    def replace(first: int, last: int, piece: str, *, start: int | None = None, end: int | None = None) -> None:
        nonlocal pos
        a = tokens[first][1] if start is None else start
        b = tokens[last][2] if end is None else end
        copy_to(a)
        out.append(piece)
        origin.extend([(a, b)] * len(piece))
        pos = b

    i = 0
    while i < len(tokens):
        w = words[i].lower()
        numeric = w in DIGIT_WORDS or w in TEENS or w in TENS or w in ("double", "triple")
        digits, used = _number_run(words, i) if numeric else ("", 0)
        if w in TENS and i + 1 < len(tokens) and words[i + 1].lower() in ORDINALS and _after_month(words, i):
            replace(i, i + 1, str(TENS[w] + ORDINALS[words[i + 1].lower()]))
            i += 2
        elif used >= 2 or (used == 1 and len(digits) >= 2 and _after_month(words, i)):
            replace(i, i + used - 1, digits)
            i += used
        elif w in ORDINALS and _after_month(words, i):
            replace(i, i, str(ORDINALS[w]))
            i += 1
        elif w in _JOINERS and 0 < i < len(tokens) - 1 and _email_context(words, i):
            # ' at ' -> '@': the joiner and the spaces around it become one character
            replace(i, i, _JOINERS[w], start=tokens[i - 1][2], end=tokens[i + 1][1])
            i += 1
        else:
            i += 1
    copy_to(len(text))
    return Shadow("".join(out), origin)




def _after_month(words: list[str], i: int) -> bool:
    window = [w.lower() for w in words[max(0, i - 3):i]]
    return any(w in MONTH_WORDS for w in window)


def _email_context(words: list[str], i: int) -> bool:
    """'at' and 'dot' join words only inside something shaped like an address: a 'dot' must
    follow within a few words of an 'at', and a known top-level domain must end it."""
    lowered = [w.lower() for w in words]
    w = lowered[i]
    if w == "at":
        ahead = lowered[i + 1:i + 6]
        return "dot" in ahead and any(t in _TLDS for t in ahead)
    if w == "dot":
        before_at = "at" in lowered[i + 1:i + 5] and any(t in _TLDS for t in lowered[i + 2:i + 9])
        after_at = "at" in lowered[max(0, i - 6):i] and (lowered[i + 1] in _TLDS or _tld_after(lowered, i))
        return before_at or after_at
    return w in ("underscore", "dash", "hyphen") and "at" in lowered[i + 1:i + 6]


def _tld_after(lowered: list[str], i: int) -> bool:
    return any(t in _TLDS for t in lowered[i + 1:i + 5]) and "at" in lowered[max(0, i - 6):i]


_TLDS = {"com", "org", "net", "edu", "gov", "io", "us", "info", "biz", "co", "uk", "de", "me", "health", "mail"}
