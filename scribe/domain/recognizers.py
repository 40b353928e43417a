"""Redaction's rules, declared. Each recognizer is an object that names the entities it can
find, the kinds of text it reads, and ``find(view)``; ``domain/composition.py`` runs them in
one place. Adding a rule is one entry in ``RECOGNIZERS`` (and its finder beside its kin in
patterns, cues or proper_nouns).

The kind of a text is decided once, in ``view_of``, and every rule reads the same view:

- ``SHORTHAND``: a clinical note in shorthand (a nursing note: 'pt', 'abd', 'gtt'…);
- ``CAPITALS``: written (mostly) in capitals;
- ``SPEECH``: lowercase throughout, as speech recognition writes it;
- ``PROSE``: written with ordinary case.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum

from scribe.domain.cues import find_event_years, find_facilities, find_titled_names
from scribe.domain.pattern_table import PATTERN_ENTITIES
from scribe.domain.patterns import (
    find_cued_names,
    find_field_names,
    find_places,
    find_speakers,
)
from scribe.domain.proper_nouns import (
    find_cued_places,
    find_first_names,
    find_initialled_names,
    find_lines_above_country,
    find_name_lists,
    find_organisations,
    find_subjects_and_owners,
)
from scribe.domain.spoken import Shadow, shadow
from scribe.domain.vocabulary import Lexicon, capitals_text, clinical_shorthand

Find = tuple[int, int, str]  # (start, end, entity) in the view's shadow text


class TextKind(StrEnum):
    SHORTHAND = "shorthand"
    CAPITALS = "capitals"
    SPEECH = "speech"
    PROSE = "prose"


EVERY_KIND = frozenset(TextKind)
NOTES = frozenset({TextKind.SHORTHAND, TextKind.CAPITALS})  # every word abbreviated or capitalised
CASED = frozenset({TextKind.PROSE, TextKind.SPEECH})  # case (or its restoration) tells names from words


def text_kind(text: str, lexicon: Lexicon) -> TextKind:
    """Shorthand before capitals: a nursing note written in capitals is read as shorthand."""
    if clinical_shorthand(text, lexicon):
        return TextKind.SHORTHAND
    if capitals_text(text):
        return TextKind.CAPITALS
    if not any(ch.isupper() for ch in text) and any(ch.isalpha() for ch in text):
        return TextKind.SPEECH
    return TextKind.PROSE


@dataclass(frozen=True)
class TextView:
    """One text as every rule reads it. ``text``: the shadow text (spoken numbers as digits,
    spoken addresses joined; ``shadow`` maps it back to ``original``). ``read``: the same text,
    except that in speech the words that could be names are capitalised (the same length, so
    every offset holds): the NER model and the rules for written names and places read that."""

    original: str
    shadow: Shadow
    kind: TextKind
    read: str
    lexicon: Lexicon

    @property
    def text(self) -> str:
        return self.shadow.text

    @property
    def note(self) -> bool:
        return self.kind in NOTES

    @property
    def spoken(self) -> str | None:
        """The capitalised reading of speech, None for written text."""
        return self.read if self.kind is TextKind.SPEECH else None


def view_of(text: str, lexicon: Lexicon) -> TextView:
    sh = shadow(text)
    kind = text_kind(sh.text, lexicon)
    read = capitalised(sh.text, lexicon) if kind is TextKind.SPEECH else sh.text
    return TextView(original=text, shadow=sh, kind=kind, read=read, lexicon=lexicon)


_CASEABLE = re.compile(r"[^\W\d_][\w'’-]+")


def capitalised(text: str, lexicon: Lexicon) -> str:
    """The words that could be names capitalised, as a writer would ('travelling to canada with
    laura' -> 'travelling to Canada with Laura'): known names and places and words that are
    neither everyday nor clinical, never a stop word nor a name that is an everyday word
    ('brown', 'bill': cues find those). A lowercase nursing note is never read so (there
    "brown" and "tan" describe stool)."""

    def case(m: re.Match[str]) -> str:
        word = m.group(0)
        if word in lexicon.stop_words or not lexicon.identifying_word(word) or lexicon.everyday_name(word):
            return word
        return word[0].upper() + word[1:]

    return _CASEABLE.sub(case, text)


@dataclass(frozen=True)
class Recognizer:
    """A rule: what it finds, where it applies, how. ``certain``: its surroundings make a find
    certain whatever the words ('Dr. Small', 'Union Hospital'), so the composition keeps it
    without the plausibility and clinical-context checks every other find passes."""

    name: str
    entities: frozenset[str]
    kinds: frozenset[TextKind]
    find: Callable[[TextView], Iterable[Find]]
    certain: bool = False

    def applies_to(self, view: TextView) -> bool:
        return view.kind in self.kinds


def _rule(name: str, entities: str, kinds: frozenset[TextKind], find: Callable[[TextView], Iterable[Find]], *,
          certain: bool = False) -> Recognizer:
    return Recognizer(name, frozenset(entities.split()), kinds, find, certain)


# In the order the composition runs them (on an exact tie in overlap, the earlier find wins).
RECOGNIZERS: tuple[Recognizer, ...] = (
    _rule("patterns", " ".join(sorted(PATTERN_ENTITIES)), EVERY_KIND, lambda v: v.lexicon.patterns.find(v.read)),
    _rule("cued names", "PERSON", EVERY_KIND, lambda v: find_cued_names(v.text, v.lexicon)),
    _rule("field names", "PERSON", EVERY_KIND, lambda v: find_field_names(v.read, v.lexicon)),
    _rule("places", "LOCATION", EVERY_KIND, lambda v: find_places(v.read)),
    # in notes only known first names: there every word is capitalised or abbreviated
    _rule("first names", "PERSON", EVERY_KIND, lambda v: find_first_names(v.read, v.lexicon, speech=not v.note)),
    _rule("organisations", "ORGANIZATION", CASED,
          lambda v: find_organisations(v.text, v.lexicon, spoken=v.spoken)),
    # in speech a place after a preposition must be a known town or country ('to Palpation' is none)
    _rule("cued places", "LOCATION", CASED,
          lambda v: find_cued_places(v.read, v.lexicon, known_only=v.kind is TextKind.SPEECH)),
    _rule("speakers", "PERSON", CASED, lambda v: find_speakers(v.read, v.lexicon)),
    _rule("initialled names", "PERSON", CASED, lambda v: find_initialled_names(v.read, v.lexicon)),
    _rule("name lists", "PERSON", CASED, lambda v: find_name_lists(v.read, v.lexicon)),
    _rule("subjects and owners", "PERSON ORGANIZATION", CASED,
          lambda v: find_subjects_and_owners(v.read, v.lexicon)),
    _rule("lines above a country", "LOCATION", CASED, lambda v: find_lines_above_country(v.read, v.lexicon)),
    _rule("titled names", "PERSON", EVERY_KIND, lambda v: find_titled_names(v.text, v.lexicon), certain=True),
    _rule("facilities", "LOCATION", EVERY_KIND, lambda v: find_facilities(v.text, v.lexicon), certain=True),
    _rule("event years", "DATE", EVERY_KIND, lambda v: find_event_years(v.text), certain=True),
)
