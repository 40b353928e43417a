"""The words of a sentence that carry its content: lowercased, stemmed, stop words and
reporting verbs left out, spoken numbers as digits, placeholders ("[PERSON_1]") kept whole.
Shared by the evidence alignment and the claim checks."""

from __future__ import annotations

import re

_STOP = set(
    """a an the and or but if then so of to in on at by for with from as is are was were be been being
    it its this that these those i you he she they we me him her them us my your his their our mine
    yours do does did have has had not no yes very really just about also there here what which who
    whom when where why how can could would should will shall may might must all any some more most
    into out up down over under again further once than too only own same such both each few other
    am s t don didn doesn isn wasn aren weren won wouldn couldn shouldn ve ll re d m o um uh like
    client clinician therapist session reports reported reporting says said stated states report
    discussed discuss noted note describes described feel feels felt week today""".split()
)

_WORD_RE = re.compile(r"\[[A-Z_]+\d*\]|[a-z0-9]+(?:'[a-z]+)?")
_NUM_WORDS = {
    "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6", "seven": "7",
    "eight": "8", "nine": "9", "ten": "10", "eleven": "11", "twelve": "12", "fifteen": "15",
    "twenty": "20", "thirty": "30", "forty": "40", "fifty": "50", "hundred": "100",
}


def split_sentences(text: str) -> list[str]:
    """Split model output into sentences (also on line breaks and list bullets)."""
    parts: list[str] = []
    for line in text.splitlines():
        line = re.sub(r"^\s*(?:[-*•]|\d+[.)])\s*", "", line).strip()
        if not line:
            continue
        for piece in re.split(r"(?<=[.!?])\s+(?=[A-Z\[\"'])", line):
            piece = piece.strip()
            if len(re.findall(r"[A-Za-z]", piece)) >= 3:
                parts.append(piece)
    return parts


def _stem(word: str) -> str:
    """A crude suffix stripper. A final silent e goes too, so that a word and its inflections
    meet: migraine / migraines, issue / issues / issued, smoke / smokes / smoking (not in
    words of four letters or fewer: care is not car)."""
    word = word.replace("'s", "").replace("'", "")
    for suffix in ("ingly", "edly", "ness", "ing", "ies", "ied", "ed", "es", "ly", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)] + ("y" if suffix in ("ies", "ied") else "")
            break
    return word[:-1] if word.endswith("e") and len(word) >= 5 else word


def content_words(text: str) -> list[str]:
    words = []
    for raw in _WORD_RE.findall(text.lower() if "[" not in text else _lower_keep_tags(text)):
        if raw.startswith("["):
            words.append(raw)
            continue
        raw = _NUM_WORDS.get(raw, raw)
        if raw in _STOP or (len(raw) < 2 and not raw.isdigit()):
            continue
        words.append(_stem(raw))
    return words


def _lower_keep_tags(text: str) -> str:
    return re.sub(r"[^\[\]]+(?=\[|$)|(?<=\])[^\[\]]+", lambda m: m.group(0).lower(), text)
