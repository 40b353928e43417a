"""The small English word lists the redaction rules read as grammar: the words that end or
refuse a cue's find ("my sister is", "dr aware", "went to bed"). They are data
(policies/vocabulary/grammar.yaml), read with the redaction policy and checked here when they
are parsed: every list present and nothing else, each a run of lowercase words, none twice.
Pure: the policy loader reads the file and hands the parsed mapping here."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, fields

_WORD = re.compile(r"[a-z][a-z'’/-]*")


class GrammarDataError(ValueError):
    """The grammar data is wrong; the message says where (the loader adds the file)."""


@dataclass(frozen=True)
class Grammar:
    """``not_names``: words after a cue that are no name ('my sister is'); ``relations``: the
    relations and roles a name may follow ('my sister laura', 'daughter Philomena');
    ``speaker_roles``: labels before a colon that are no speaker ('Plan:'); ``after_title``:
    what follows a title without being a name ('dr aware'); ``not_facility``: words before
    'Hospital' that are no part of its name ('the local'); ``not_places``: everyday places after
    a movement ('went to bed'); ``name_connectors``: small words inside a place's name ('Rio de
    Janeiro'); ``function_words``: words that with clinical ones make no name ('abd soft')."""

    not_names: frozenset[str] = frozenset()
    relations: tuple[str, ...] = ()
    speaker_roles: frozenset[str] = frozenset()
    after_title: frozenset[str] = frozenset()
    not_facility: frozenset[str] = frozenset()
    not_places: frozenset[str] = frozenset()
    name_connectors: frozenset[str] = frozenset()
    function_words: frozenset[str] = frozenset()


NO_GRAMMAR = Grammar()  # a lexicon made by hand in a test; the redactor refuses to run on it


def parse_grammar(data: object) -> Grammar:
    """The lists of ``data`` (the YAML file's mapping: ``version`` and one entry per list,
    each a string of words separated by spaces)."""
    if not isinstance(data, Mapping):
        raise GrammarDataError("expected a mapping of word lists")
    names = [f.name for f in fields(Grammar)]
    unknown = sorted(set(data) - set(names) - {"version"})
    missing = [n for n in names if n not in data]
    if data.get("version") != 1:
        raise GrammarDataError("version: expected 1")
    if unknown:
        raise GrammarDataError(f"unknown lists: {', '.join(map(str, unknown))}")
    if missing:
        raise GrammarDataError(f"missing lists: {', '.join(missing)}")
    lists: dict[str, tuple[str, ...]] = {}
    for name in names:
        value = data[name]
        if not isinstance(value, str) or not value.split():
            raise GrammarDataError(f"{name}: expected words separated by spaces")
        words = value.split()
        seen: set[str] = set()
        for word in words:
            if not _WORD.fullmatch(word):
                raise GrammarDataError(f"{name}: '{word}' is not a lowercase word")
            if word in seen:
                raise GrammarDataError(f"{name}: '{word}' is listed twice")
            seen.add(word)
        lists[name] = tuple(words)
    return Grammar(
        not_names=frozenset(lists["not_names"]), relations=lists["relations"],
        speaker_roles=frozenset(lists["speaker_roles"]), after_title=frozenset(lists["after_title"]),
        not_facility=frozenset(lists["not_facility"]), not_places=frozenset(lists["not_places"]),
        name_connectors=frozenset(lists["name_connectors"]), function_words=frozenset(lists["function_words"]))
