"""The redactor's word lists are built only with the policy's clinical vocabulary."""

from __future__ import annotations

import pytest

from scribe.domain.errors import PolicyError
from scribe.domain.grammar import NO_GRAMMAR
from scribe.domain.pattern_table import NO_PATTERNS
from scribe.engines.presidio import build_lexicon
from tests.helpers import shipped_clinical_terms, shipped_grammar, shipped_patterns


def test_a_lexicon_without_the_policys_vocabulary_patterns_or_grammar_is_refused() -> None:
    with pytest.raises(PolicyError, match="vocabulary was not read"):
        build_lexicon(frozenset(), shipped_patterns(), shipped_grammar())  # every clinical word would look like a name
    with pytest.raises(PolicyError, match="patterns were not read"):
        build_lexicon(shipped_clinical_terms(), NO_PATTERNS, shipped_grammar())  # no phone number, date or address found at all
    with pytest.raises(PolicyError, match="grammar words were not read"):
        build_lexicon(shipped_clinical_terms(), shipped_patterns(), NO_GRAMMAR)  # 'my sister is' would be a name


def test_the_lexicon_carries_the_vocabulary_to_every_rule() -> None:
    lexicon = build_lexicon(shipped_clinical_terms(), shipped_patterns(), shipped_grammar())
    assert lexicon.clinical_word("sertraline") and lexicon.clinical_word("Sertralin")  # one slip away
    assert not lexicon.identifying_word("lasix") and lexicon.identifying_word("quixby")
