"""The redactor's regular expressions as data (policies/vocabulary/patterns.yaml), checked
when they are read: each compiles once its fragments are put in, names a known entity and an
existing group, finds every example it lists and misses every counter-example. A rule that
stopped matching what its own file says it matches is an error at start, not a missed name in
a note. Pure: the policy loader reads the file and hands the parsed mapping here."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from scribe.domain.months import FULL_MONTH_PATTERN, MONTH_PATTERN

# What a pattern may emit: identifiers with a shape. Names, places and organisations come from
# the model and the word-list rules, never from a bare regular expression.
PATTERN_ENTITIES = frozenset({"ADDRESS", "DATE", "PHONE_NUMBER", "ZIP_CODE", "MRN", "MEMBER_ID", "NPI",
                              "LICENSE_PLATE", "AGE", "URL", "IP_ADDRESS", "ID_NUMBER", "EMAIL_ADDRESS"})
BUILT_IN = {"MONTH": MONTH_PATTERN, "FULL_MONTH": FULL_MONTH_PATTERN}
_PLACEHOLDER = re.compile(r"<<([A-Z_]+)>>")
_NEVER = re.compile(r"(?!)")


class PatternDataError(ValueError):
    """The pattern data is wrong; the message says where (the loader adds the file)."""


@dataclass(frozen=True)
class PatternRule:
    entity: str
    pattern: re.Pattern[str]
    group: int = 0


@dataclass(frozen=True)
class PatternTable:
    rules: tuple[PatternRule, ...] = ()
    # the last word of a street's name: an address pattern's find that holds a clinical word is
    # refused unless that word is one of these ("Lexapro 10" no, "12 Clinic Road" yes)
    street_suffix: re.Pattern[str] = field(default=_NEVER)

    @property
    def entities(self) -> frozenset[str]:
        return frozenset(r.entity for r in self.rules)

    def find(self, text: str) -> Iterator[tuple[int, int, str]]:
        for rule in self.rules:
            for m in rule.pattern.finditer(text):
                yield m.start(rule.group), m.end(rule.group), rule.entity


NO_PATTERNS = PatternTable()  # a lexicon made by hand in a test; the redactor refuses to run on it


def _text(value: object, where: str) -> str:
    """A regular expression given as one string or as a list of pieces joined without spaces."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and value and all(isinstance(x, str) for x in value):
        return "".join(value)
    raise PatternDataError(f"{where}: give a string, or a list of strings joined as one")


def _words(value: object, where: str) -> list[str]:
    if not isinstance(value, list) or not value or not all(isinstance(x, str) and x for x in value):
        raise PatternDataError(f"{where}: give a list of words")
    seen: set[str] = set()
    for w in value:
        if w in seen:
            raise PatternDataError(f"{where}: '{w}' is listed twice")
        seen.add(w)
    return list(value)


def _fragment(name: str, spec: object) -> str:
    where = f"fragments.{name}"
    if not isinstance(spec, Mapping):
        raise PatternDataError(f"{where}: give any_of, regex, or ending_in")
    if "any_of" in spec:
        return "|".join(_words(spec["any_of"], f"{where}.any_of"))
    if "regex" in spec:
        return _text(spec["regex"], f"{where}.regex")
    if "ending_in" in spec:
        # A word taken whole (possessive), then its end checked against each ending by a
        # fixed-width lookbehind: backtracking through the word once per ending was quadratic.
        start = _text(spec.get("word_from", r"\w"), f"{where}.word_from")
        ends = [rf"(?<=[\w'-]{x})" for x in sorted(set(_words(spec["ending_in"], f"{where}.ending_in")))]
        if "abbreviated" in spec:  # written short with a full stop: "str."
            ends += [rf"(?<=[\w'-]{x})\." for x in _words(spec["abbreviated"], f"{where}.abbreviated")]
        return start + r"[\w'-]*+(?:" + "|".join(ends) + ")"
    raise PatternDataError(f"{where}: give any_of, regex, or ending_in")


def _expand(regex: str, fragments: Mapping[str, str], used: set[str], where: str) -> str:
    def put(m: re.Match[str]) -> str:
        name = m.group(1)
        if name not in fragments:
            raise PatternDataError(f"{where}: no fragment <<{name}>> (defined: {', '.join(sorted(fragments))})")
        used.add(name)
        return fragments[name]

    return _PLACEHOLDER.sub(put, regex)


