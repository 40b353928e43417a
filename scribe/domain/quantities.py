"""Numbers as people say them and notes write them, and what each number counts.

"twenty five" and "25", "fifteen hundred" and "1500", "one point five" and "1.5", "three out of
six" and "3/6", "a hundred and twenty over eighty" and "120/80" are the same numbers; a number's
unit is the word it counts ("5 pounds", "4 days ago", "20 milligrams" = "20 mg"). Pure functions
over text."""

from __future__ import annotations

import re

_ONES = {"zero": 0, "oh": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
         "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14,
         "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19}
_TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80,
         "ninety": 90}
_SCALES = {"hundred": 100, "thousand": 1000}
# A cardinal said as one word, as digits ("oh" is left out: alone it is a word of speech, not zero).
CARDINALS = {w: str(v) for w, v in (*_ONES.items(), *_TENS.items(), ("hundred", 100)) if w != "oh"}

# The same unit written two ways; a plural is its singular.
_UNIT_FORMS = {"milligram": "mg", "milligrams": "mg", "mgs": "mg", "lbs": "pound", "lb": "pound", "hrs": "hour",
               "hr": "hour", "mins": "minute", "min": "minute", "yrs": "year", "yr": "year", "wks": "week",
               "wk": "week", "percent": "%", "cc": "ml", "milliliters": "ml", "milliliter": "ml",
               "mcg": "microgram", "times": "time", "x": "time"}
# Words between a number and what it counts ("5 or 6 pounds", "3 to 3.5 pounds", "about 20 of the").
_BETWEEN = {"to", "or", "and", "a", "an", "the", "of", "more", "less", "than", "about", "approximately", "over",
            "around", "half", "-"}
_TOKEN = re.compile(r"\d+(?:\.\d+)?(?:/\d+(?:\.\d+)?)?|[a-z]+(?:'[a-z]+)?|%|-")


def _spell(value: float) -> str:
    return str(int(value)) if value == int(value) else str(value)


def _read_number(words: list[str], i: int) -> tuple[float, int]:
    """The number spoken from words[i] on ("one hundred and twenty", "fifteen hundred", "a
    thousand", "twenty five"), and the index after it."""
    total, current, j = 0.0, 0.0, i
    if words[i] == "a":
        current, j = 1.0, i + 1
    while j < len(words):
        x = words[j]
        below_hundred = current % 100
        if x in _ONES and (below_hundred == 0 or (below_hundred >= 20 and below_hundred % 10 == 0 and _ONES[x] < 10)):
            if j > i and below_hundred == 0 and current == 0 and x in ("zero", "oh"):
                break
            current += _ONES[x]
        elif x in _TENS and below_hundred == 0:
            current += _TENS[x]
        elif x == "hundred" and 0 < current < 100:
            current *= 100
        elif x == "thousand" and current:
            total += current * 1000
            current = 0.0
        elif x == "and" and (total or current >= 100) and j + 1 < len(words) and (words[j + 1] in _ONES
                                                                                 or words[j + 1] in _TENS):
            pass
        else:
            break
        j += 1
    return total + current, j


# A number that is part of a name, not a quantity: SpO2, A1c, G5P5, mm2, COVID-19 (but "x5",
# five times, counts, and a spine's levels, C5-6, are compared as numbers). Ordinals and
# "once", "twice" are numbers.
_IN_A_NAME = re.compile(r"\b(?!x\d)([a-z]+)\d[a-z\d]*\b(?!-\d)|\b([a-z]{3,})-\d+\b(?![-\w])")
_AS_NUMBERS = {"first": "1", "second": "2", "third": "3", "fourth": "4", "fifth": "5", "sixth": "6",
                  "seventh": "7", "eighth": "8", "ninth": "9", "tenth": "10", "once": "1 time", "twice": "2 times"}
# Months by name as their numbers, so "in January of 2021" says what "01/2021" does ("may" and
# "march" are left out: as often a verb).
_MONTHS = {m: str(i) for i, m in enumerate(("january", "february", "march", "april", "may", "june", "july",
                                             "august", "september", "october", "november", "december"), 1)
           if m not in ("may", "march")}
_WORD_FORMS = {**_AS_NUMBERS, **_MONTHS}
_WORD_FORM = re.compile(r"\b(?:" + "|".join(_WORD_FORMS) + r")\b")
_HALF = [(re.compile(r"\bhalf an? (hour|day|year|mile|pack)\b"),
          lambda m: "30 minutes" if m.group(1) == "hour" else f"0.5 {m.group(1)}"),
         (re.compile(r"\b(?:an?|1) (hour|day|week|month|year|pack|pound|mile) and a half\b"), lambda m: f"1.5 {m.group(1)}s"),
         (re.compile(r"\b(\d+) and a half\b"), lambda m: f"{m.group(1)}.5"),
         (re.compile(r"\b(\d+) (hours?|days?|weeks?|months?|years?|packs?|pounds?|miles?) and a half\b"),
          lambda m: f"{m.group(1)}.5 {m.group(2)}")]


