"""S6, the every-run variant: the real redactor (pinned spaCy model) on 300 sentences of
Presidio's synthetic set, the same rendered as speech-recognition output, and the ACI-Bench validation
dialogues whose patient and doctor names are chart-known. Known identifiers must be caught
every time (recall 1.00); the rest may not fall more than half a point below the baseline
measured when this test was written (the S6 regression rule). The absolute S6 targets
(generic names 0.95 and more) are not met yet: that is the redaction issue's work, and the
figures print here on every run."""

from __future__ import annotations

import pytest

from bench.redaction import aci, asr_style, presidio_synth, score
from scribe.config import ROOT, Settings
from scribe.engines.build import build_redactor

pytestmark = pytest.mark.slow

# Measured on 2026-11-22 (300 documents each, the pinned test spaCy model), after the European
# street forms, the rarer US street suffixes and bare five- and six-digit numbers were added.
BASELINE = {"presidio_synth": 0.836, "asr_style": 0.651}


@pytest.fixture(scope="module")
def redactor():
    return build_redactor(Settings(models_dir=ROOT / "models", model_profile="test"))


def test_chart_known_names_are_always_caught(redactor) -> None:
    docs = aci(None)
    rows = score(docs, [[(s.start, s.end) for s in redactor.find_spans(d.text, d.known)] for d in docs])
    print(f"S6 known identifiers (ACI-Bench names): recall {rows['overall']['recall']:.3f} over {rows['overall']['n']}")
    assert rows["overall"]["n"] > 40 and rows["overall"]["recall"] == 1.0


@pytest.mark.parametrize("name, loader", [("presidio_synth", presidio_synth), ("asr_style", asr_style)])
def test_recall_does_not_regress(redactor, name, loader) -> None:
    docs = loader(300)
    rows = score(docs, [[(s.start, s.end) for s in redactor.find_spans(d.text, d.known)] for d in docs])
    overall = rows["overall"]
    people = rows.get("PERSON", {}).get("recall", 0.0)
    print(f"S6 {name}: recall {overall['recall']:.3f} (baseline {BASELINE[name]:.3f}), names {people:.3f} "
          f"(target 0.95), precision {overall['precision']:.3f} (target 0.80)")
    assert overall["recall"] >= BASELINE[name] - 0.005
    assert overall["precision"] >= 0.80
