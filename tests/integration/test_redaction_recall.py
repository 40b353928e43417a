"""S6, the every-run variant, on a corpus generated here (no outside data needed): 2,400
utterances written as speech recognition writes them (lower case, no punctuation, numbers
and emails spoken), each carrying one identifier. Chart-known identifiers must be caught
every time (recall 1.00). The rest may not fall more than half a point below the baseline
measured when this was written (the S6 regression rule); the S6 targets (generic names
0.95, the number classes 0.99) print beside them on every run. Names come from the census
first-name and surname lists that zxcvbn ships. The redactor reads those same lists as known
names, so the name class here measures lowercase names the census knows (most clients' names);
names outside it are measured by bench/redaction.py on others' data."""

from __future__ import annotations

import random

import pytest

from bench.redaction import Doc, score
from scribe.config import ROOT, Settings
from scribe.domain.redaction import KnownIdentifier
from scribe.domain.spoken import speak_digits, speak_email
from scribe.engines.build import build_redactor
from scribe.engines.presidio import PresidioRedactor
from scribe.policies import load_policies

pytestmark = pytest.mark.slow
REDACTION = load_policies(ROOT / "policies").redaction

# Measured on 2026-11-22 with the pinned test spaCy model, seed 20261122.
BASELINE = {"name": 0.907, "phone": 0.99, "email": 0.99, "ssn": 0.99, "date of birth": 0.99, "age over 89": 0.99,
            "street address": 0.99, "mrn": 0.99}
TARGET = {"name": 0.95}

ONES = "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen " \
       "seventeen eighteen nineteen".split()
TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
ORDINALS = ["first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth", "eleventh",
            "twelfth", "thirteenth", "fourteenth", "fifteenth", "sixteenth", "seventeenth", "eighteenth", "nineteenth",
            "twentieth"]
MONTHS = "january february march april may june july august september october november december".split()
STREETS = ["alder creek road", "maple grove avenue", "kingfisher court", "larkspur drive", "old mill street",
           "heron bay boulevard", "juniper hollow lane", "quarry ridge way"]


