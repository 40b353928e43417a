"""Pseudonymization as pure functions: spans in, consistent surrogates out.

A surrogate looks like ``[PERSON_1]``: unambiguous for re-identification and
copied verbatim by small models far more reliably than invented names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from scribe.domain.months import MONTHS

_SURROGATE_RE = re.compile(r"\[([A-Z][A-Z_]*?)(?:_(\d+))?\]")


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    entity: str
    score: float
    source: str  # "chart" | "presidio" | "notes" (the notes model) | "pattern"
    key: str | None = None  # for chart identifiers: which chart item it is (same key, same surrogate)


# No pattern ever reads a line longer than this. The patterns are linear or close to it
# (tests/domain/test_pattern_budget.py), and this bounds what is left: a pasted 500 kB line
# is read as pieces, cut at a space where there is one. Text of ordinary lines, however long
# in all, is read whole (cutting it would change what the NER model sees).
MAX_PIECE = 2000


def pieces(text: str, limit: int = MAX_PIECE) -> list[tuple[int, str]]:
    """``text`` as (offset, piece): whole unless a line is longer than ``limit``; such a line
    is cut into pieces of at most ``limit`` characters (at the last space in reach, else
    hard), and the text around it stays in pieces of whole lines."""
    out: list[tuple[int, str]] = []
    start = pos = 0
    for line in text.splitlines(keepends=True):
        if len(line) > limit:
            if pos > start:
                out.append((start, text[start:pos]))
            cut_from = pos
            while len(line) - (cut_from - pos) > limit:
                window = text[cut_from:cut_from + limit]
                space = max(window.rfind(" "), window.rfind("\t"))
                end = cut_from + (space + 1 if space > 0 else limit)
                out.append((cut_from, text[cut_from:end]))
                cut_from = end
            out.append((cut_from, text[cut_from:pos + len(line)]))
            start = pos + len(line)
        pos += len(line)
    if start < len(text) or not out:
        out.append((start, text[start:]))
    return out


# What the redactor can find, under the names a practice's redaction policy uses for them. A
# policy naming anything else is refused when it loads: a typo must never switch an entity off.
ENTITY_TYPES = frozenset({
    "PERSON", "LOCATION", "ORGANIZATION", "NRP", "ADDRESS", "ZIP_CODE", "DATE", "DATE_TIME", "AGE",
    "PHONE_NUMBER", "EMAIL_ADDRESS", "URL", "IP_ADDRESS", "US_SSN", "US_ITIN", "US_DRIVER_LICENSE",
    "US_PASSPORT", "US_BANK_NUMBER", "CREDIT_CARD", "IBAN_CODE", "CRYPTO", "MEDICAL_LICENSE", "MRN",
    "MEMBER_ID", "NPI", "LICENSE_PLATE", "ID_NUMBER",
})


@dataclass(frozen=True)
class KnownIdentifier:
    """An identifier the chart already knows, with the surrogate key it maps to."""

    text: str
    entity: str
    key: str


@dataclass
class SurrogateMap:
    """Consistent surrogates for one session; ``reverse`` is the re-identification map."""

    forward: dict[str, str] = field(default_factory=dict)
    reverse: dict[str, str] = field(default_factory=dict)
    counters: dict[str, int] = field(default_factory=dict)

    def surrogate_for(self, entity: str, original: str, key: str | None = None) -> str:
        ident = key or f"{entity}:{_normalise(original)}"
        if ident in self.forward:
            return self.forward[ident]
        label = _label_for(entity, key)
        if key and key in _FIXED_LABELS:
            surrogate = f"[{_FIXED_LABELS[key]}]"
        else:
            self.counters[label] = self.counters.get(label, 0) + 1
            surrogate = f"[{label}_{self.counters[label]}]"
        self.forward[ident] = surrogate
        self.reverse.setdefault(surrogate, original)
        return surrogate

    def to_json(self) -> dict[str, object]:
        return {"forward": self.forward, "reverse": self.reverse, "counters": self.counters}

    @classmethod
    def from_json(cls, data: dict[str, object]) -> SurrogateMap:
        def part(key: str) -> dict[str, Any]:
            value = data.get(key, {})
            return dict(value) if isinstance(value, dict) else {}

        return cls(forward=part("forward"), reverse=part("reverse"), counters=part("counters"))


# Chart items that always get the same readable surrogate.
_FIXED_LABELS = {"client.name": "CLIENT", "clinician.name": "CLINICIAN", "practice.name": "PRACTICE"}

_LABELS = {
    "PERSON": "PERSON",
    "DATE_TIME": "DATE",
    "DATE": "DATE",
    "PHONE_NUMBER": "PHONE",
    "EMAIL_ADDRESS": "EMAIL",
    "US_SSN": "SSN",
    "LOCATION": "LOCATION",
    "ADDRESS": "ADDRESS",
    "MRN": "MRN",
    "ORGANIZATION": "ORG",
    "URL": "URL",
    "IP_ADDRESS": "IP",
    "AGE": "AGE",
}


def _label_for(entity: str, key: str | None) -> str:
    if key and key.startswith("contact") and entity == "PERSON":
        return "RELATIVE"
    return _LABELS.get(entity, re.sub(r"[^A-Z]", "_", entity.upper()) or "ID")


def _normalise(text: str) -> str:
    text = re.sub(r"['’]s$", "", text.strip().lower())
    return re.sub(r"\s+", " ", text)


def merge_spans(spans: list[Span], text: str | None = None) -> list[Span]:
    """Resolve overlaps: chart identifiers win, then the longer span, then the higher score
    (an email found whole beats the domain found inside it). A span that only partly overlaps
    a winner is not dropped: what lies outside the winner stays, as its own span ("830-650-"
    of a phone number that a wrongly read "2352 Home 301" overlaps), so an overlap never leaves
    part of an identifier in the text. With ``text``, a leftover of fewer than two letters or
    digits is let go: punctuation, or the possessive "s" of a name the chart matched without
    it, says nothing about anyone."""
    ordered = sorted(spans, key=lambda s: (s.source != "chart", -(s.end - s.start), -s.score))
    chosen: list[Span] = []
    for span in ordered:
        for start, end in _outside(span.start, span.end, chosen):
            if text is None or sum(ch.isalnum() for ch in text[start:end]) >= 2:
                chosen.append(Span(start, end, span.entity, span.score, span.source, span.key))
    return sorted(chosen, key=lambda s: s.start)


def _outside(start: int, end: int, chosen: list[Span]) -> list[tuple[int, int]]:
    """The parts of [start, end) that no chosen span covers."""
    pieces = [(start, end)]
    for c in chosen:
        if c.end <= start or c.start >= end:
            continue
        pieces = [part for a, b in pieces for part in ((a, min(b, c.start)), (max(a, c.end), b)) if part[0] < part[1]]
    return pieces


def apply_surrogates(text: str, spans: list[Span], surrogates: SurrogateMap) -> str:
    """Replace each span by its surrogate (spans must not overlap)."""
    out: list[str] = []
    pos = 0
    for span in sorted(spans, key=lambda s: s.start):
        out.append(text[pos : span.start])
        original = text[span.start : span.end]
        out.append(surrogates.surrogate_for(span.entity, original, span.key))
        pos = span.end
    out.append(text[pos:])
    return "".join(out)


def reidentify(text: str, reverse: dict[str, str]) -> str:
    """Put the original identifiers back for the clinician (host only)."""

    def swap(match: re.Match[str]) -> str:
        return reverse.get(match.group(0), match.group(0))

    return _SURROGATE_RE.sub(swap, text)


def find_known(text: str, known: list[KnownIdentifier]) -> list[Span]:
    """Find chart-known identifiers: case-insensitive, whole words, possessives included,
    flexible spacing and punctuation inside numbers."""
    return KnownMatcher.of(known).find(text)


@dataclass(frozen=True)
class KnownMatcher:
    """A chart's identifiers compiled once for all the segments of one transcript (and
    dropped with it: nothing identifying is kept between sessions)."""

    patterns: tuple[tuple[re.Pattern[str], KnownIdentifier], ...]

    @classmethod
    def of(cls, known: list[KnownIdentifier]) -> KnownMatcher:
        compiled = ((_known_pattern(item.text), item) for item in known)
        return cls(tuple((p, item) for p, item in compiled if p is not None))

    def find(self, text: str) -> list[Span]:
        return [Span(m.start(), m.end(), item.entity, 1.0, "chart", item.key)
                for pattern, item in self.patterns for m in pattern.finditer(text)]


def _known_pattern(value: str) -> re.Pattern[str] | None:
    value = value.strip()
    if len(value) < 2:
        return None
    digits = re.sub(r"\D", "", value)
    if digits and len(digits) >= 5 and len(digits) >= len(re.sub(r"\s", "", value)) - 3:
        # Phone numbers, MRNs, SSNs: any separators between the digits.
        body = r"[\s\-\.\(\)/–]*".join(re.escape(d) for d in digits)
        return re.compile(rf"(?<![\w]){body}(?![\w])", re.IGNORECASE)
    words = [re.escape(w) for w in re.split(r"[\s,]+", value) if w]
    body = r"[\s,\-]+".join(words)
    # possessives: "maya's", and as speech recognition writes them, "mayas" (the s stays outside)
    return re.compile(rf"(?<![\w]){body}(?:['’]s)?(?=s?(?![\w]))", re.IGNORECASE)




def date_renderings(d: date) -> list[str]:
    """Written forms of a date that a chart-known date of birth must match."""
    month = MONTHS[d.month - 1]
    return [
        d.isoformat(),
        f"{d.month}/{d.day}/{d.year}",
        f"{d.month:02d}/{d.day:02d}/{d.year}",
        f"{d.month}-{d.day}-{d.year}",
        f"{month} {d.day}, {d.year}",
        f"{month} {d.day} {d.year}",
        f"{d.day} {month} {d.year}",
        f"{month} {_ordinal(d.day)}, {d.year}",
        f"{month} {_ordinal(d.day)} {d.year}",
    ]


def _ordinal(n: int) -> str:
    suffix = "th" if 11 <= n % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"
