"""The redaction composition, in one place and pure: a text's view, the NER model's finds for
it and the chart's identifiers in; the identifier spans of the original text out. The NER
adapter (engines/presidio.py) only supplies ``ModelFind``s; every decision about them, and
every rule, is taken here, so a test of this module is a test of what the redactor does."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from scribe.domain.cues import clinical_in_context, take_initial
from scribe.domain.patterns import extend_addresses, plausible, specific_date, tidy_person
from scribe.domain.proper_nouns import beside_finds, find_block_lines
from scribe.domain.recognizers import RECOGNIZERS, Find, Recognizer, TextKind, TextView
from scribe.domain.redaction import ENTITY_TYPES, KnownMatcher, Span, merge_spans
from scribe.domain.vocabulary import clinical_only, weak_find, words_of

_NAMED = frozenset({"PERSON", "ORGANIZATION", "LOCATION", "NRP"})
RULE_SCORE = 0.7  # what a rule's find scores (a model's find keeps the model's score)
SPEECH_DISCOUNT = 0.9  # a model's person or place in speech read capitalised: every word looks like a name
STOCK = "presidio"  # the stock NER model (spaCy's en_core_web_md) and Presidio's own recognizers
NOTES_MODEL = "notes"  # the NER trained here on clinical notes (bench/train_notes_ner.py)
NOTES_MODEL_SCORE = 0.8  # spaCy's entity recognizer gives no confidence: what each of its finds scores


def reads_notes_model(view: TextView) -> bool:
    """The notes model learned nursing notes (capitals, shorthand): it reads those only. On
    speech and prose it would see a kind of text it never saw in training."""
    return view.note


def _notes_name_holds(view: TextView, m: ModelFind, value: str, every: Sequence[ModelFind]) -> bool:
    """The notes model puts a name or place wherever a note's context has one, so an unlisted
    word there is often a drug or a typo ('HEMATURIA', 'labetolol', 'FENTYNL'). Its find holds
    when it is not clinical words only and a word is a known name or place, or the stock model
    found a person, place or organisation there too (two models that read differently agree)."""
    if clinical_only(value, view.lexicon):
        return False
    return any(view.lexicon.known_name_or_place(w) for w in words_of(value)) or \
        any(o.source == STOCK and o.entity in _NAMED and o.start < m.end and m.start < o.end for o in every)


@dataclass(frozen=True)
class ModelFind:
    """One find of an NER model (or of a recognizer built into its adapter), on the view's
    ``read`` text; ``source`` says which model (STOCK or NOTES_MODEL)."""

    start: int
    end: int
    entity: str
    score: float
    source: str = STOCK


class UnknownEntity(ValueError):
    pass


@dataclass(frozen=True)
class Composition:
    """``thresholds``: the entities the practice's policy redacts, each with the score a model's
    find needs; an entity missing here is not redacted. ``specific_dates``: only dates that
    point at a day ('March 4, 2021', not 'last week') count."""

    thresholds: Mapping[str, float]
    specific_dates: bool
    recognizers: tuple[Recognizer, ...] = RECOGNIZERS

    def __post_init__(self) -> None:
        unknown = sorted({e for r in self.recognizers for e in r.entities} - ENTITY_TYPES)
        unknown += sorted(set(self.thresholds) - ENTITY_TYPES)
        if unknown:
            raise UnknownEntity(f"unknown entity names: {', '.join(unknown)}")

    def spans(self, view: TextView, model: Sequence[ModelFind], chart: KnownMatcher) -> list[Span]:
        """Every identifier of ``view.original``, overlaps resolved (see merge_spans)."""
        mapped = chart.find(view.original)
        for f in self.on_shadow(view, model, chart):
            start, end = view.shadow.to_original(f.start, f.end)
            mapped.append(Span(start, end, f.entity, f.score, f.source, f.key))
        return merge_spans(mapped, view.original)

    def on_shadow(self, view: TextView, model: Sequence[ModelFind], chart: KnownMatcher) -> list[Span]:
        """The finds on the shadow text, before they are mapped back and merged: the chart's,
        the model's that pass its checks, then the rules'."""
        text = view.text
        found = chart.find(text)
        found += [f for m in model if (f := self._model_find(view, m, model)) is not None]
        rules = [r for r in self.recognizers if r.applies_to(view)]
        checked: list[Find] = [f for r in rules if not r.certain for f in r.find(view)]
        checked = extend_addresses(view.read, checked)
        addresses = [(s, e) for s, e, entity in checked if entity == "ADDRESS"]
        if addresses and view.kind is not TextKind.SHORTHAND:  # the name and town lines of an address block
            checked += find_block_lines(text, addresses, view.lexicon)
        for start, end, entity in checked:
            if entity in self.thresholds and plausible(entity, text[start:end], "pattern", view.lexicon) and \
                    not clinical_in_context(text, entity, start, end, note=view.note):
                found.append(Span(start, end, entity, RULE_SCORE, "pattern"))
        for start, end, entity in (f for r in rules if r.certain for f in r.find(view)):
            if entity in self.thresholds:
                found.append(Span(start, end, entity, RULE_SCORE, "pattern"))
        if view.kind in (TextKind.PROSE, TextKind.SPEECH):  # case tells names there
            persons = [(f.start, f.end) for f in found if f.entity == "PERSON"]
            places = [(f.start, f.end) for f in found if f.entity in ("LOCATION", "GPE")]
            for start, end, entity in beside_finds(view.read, persons, places, view.lexicon):
                if entity in self.thresholds:
                    found.append(Span(start, end, entity, RULE_SCORE, "pattern"))
        return [Span(take_initial(text, f.start), f.end, f.entity, f.score, f.source, f.key)
                if f.entity == "PERSON" else f for f in found]

    def _model_find(self, view: TextView, m: ModelFind, every: Sequence[ModelFind]) -> Span | None:
        text, speech = view.text, view.kind is TextKind.SPEECH
        if m.source == NOTES_MODEL and not reads_notes_model(view):
            return None
        if m.score < self.thresholds.get(m.entity, 1.1):
            return None
        if speech and m.entity in ("ORGANIZATION", "NRP"):
            return None  # in speech read capitalised every word looks like an organisation
        value = text[m.start : m.end]
        if m.entity in ("DATE_TIME", "DATE") and self.specific_dates and not specific_date(text, m.start, m.end):
            return None  # "last week", "Tuesday", "about a 5": not identifying; needed for a useful note
        if not plausible(m.entity, value, "presidio", view.lexicon):
            return None
        if clinical_in_context(text, m.entity, m.start, m.end, note=view.note):
            return None
        if m.entity in _NAMED and m.source == NOTES_MODEL and not _notes_name_holds(view, m, value, every):
            return None
        if m.entity in _NAMED and m.source == STOCK and weak_find(
                value, view.lexicon, capitals_text=view.kind is TextKind.CAPITALS, shorthand=view.kind is TextKind.SHORTHAND):
            return None  # the stock model cannot see case in capitals or lowercase: an unknown word is its guess
        start, end = tidy_person(text, m.start, m.end) if m.entity == "PERSON" else (m.start, m.end)
        return Span(start, end, m.entity, float(m.score) * (SPEECH_DISCOUNT if speech else 1.0), m.source)
