"""Presidio + spaCy pseudonymizer: chart-known identifiers first, then NER and patterns.

Fails closed: any error raises EngineError and nothing is drafted."""

from __future__ import annotations

import re
from pathlib import Path

from scribe.domain.errors import EngineError, ModelMissing
from scribe.domain.redaction import (
    KnownIdentifier,
    Span,
    SurrogateMap,
    apply_surrogates,
    find_known,
    merge_spans,
)
from scribe.domain.transcript import Segment, model_line
from scribe.engines.protocols import PseudonymizedTranscript

ENTITIES = ["PERSON", "PHONE_NUMBER", "EMAIL_ADDRESS", "US_SSN", "LOCATION", "DATE_TIME", "URL",
            "IP_ADDRESS", "CREDIT_CARD", "US_DRIVER_LICENSE", "US_PASSPORT", "US_BANK_NUMBER", "MRN", "AGE"]
# A date element that identifies (Safe Harbor): a month name, a year, or a written date.
_SPECIFIC_DATE = re.compile(
    r"\b(jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\b|\b(1[89]|20)\d\d\b|\d{1,2}[/.-]\d{1,2}", re.I)


def _offline_tldextract() -> None:
    """Presidio's URL/email recognizers call tldextract, which fetches the public-suffix
    list on first use. Force its bundled snapshot so the redactor never connects out."""
    import tldextract
    import tldextract.tldextract as module

    module.TLD_EXTRACTOR = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)


class PresidioRedactor:
    def __init__(self, spacy_model_dir: Path, *, score_threshold: float = 0.4) -> None:
        if not (spacy_model_dir / "config.cfg").exists():
            raise ModelMissing(f"spaCy model not found in {spacy_model_dir}: run `scribe models install`")
        try:
            _offline_tldextract()
            from presidio_analyzer import AnalyzerEngine, Pattern, PatternRecognizer
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
        analyzer = AnalyzerEngine(nlp_engine=provider.create_engine(), supported_languages=["en"])
        for uk in ("NhsRecognizer", "UkNinoRecognizer"):
            try:
                analyzer.registry.remove_recognizer(uk)
            except Exception:  # noqa: BLE001 - absent in some versions
                pass
        analyzer.registry.add_recognizer(PatternRecognizer(
            supported_entity="MRN", name="MrnRecognizer",
            patterns=[Pattern("mrn", r"\b(?:MRN|medical record(?: number)?)[:#\s]*[A-Z0-9-]{5,12}\b", 0.85)],
            context=["mrn", "record"]))
        analyzer.registry.add_recognizer(PatternRecognizer(
            supported_entity="AGE", name="AgeOver89Recognizer",
            patterns=[Pattern("age90+", r"\b(?:9\d|1[01]\d)[- ](?:years?|yrs?)[- ]old\b", 0.8)]))
        self._analyzer = analyzer
        self._threshold = score_threshold
        self.name = f"presidio+{spacy_model_dir.name}"

    def _spans(self, text: str, known: list[KnownIdentifier]) -> list[Span]:
        spans = find_known(text, known)
        for r in self._analyzer.analyze(text=text, language="en", entities=ENTITIES, score_threshold=self._threshold):
            value = text[r.start : r.end]
            if r.entity_type == "DATE_TIME" and not _SPECIFIC_DATE.search(value):
                continue  # "last week", "Tuesday", "about a 5": not identifying; needed for a useful note
            spans.append(Span(r.start, r.end, r.entity_type, float(r.score), "presidio"))
        return merge_spans(spans)

    def pseudonymize(
        self, segments: tuple[Segment, ...], known: list[KnownIdentifier], surrogates: SurrogateMap | None = None
    ) -> PseudonymizedTranscript:
        surrogates = surrogates or SurrogateMap()
        counts: dict[str, int] = {}
        out = []
        try:
            for seg in segments:
                spans = self._spans(seg.text, known)
                for s in spans:
                    counts[s.entity] = counts.get(s.entity, 0) + 1
                out.append(Segment(seg.index, seg.start, seg.end, apply_surrogates(seg.text, spans, surrogates), seg.speaker))
        except Exception as exc:
            raise EngineError(f"redaction failed ({exc.__class__.__name__}); nothing was drafted", retryable=False) from exc
        return PseudonymizedTranscript(
            lines=tuple(model_line(s) for s in out), segments=tuple(out), surrogates=surrogates,
            entity_counts=counts, _by_redactor=True)
