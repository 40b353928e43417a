"""Which words can identify someone, and which cannot.

A statistical NER model reads clinical shorthand ("ABG", "Lasix", "SBP 80s") and text written
all in capitals as names and organisations. These rules decide, from word lists, whether a
find holds anything that could identify a person: a known first name or surname, a place, or
a word that is neither everyday English nor clinical vocabulary. The lists themselves come
from the caller (``Lexicon``), the clinical vocabulary among them (policies/vocabulary, read
with the redaction policy); this module holds only the rules."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from scribe.domain.grammar import NO_GRAMMAR, Grammar
from scribe.domain.pattern_table import NO_PATTERNS, PatternTable

_WORD = re.compile(r"[A-Za-zÀ-ÿĀ-žΑ-ωА-я][\w'’.-]*")


@dataclass(frozen=True)
class Lexicon:
    """Word lists, lowercase. ``names``: first names and surnames (a census list), and
    ``first_names`` the first names alone; ``places``: countries and states; ``common``:
    everyday English words; ``stop_words``: words never capitalised as a name in speech;
    ``clinical``: clinical words that are no one's name (policies/vocabulary, via the redaction
    policy); ``patterns``: the regular expressions for identifiers with a shape (the same
    policy's vocabulary/patterns.yaml); ``grammar``: the English word lists the rules read as
    grammar (its vocabulary/grammar.yaml)."""

    names: frozenset[str]
    places: frozenset[str]
    common: frozenset[str]
    first_names: frozenset[str] = frozenset()
    stop_words: frozenset[str] = frozenset()
    clinical: frozenset[str] = frozenset()
    patterns: PatternTable = NO_PATTERNS
    grammar: Grammar = NO_GRAMMAR

    def identifying_word(self, word: str) -> bool:
        """Could this one word point at a person: a name, a place, or a word that is neither
        everyday English nor clinical (an unusual surname, a small town)?"""
        w = word.lower().strip(".'’-")
        if w.endswith(("'s", "’s")):
            w = w[:-2]
        if not w or w in self.clinical:
            return False
        if w in self.names or w in self.places:
            return True
        # two letters are a word ('a', 'is') in lowercase but a hospital's initials in capitals (GH);
        # a clinical word typed with one slip is no unusual word ('secreations')
        return (len(w) > 2 or word.isupper()) and w not in self.common and not near_word(w, self.clinical)

    def clinical_word(self, word: str) -> bool:
        """A clinical word, or a long one typed with one slip ('secreations', 'morpphine')."""
        w = word.lower().strip(".'’-")
        return w in self.clinical or near_word(w, self.clinical)

    def everyday_name(self, word: str) -> bool:
        """A name that is also an everyday word ('brown', 'bill', 'tan')."""
        w = word.lower().strip(".'’-")
        return w in self.names and w in self.common

    def unusual_name(self, word: str) -> bool:
        """A known name that is no everyday word ('rourke', 'cooke')."""
        w = word.lower().strip(".'’-")
        return w in self.names and w not in self.common

    def known_name_or_place(self, word: str) -> bool:
        w = word.lower().strip(".'’-")
        return w not in self.clinical and (w in self.names or w in self.places)


def words_of(value: str) -> list[str]:
    return _WORD.findall(value)


def is_acronym(word: str) -> bool:
    """GI, SBP, CXR, NPN: capitals only, at most four letters."""
    letters = word.strip(".")
    return 1 <= len(letters) <= 4 and letters.isalpha() and letters.isupper()


def clinical_only(value: str, lexicon: Lexicon) -> bool:
    """Every word is clinical vocabulary or an everyday function word ('abd soft', 'lasix gtt');
    a long clinical word typed with one slip is still one ('secreations', 'hepparin')."""
    words = [w.lower().strip(".'’-") for w in words_of(value)]
    return bool(words) and all(w in lexicon.grammar.function_words or len(w) <= 2 or lexicon.clinical_word(w)
                               for w in words)


def weak_find(value: str, lexicon: Lexicon, *, capitals_text: bool, shorthand: bool = False) -> bool:
    """Is an NER find of a person, place or organisation too weak to keep?

    - Clinical vocabulary only: always dropped ('Lasix', 'abd soft', 'Foley').
    - A lone acronym of four capitals or fewer (GI, CV, SBP, NC): the model's guess, not a
      name; states are not identifiers under Safe Harbor either.
    - Written all in capitals inside a text written in capitals, or all in lowercase: the
      model cannot see case there, so keep it only when a word is a known name or place, or
      unusual enough ('CALVERT', 'MAUREEN' stay; 'AFEBRILE TIMES' goes only if everyday)."""
    words = words_of(value)
    if not words or clinical_only(value, lexicon):
        return True
    if len(words) == 1 and is_acronym(words[0]):
        return True
    flat = all(w.isupper() for w in words if any(c.isalpha() for c in w)) and capitals_text
    lower = all(w.islower() for w in words)
    if shorthand:  # "amber urine", "Nitro gtt": a clinical word makes it no name in a nursing note
        return not any(lexicon.known_name_or_place(w) and not (lower and lexicon.everyday_name(w)) for w in words) \
            or any(lexicon.clinical_word(w) for w in words)
    if flat:
        return not any(lexicon.identifying_word(w) for w in words)
    if lower:  # "thick tan", "sample sent": in lowercase a name that is also an everyday word is not enough
        return not any(lexicon.identifying_word(w) and not lexicon.everyday_name(w) for w in words)
    return False


def capitals_text(text: str) -> bool:
    """Text written (mostly) in capitals: most of its letters are upper case."""
    letters = [c for c in text if c.isalpha()]
    return len(letters) >= 20 and sum(c.isupper() for c in letters) > 0.6 * len(letters)


def clinical_shorthand(text: str, lexicon: Lexicon) -> bool:
    """A clinical note in shorthand (a nursing note), not speech: many words are clinical
    abbreviations ('pt', 'abd', 'sbp', 'gtt'…). NER trained on news reads such text poorly."""
    words = [w.lower().strip(".'’-") for w in words_of(text)]
    return len(words) >= 8 and \
        sum(lexicon.clinical_word(w) for w in words) >= max(2.0, 0.06 * len(words))


def near_word(word: str, words: frozenset[str]) -> bool:
    """A long word one slip from a listed one (a letter dropped, doubled, changed or two swapped:
    "transfered", "admited"), so a word list carries over to text typed in a hurry without a
    rule for each typo. Short words must match exactly: at four letters one slip is another word."""
    if len(word) < 7:
        return False
    index = _slip_index(words)
    candidates = index.get(word, set()).union(*(index.get(v, ()) for v in _deletions(word)))
    return any(one_slip(word, listed) for listed in candidates)


def _deletions(word: str) -> set[str]:
    return {word[:i] + word[i + 1:] for i in range(len(word))}


@functools.cache
def _slip_index(words: frozenset[str]) -> dict[str, set[str]]:
    """Each long listed word under itself and each of its one-letter deletions: two words one
    slip apart share one of these keys, so a lookup reads a few keys, not the whole list."""
    index: dict[str, set[str]] = {}
    for listed in words:
        if len(listed) >= 7:
            for key in (listed, *_deletions(listed)):
                index.setdefault(key, set()).add(listed)
    return index


def one_slip(a: str, b: str) -> bool:
    """The same word, or one slip apart (a letter dropped, doubled, changed, or two swapped)."""
    if a == b:
        return True
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        return len(diff) == 1 or (len(diff) == 2 and diff[1] == diff[0] + 1 and a[diff[0]] == b[diff[1]]
                                   and a[diff[1]] == b[diff[0]])
    short, long_ = (a, b) if len(a) < len(b) else (b, a)
    i = 0
    while i < len(short) and short[i] == long_[i]:
        i += 1
    return short[i:] == long_[i + 1:]