def _written_forms(text: str) -> str:
    """Ordinals as numbers (2nd, second -> 2), clock hours without their minutes (2:00 -> 2),
    numbers inside names dropped, months and halves as numbers."""
    text = _IN_A_NAME.sub(lambda m: m.group(1) or m.group(2), text)
    text = re.sub(r"\b(\d+)(?:st|nd|rd|th)\b", r"\1", text)
    text = re.sub(r"\b(\d{1,2}):00\b", r"\1", text)
    return _WORD_FORM.sub(lambda m: _WORD_FORMS[m.group(0)], text)


def spoken_to_digits(text: str) -> str:
    """The text lowercased with every spoken number as digits, and "n out of m" / "n over m"
    as "n/m" (a scale's score, a blood pressure)."""
    text = _written_forms(re.sub(r"(?<=\d),(?=\d{3}\b)", "", text.lower()))  # 1,000
    text = re.sub(r"\ba couple (?:of )?(?=(?:\w+ )?(?:days?|weeks?|months?|years?|times|hours|minutes|pounds)\b)",
                  "2 ", text)
    words = _TOKEN.findall(text)
    out: list[str] = []
    i = 0
    while i < len(words):
        w = words[i]
        if not (w in _ONES or w in _TENS or (w == "a" and i + 1 < len(words) and words[i + 1] in _SCALES)):
            out.append(w)
            i += 1
            continue
        value, j = _read_number(words, i)
        spelled = _spell(value)
        if j + 1 < len(words) and words[j] == "point" and words[j + 1] in _ONES and _ONES[words[j + 1]] < 10:
            digits = []
            j += 1
            while j < len(words) and words[j] in _ONES and _ONES[words[j]] < 10:
                digits.append(str(_ONES[words[j]]))
                j += 1
            spelled += "." + "".join(digits)
        out.append(spelled)
        i = j
    said = " ".join(out)
    for pattern, repl in _HALF:
        said = pattern.sub(repl, said)
    return re.sub(r"\b(\d+(?:\.\d+)?) (?:out of|over) (\d+(?:\.\d+)?)\b", r"\1/\2", said)


def numbers(text: str) -> set[str]:
    """Every number the text says, as digits ("3/6" gives 3 and 6)."""
    return {n.lstrip("0") or "0" if n.isdigit() else n
            for x in re.findall(r"\d+(?:\.\d+)?(?:/\d+(?:\.\d+)?)?", spoken_to_digits(text)) for n in x.split("/")}


def unit_of(word: str) -> str:
    """The unit a word names, one form for each ("milligrams", "mgs" -> "mg"; "pounds" -> "pound")."""
    word = _UNIT_FORMS.get(word, word)
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        word = word[:-1]
    return _UNIT_FORMS.get(word, word)


def counted(text: str) -> list[tuple[str, str]]:
    """(number, what it counts) for each number followed by what it counts within three words
    ("5 pounds" -> ("5", "pound"), "3 to 3.5 pounds" -> both 3 and 3.5 count pounds, "3/6" ->
    ("3", "/6")). A number followed by another word than a unit still pairs with that word:
    the caller compares like with like."""
    tokens = _TOKEN.findall(spoken_to_digits(text))
    out = []
    for i, tok in enumerate(tokens):
        if not tok[0].isdigit():
            continue
        if "/" in tok:
            top, bottom = tok.split("/", 1)
            out.append((top, "/" + bottom))
            continue
        for nxt in tokens[i + 1 : i + 5]:
            if nxt[0].isdigit() or nxt in _BETWEEN:
                continue
            if nxt.isalpha() or nxt == "%":
                out.append((tok, unit_of(nxt)))
            break
        if i and tokens[i - 1] in _NAMED_BY:  # "type 2", "grade 3", "level 4"
            out.append((tok, tokens[i - 1]))
    return out


# Words a number follows to name a kind or a rank ("type 2 diabetes", "grade 3 murmur").
_NAMED_BY = frozenset({"type", "grade", "stage", "level", "class", "step", "phase", "day", "week", "room", "number"})


def count_mismatches(sentence: str, evidence: list[str]) -> list[str]:
    """Why the evidence counts the same thing with another number ("8 pounds" in the note,
    only "5 pounds" in the transcript). Silent when the transcript does not count that thing."""
    said: dict[str, set[str]] = {}
    for text in evidence:
        for value, unit in counted(text):
            said.setdefault(unit, set()).add(value)
    reasons = []
    for value, unit in counted(sentence):
        values = said.get(unit)
        if values and value not in values:
            sep = "" if unit.startswith("/") else " "
            reasons.append(f"the note has {value}{sep}{unit}, the transcript "
                           + " or ".join(f"{v}{sep}{unit}" for v in sorted(values)))
    return reasons
