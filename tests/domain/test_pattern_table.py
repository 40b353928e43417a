"""The pattern table's own checks, on tables written here (the shipped file's faults are planted
in tests/policies/test_loader.py): each check refuses what it is there for and passes a
well-formed table."""

from __future__ import annotations

from typing import Any

import pytest

from scribe.domain.pattern_table import PATTERN_ENTITIES, PatternDataError, parse_pattern_table


def table(**change: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "version": 1,
        "fragments": {"STREET": {"ending_in": ["weg", "gasse", "weg2"], "word_from": "[A-Z]", "abbreviated": ["str"]}},
        "patterns": [{"entity": "ADDRESS", "regex": [r"\b<<STREET>>", r"\s+\d{1,4}\b"],
                      "finds": [{"in": "lives at Kirchweg 12 now", "found": "Kirchweg 12"}],
                      "misses": ["weg 12", "Kirche 12"]}],
    }
    base.update(change)
    return base


def test_a_well_formed_table_finds_what_it_says() -> None:
    t = parse_pattern_table(table(), PATTERN_ENTITIES)
    assert list(t.find("Gartengasse 4 and Hauptstr. 9")) == [(0, 13, "ADDRESS"), (18, 29, "ADDRESS")]
    assert list(t.find("Hauptstr 9")) == []  # "str" ends a street's word only written short, with its stop
    assert t.entities == {"ADDRESS"}


@pytest.mark.parametrize(("change", "message"), [
    ({"version": 2}, "version: must be 1"),
    ({"fragments": {"MONTH": {"regex": "x"}}}, "not one of"),
    ({"fragments": {"STREET": {"ending_in": ["weg"]}, "UNUSED": {"any_of": ["a"]}}}, "UNUSED defined but never used"),
    ({"fragments": {"STREET": {"ending_in": ["weg", "weg"]}}}, "'weg' is listed twice"),
    ({"fragments": {"STREET": {"words": ["weg"]}}}, "give any_of, regex, or ending_in"),
    ({"patterns": []}, "give the list of rules"),
], ids=["version", "a built-in redefined", "unused fragment", "duplicate word", "unknown fragment kind", "no rules"])
def test_a_malformed_table_is_refused(change: dict[str, Any], message: str) -> None:
    with pytest.raises(PatternDataError, match=message):
        parse_pattern_table(table(**change), PATTERN_ENTITIES)


@pytest.mark.parametrize(("rule", "message"), [
    ({"finds": [{"in": "Kirchweg 12"}]}, r"give \{in: text, found"),
    ({"finds": []}, "at least one example"),
    ({"misses": ["the Kirchweg 12 house"]}, "expected to find nothing"),
    ({"regex": r"\b<<STREET>>\s+(\d+"}, "does not compile"),
    ({"group": 1}, "groups 0..0"),
    ({"entity": "PERSON"}, "not an entity a pattern finds"),
], ids=["example without found", "no examples", "a counter-example found", "no compile", "no such group", "entity"])
def test_a_rule_that_breaks_its_own_promise_is_refused(rule: dict[str, Any], message: str) -> None:
    data = table()
    data["patterns"][0].update(rule)
    with pytest.raises(PatternDataError, match=r"patterns\[0\]"):
        parse_pattern_table(data, PATTERN_ENTITIES)
    with pytest.raises(PatternDataError, match=message):
        parse_pattern_table(data, PATTERN_ENTITIES)


def test_an_entity_the_policy_does_not_name_is_refused() -> None:
    with pytest.raises(PatternDataError, match=r"not in redaction\.yaml's entities"):
        parse_pattern_table(table(), frozenset({"DATE"}))