def words(n: int) -> str:
    return ONES[n] if n < 20 else TENS[n // 10] + ("" if n % 10 == 0 else " " + ONES[n % 10])


def ordinal(n: int) -> str:
    return ORDINALS[n - 1] if n <= 20 else TENS[n // 10] + ("ieth" if n % 10 == 0 else " " + ORDINALS[n % 10 - 1])


def names() -> tuple[list[str], list[str]]:
    from zxcvbn.frequency_lists import FREQUENCY_LISTS as F

    common = set(F["english_wikipedia"][:3000]) | set(F["us_tv_and_film"][:3000])  # drop names that are words
    first = [w for w in F["male_names"][:800] + F["female_names"][:800] if w not in common and len(w) > 2]
    last = [w for w in F["surnames"][:2000] if w not in common and len(w) > 2]
    return first, last


def corpus(seed: int = 20261122) -> tuple[list[Doc], list[str]]:
    rng = random.Random(seed)
    first, last = names()
    docs, kinds = [], []

    def add(template: str, value: str, kind: str, known: list[KnownIdentifier] | None = None) -> None:
        text = template.format(v=value)
        start = text.index(value)
        docs.append(Doc(text, [(start, start + len(value), kind)], known or []))
        kinds.append(kind)

    for _ in range(300):
        add(rng.choice(["i talked to {v} about it yesterday", "{v} came over on sunday and we argued",
                        "we ran into {v} at the store", "my coworker {v} keeps texting me",
                        "honestly {v} was the only one who showed up"]),
            f"{rng.choice(first)} {rng.choice(last)}" if rng.random() < 0.5 else rng.choice(first), "name")
        phone = f"{rng.randint(200, 989)}{rng.randint(200, 999)}{rng.randint(1000, 9999)}"
        add("you can reach me at {v} after five", speak_digits(phone), "phone")
        user = f"{rng.choice(first)}.{rng.choice(last)}{rng.randint(1, 99)}"
        add("my email is {v} if you need it", speak_email(f"{user}@{rng.choice(['gmail.com', 'yahoo.com', 'outlook.com'])}"),
            "email")
        ssn = f"{rng.randint(100, 899)}{rng.randint(10, 99)}{rng.randint(1000, 9999)}"
        add("my social is {v} for the form", speak_digits(ssn), "ssn")
        year = rng.randint(1940, 2005)
        add("i was born on {v} so i am", f"{rng.choice(MONTHS)} {ordinal(rng.randint(1, 28))} "
            f"{words(year // 100)} {words(year % 100) if year % 100 >= 10 else 'oh ' + words(year % 100)}",
            "date of birth")
        add("my grandmother is {v} and still sharp", f"{words(rng.randint(90, 99))} years old", "age over 89")
        number = rng.randint(100, 9899)
        spoken = f"{words(number // 100)} {words(number % 100) if number % 100 >= 10 else 'oh ' + words(number % 100)}"
        add("we moved to {v} last spring", f"{spoken} {rng.choice(STREETS)}", "street address")
        add("the mrn on my card is {v} i think", speak_digits(str(rng.randint(10_000_000, 99_999_999))), "mrn")
    for _ in range(300):  # chart-known: the client's own names, said in lower case, possessive too
        given, family = rng.choice(first), rng.choice(last)
        known = [KnownIdentifier(f"{given} {family}", "PERSON", "client.name"),
                 KnownIdentifier(given, "PERSON", "client.given_name"),
                 KnownIdentifier(family, "PERSON", "client.family_name")]
        add(rng.choice(["so {v} said she would try", "that is {v}s problem not mine", "hi {v} come on in"]),
            rng.choice([given.lower(), f"{given} {family}".lower(), family.lower()]), "chart-known", known)
    return docs, kinds


Scores = dict[str, dict[str, float]]


@pytest.fixture(scope="module")
def results() -> Scores:
    redactor = build_redactor(Settings(models_dir=ROOT / "models", model_profile="test"), REDACTION)
    docs, _ = corpus()
    return score(docs, [[(s.start, s.end) for s in redactor.find_spans(d.text, d.known)] for d in docs])


def test_chart_known_identifiers_are_always_caught(results: Scores) -> None:
    row = results["chart-known"]
    print(f"S6 chart-known: recall {row['recall']:.3f} over {row['n']}")
    assert row["n"] == 300 and row["recall"] == 1.0


def test_no_class_falls_below_its_baseline(results: Scores) -> None:
    print(f"S6 generated ASR-style corpus: {results['overall']['n']} identifiers, "
          f"precision {results['overall']['precision']:.3f}")
    for kind, floor in BASELINE.items():
        row = results[kind]
        target = TARGET.get(kind, 0.99)
        print(f"  {kind:15s} recall {row['recall']:.3f}  baseline {floor:.3f}  S6 target {target:.2f}")
    low = {k: round(results[k]["recall"], 3) for k, floor in BASELINE.items() if results[k]["recall"] < floor - 0.005}
    assert low == {}
    assert sum(v["n"] for k, v in results.items() if k != "overall" and k != "chart-known") == 2400


def test_a_long_transcript_shared_with_a_helper_process_gives_the_same_spans() -> None:
    """A batch past the sharing threshold is split between this process and a helper; the
    spans must be exactly those found in one process, in the same order."""
    from scribe.engines.presidio import PresidioRedactor

    docs, _ = corpus(seed=7)
    texts = [d.text for d in docs[:900]]  # ~40,000 characters: past the threshold
    known = [KnownIdentifier("Rosalind Quill", "PERSON", "client.name")]
    settings = Settings(models_dir=ROOT / "models", model_profile="test")
    single = build_redactor(settings.model_copy(update={"cpu_threads": 1}), REDACTION)
    shared = build_redactor(settings.model_copy(update={"cpu_threads": 2}), REDACTION)
    assert isinstance(shared, PresidioRedactor) and len(shared._shares(texts)) == 2
    try:
        assert shared.find_spans_batch(texts, known) == single.find_spans_batch(texts, known)
    finally:
        shared.close()


def test_a_helper_that_dies_fails_the_batch_and_the_next_batch_gets_new_helpers() -> None:
    import os
    import signal

    docs, _ = corpus(seed=11)
    texts = [d.text for d in docs[:300]]
    shared = build_redactor(Settings(models_dir=ROOT / "models", model_profile="test", cpu_threads=2), REDACTION)
    try:
        shared.warm_up()
        assert shared._pool is not None
        for pid in list(shared._pool._processes):  # the helper is killed, as the OOM killer would
            os.kill(pid, signal.SIGKILL)
        with pytest.raises(Exception):
            shared.find_spans_batch(texts, [])
        assert shared._pool is None
        assert len(shared.find_spans_batch(texts, [])) == len(texts)
    finally:
        shared.close()


@pytest.fixture(scope="module")
def redactor() -> PresidioRedactor:
    return build_redactor(Settings(models_dir=ROOT / "models", model_profile="test"), REDACTION)


@pytest.mark.parametrize(("said", "words", "removed"), [
    # spoken addresses of streets named first, read as a writer would capitalise them
    ("the bus drops you off at six four three ul biskupa bogedaina one one eight", "biskupa bogedaina", True),
    ("she lives at one seven two maneeži seventy five saareküla", "maneeži", True),
    ("it's suite eight three eight tujetsch", "suite eight three eight", True),
    # a known town after a preposition, said in lowercase
    ("we flew to aalborg on saturday morning", "aalborg", True),
    # ordinary and clinical words that capitalising made look like names stay
    ("i'd start you on doxycycline one hundred milligrams twice a day", "doxycycline one hundred", False),
    ("just kind of trying to mix it up through the summer", "mix", False),
    ("you do have some pain to palpation of the lumbar spine", "palpation", False),
    ("a couple of weeks of testing and a history of hypertension", "hypertension", False),
])
def test_lowercase_speech_is_read_with_its_names_capitalised(
    redactor: PresidioRedactor, said: str, words: str, removed: bool
) -> None:
    start, end = said.index(words), said.index(words) + len(words)
    spans = redactor.find_spans(said, [])
    found = [(said[s.start:s.end], s.entity) for s in spans]
    if removed:
        assert any(s.start <= start and s.end >= end for s in spans), found
    else:
        assert not any(s.start < end and s.end > start for s in spans), found
