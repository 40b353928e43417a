"""Presidio + spaCy pseudonymizer: chart-known identifiers first, then NER and patterns.

Fails closed: any error raises EngineError and nothing is drafted."""

from __future__ import annotations

import re
from pathlib import Path

from scribe.domain.errors import EngineError, ModelMissing
from scribe.domain.patterns import (
    extend_addresses,
    find_cued_names,
    find_field_names,
    find_patterns,
    plausible,
    tidy_person,
)
from scribe.domain.redaction import (
    KnownIdentifier,
    Span,
    SurrogateMap,
    apply_surrogates,
    find_known,
    merge_spans,
)
from scribe.domain.spoken import shadow
from scribe.domain.transcript import Segment, model_line
from scribe.engines.protocols import PseudonymizedTranscript
from scribe.policies.schema import RedactionPolicy

# A date element that identifies (Safe Harbor): a month name, a year, or a written date.
_SPECIFIC_DATE = re.compile(
    r"\b(jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\b|\b(1[89]|20)\d\d\b|\d{1,2}[/.-]\d{1,2}"
    r"|^\s*'?\d\d\s*$", re.I)  # the last: a date that is only a two-digit year ('92)


def _offline_tldextract() -> None:
    """Presidio's URL/email recognizers call tldextract, which fetches the public-suffix
    list on first use. Force its bundled snapshot so the redactor never connects out."""
    import tldextract
    import tldextract.tldextract as module

    module.TLD_EXTRACTOR = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)


class PresidioRedactor:
    def __init__(self, spacy_model_dir: Path, policy: RedactionPolicy) -> None:
        if not (spacy_model_dir / "config.cfg").exists():
            raise ModelMissing(f"spaCy model not found in {spacy_model_dir}: run `scribe models install`")
        try:
            _offline_tldextract()
            from presidio_analyzer import AnalyzerEngine
            from presidio_analyzer.nlp_engine import NlpEngineProvider
        except ImportError as exc:  # pragma: no cover
            raise ModelMissing("presidio is not installed: pip install -e '.[engines]'") from exc
        provider = NlpEngineProvider(nlp_configuration={
            "nlp_engine_name": "spacy",
            "models": [{"lang_code": "en", "model_name": str(spacy_model_dir)}],
            "ner_model_configuration": {
                "model_to_presidio_entity_mapping": {
                    "PERSON": "PERSON", "PER": "PERSON", "GPE": "LOCATION", "LOC": "LOCATION", "FAC": "LOCATION",
                    "ORG": "ORGANIZATION", "NORP": "NRP", "DATE": "DATE_TIME", "TIME": "DATE_TIME",
                },
                "labels_to_ignore": ["CARDINAL", "ORDINAL", "QUANTITY", "MONEY", "PERCENT", "EVENT", "LAW",
                                     "LANGUAGE", "PRODUCT", "WORK_OF_ART"],
                "low_confidence_score_multiplier": 0.4,
                "low_score_entity_names": ["ORGANIZATION"],
            },
        })
        nlp_engine = provider.create_engine()
        # Only the entity recognizer is needed, and in the pinned pipeline it has its own
        # tok2vec: the tagger, parser and lemmatizer (over half the time) are switched off.
        nlp = nlp_engine.nlp["en"]
        nlp.select_pipes(enable=[name for name in nlp.pipe_names if name == "ner"])
        analyzer = AnalyzerEngine(nlp_engine=nlp_engine, supported_languages=["en"])
        for uk in ("NhsRecognizer", "UkNinoRecognizer"):
            try:
                analyzer.registry.remove_recognizer(uk)
            except Exception:  # noqa: BLE001 - absent in some versions
                pass
        self._analyzer = analyzer
        self._policy = policy
        self._thresholds = {k: v.threshold for k, v in policy.entities.items()}
        self._presidio_entities = [k for k in policy.entities if k in set(analyzer.get_supported_entities())]
        self._floor = min(self._thresholds.values())
        self.name = f"presidio+{spacy_model_dir.name}"

    def find_spans(self, text: str, known: list[KnownIdentifier]) -> list[Span]:
        """Every identifier in ``text``: the chart's, then NER and patterns, all read on the
        shadow text too (spoken numbers as digits, spoken addresses joined), mapped back."""
        spans = find_known(text, known)
        sh = shadow(text)
        found = find_known(sh.text, known)
        for r in self._analyzer.analyze(text=sh.text, language="en", entities=self._presidio_entities,
                                        score_threshold=self._floor):
            if r.score < self._thresholds.get(r.entity_type, 1.1):
                continue
            value = sh.text[r.start : r.end]
            if r.entity_type == "DATE_TIME" and self._policy.dates == "specific" and not _SPECIFIC_DATE.search(value):
                continue  # "last week", "Tuesday", "about a 5": not identifying; needed for a useful note
            if not plausible(r.entity_type, value, "presidio"):
                continue
            start, end = tidy_person(sh.text, r.start, r.end) if r.entity_type == "PERSON" else (r.start, r.end)
            found.append(Span(start, end, r.entity_type, float(r.score), "presidio"))
        if not any(ch.isupper() for ch in sh.text):
            found += self._cased_pass(sh.text)
        for start, end, entity in extend_addresses(sh.text, [*find_patterns(sh.text), *find_cued_names(sh.text),
                                                             *find_field_names(sh.text)]):
            if entity in self._thresholds and plausible(entity, sh.text[start:end], "pattern"):
                found.append(Span(start, end, entity, 0.7, "pattern"))
        for f in found:
            start, end = sh.to_original(f.start, f.end)
            spans.append(Span(start, end, f.entity, f.score, f.source, f.key))
        return merge_spans(spans)

    def _cased_pass(self, text: str) -> list[Span]:
        """Speech written all in lowercase hides names from a cased NER model: read it once
        more with content words capitalised, keeping only people and places found."""
        from spacy.lang.en.stop_words import STOP_WORDS

        cased = re.sub(r"[a-z][a-z']{2,}", lambda m: m.group(0) if m.group(0) in STOP_WORDS else m.group(0).capitalize(),
                       text)
        out = []
        for r in self._analyzer.analyze(text=cased, language="en", entities=["PERSON", "LOCATION"],
                                        score_threshold=self._floor):
            if r.score >= self._thresholds.get(r.entity_type, 1.1) and plausible(r.entity_type, cased[r.start:r.end], "presidio"):
                out.append(Span(r.start, r.end, r.entity_type, float(r.score) * 0.9, "presidio"))
        return out

    def pseudonymize(
        self, segments: tuple[Segment, ...], known: list[KnownIdentifier], surrogates: SurrogateMap | None = None
    ) -> PseudonymizedTranscript:
        surrogates = surrogates or SurrogateMap()
        counts: dict[str, int] = {}
        out = []
        try:
            for seg in segments:
                spans = self.find_spans(seg.text, known)
                for s in spans:
                    counts[s.entity] = counts.get(s.entity, 0) + 1
                out.append(Segment(seg.index, seg.start, seg.end, apply_surrogates(seg.text, spans, surrogates), seg.speaker))
        except Exception as exc:
            raise EngineError(f"redaction failed ({exc.__class__.__name__}); nothing was drafted", retryable=False) from exc
        return PseudonymizedTranscript(
            lines=tuple(model_line(s) for s in out), segments=tuple(out), surrogates=surrogates,
            entity_counts=counts, _by_redactor=True)