def _check_examples(rule: PatternRule, spec: Mapping[str, object], where: str) -> None:
    finds = spec.get("finds") or []
    misses = spec.get("misses") or []
    if not isinstance(finds, list) or not finds:
        raise PatternDataError(f"{where}.finds: give at least one example the rule finds")
    if not isinstance(misses, list) or not misses:
        raise PatternDataError(f"{where}.misses: give at least one text the rule must not find anything in")
    for n, example in enumerate(finds):
        if not (isinstance(example, Mapping) and isinstance(example.get("in"), str)
                and isinstance(example.get("found"), str)):
            raise PatternDataError(f"{where}.finds[{n}]: give {{in: text, found: what the rule finds in it}}")
        got = [m.group(rule.group) for m in rule.pattern.finditer(example["in"])]
        if example["found"] not in got:
            raise PatternDataError(f"{where}.finds[{n}]: expected to find {example['found']!r} in {example['in']!r}, "
                                   f"found {got}")
    for n, text in enumerate(misses):
        if not isinstance(text, str):
            raise PatternDataError(f"{where}.misses[{n}]: give a text")
        got = [m.group(rule.group) for m in rule.pattern.finditer(text)]
        if got:
            raise PatternDataError(f"{where}.misses[{n}]: expected to find nothing in {text!r}, found {got}")


def parse_pattern_table(data: object, allowed_entities: frozenset[str]) -> PatternTable:
    """The table from its parsed file. ``allowed_entities``: what the redaction policy names;
    a rule for any other entity would never redact anything, so it is refused."""
    if not isinstance(data, Mapping) or data.get("version") != 1:
        raise PatternDataError("version: must be 1")
    raw_fragments = data.get("fragments") or {}
    if not isinstance(raw_fragments, Mapping):
        raise PatternDataError("fragments: give a mapping of NAME: definition")
    fragments = dict(BUILT_IN)
    for name, spec in raw_fragments.items():
        if not re.fullmatch(r"[A-Z_]+", str(name)) or name in BUILT_IN:
            raise PatternDataError(f"fragments.{name}: a fragment's name is CAPITALS, and not one of {sorted(BUILT_IN)}")
        fragments[name] = _fragment(name, spec)
    specs = data.get("patterns")
    if not isinstance(specs, Sequence) or isinstance(specs, str) or not specs:
        raise PatternDataError("patterns: give the list of rules")
    used: set[str] = set()
    rules: list[PatternRule] = []
    for n, spec in enumerate(specs):
        where = f"patterns[{n}]"
        if not isinstance(spec, Mapping):
            raise PatternDataError(f"{where}: give entity, regex, finds and misses")
        entity = spec.get("entity")
        if entity not in PATTERN_ENTITIES:
            raise PatternDataError(f"{where}.entity: {entity!r} is not an entity a pattern finds "
                                   f"({', '.join(sorted(PATTERN_ENTITIES))})")
        if entity not in allowed_entities:
            raise PatternDataError(f"{where}.entity: {entity} is not in redaction.yaml's entities: it would never "
                                   f"be redacted")
        source = _expand(_text(spec.get("regex"), f"{where}.regex"), fragments, used, where)
        try:
            pattern = re.compile(source, re.IGNORECASE if spec.get("ignore_case") else 0)
        except re.error as exc:
            raise PatternDataError(f"{where}.regex: does not compile: {exc}") from None
        group = spec.get("group", 0)
        if not isinstance(group, int) or not 0 <= group <= pattern.groups:
            raise PatternDataError(f"{where}.group: the expression has groups 0..{pattern.groups}")
        rule = PatternRule(str(entity), pattern, group)
        _check_examples(rule, spec, where)
        rules.append(rule)
    unused = set(raw_fragments) - used - {"STREET_SUFFIX"}
    if unused:
        raise PatternDataError(f"fragments: {', '.join(sorted(unused))} defined but never used")
    suffix = fragments.get("STREET_SUFFIX")
    return PatternTable(tuple(rules), re.compile(f"(?:{suffix})", re.IGNORECASE) if suffix else _NEVER)
