"""The model hub is switched off in one place, before any adapter loads Hugging Face weights."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from scribe.config import ROOT
from scribe.engines.convert import gguf_to_hf
from scribe.engines.llm import _tokenizer

OFFLINE = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE")


@pytest.mark.parametrize("load", [_tokenizer, lambda d: gguf_to_hf(d / "absent.gguf", d / "out")])
def test_loading_weights_switches_the_hub_off_first(load: Callable[[Path], object], tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in OFFLINE:
        monkeypatch.setenv(name, "0")  # as a careless environment would have it
    with pytest.raises(Exception):  # nothing is there to load; only the switch matters
        load(tmp_path)
    assert {name: os.environ[name] for name in OFFLINE} == dict.fromkeys(OFFLINE, "1")


def test_only_one_module_sets_the_offline_switches() -> None:
    setters = [path.relative_to(ROOT).as_posix() for path in (ROOT / "scribe").rglob("*.py")
               if re.search(r"environ(?:\[|\.setdefault\()\s*\"(?:HF_HUB|TRANSFORMERS)_OFFLINE", path.read_text())]
    assert setters == ["scribe/engines/offline.py"]
