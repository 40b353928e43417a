"""Notes taken on a long session as it goes, so the drafting model never reads it whole.

A long transcript is cut into parts of about ``part_chars`` characters, in order. Each part gets
a digest: the facts the model took from that part's pseudonymized lines. The note's sections are
then written from the digests and the last stretch of the transcript, which stays verbatim (it
is shorter than a part). While a session is recorded, the live job digests each part as soon as
it is whole; what is left for the end is the last stretch and any part not yet digested.

A digest is kept only for the exact words it was made from: the part's start and end time and
a hash of its pseudonymized words (the speaker labels the live job had are not in the hash, so
the whole-recording labelling at the end does not throw digests away). A part whose words
differ at the end is digested again. Digests are a reading aid for the model and never the
evidence: every sentence of the draft is still checked against the transcript's segments."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from scribe.domain.transcript import Segment

PART_CHARS = 2000  # about three minutes of talk, about 1,200 tokens with the line heads
TIME_SLACK = 0.01  # seconds: a part's ends are segment ends, stored as floats


@dataclass(frozen=True)
class Digest:
    """The notes taken on one part (its text is clinical: stored sealed)."""

    start: float
    end: float
    sha256: str
    text: str
    model: str

    def to_json(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end, "sha256": self.sha256, "text": self.text, "model": self.model}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Digest:
        return cls(float(data["start"]), float(data["end"]), str(data["sha256"]), str(data["text"]),
                   str(data.get("model", "")))


@dataclass(frozen=True)
class Part:
    """Segments ``first``..``last`` (positions in the transcript), and the digest already made
    from exactly these words, if any."""

    first: int
    last: int
    digest: Digest | None = None


@dataclass(frozen=True)
class Plan:
    parts: tuple[Part, ...]  # digested or to digest, in order
    tail: int  # the position where the verbatim last stretch starts


def fingerprint(segments: tuple[Segment, ...]) -> str:
    """The hash of a part's words, whitespace and speakers aside."""
    words = " ".join(" ".join(x.text.split()) for x in segments)
    return hashlib.sha256(words.encode()).hexdigest()


def plan(segments: tuple[Segment, ...], digests: tuple[Digest, ...], *, part_chars: int = PART_CHARS) -> Plan:
    """Which parts a transcript is read in. From the start: where a stored digest begins and ends
    on segment boundaries, the part is its span (its notes used if its words still match, noted
    again if not); elsewhere a new part is closed once it holds ``part_chars``.
    What follows the last whole part is the tail. A transcript shorter than two parts has no
    parts at all: it is short enough to read whole."""
    if sum(len(x.text) for x in segments) < 2 * part_chars:
        return Plan((), 0)
    parts: list[Part] = []
    pos = 0
    while pos < len(segments):
        reused = _stored_part(segments, pos, digests)
        if reused is not None:
            parts.append(reused)
            pos = reused.last + 1
            continue
        size, end = 0, pos
        while end < len(segments) and size < part_chars:
            size += len(segments[end].text)
            end += 1
        if size < part_chars:
            break  # not whole yet: the tail
        parts.append(Part(pos, end - 1))
        pos = end
    return Plan(tuple(parts), pos)


def _stored_part(segments: tuple[Segment, ...], pos: int, digests: tuple[Digest, ...]) -> Part | None:
    start = segments[pos].start
    for d in digests:
        if abs(d.start - start) > TIME_SLACK:
            continue
        for last in range(pos, len(segments)):
            if abs(segments[last].end - d.end) <= TIME_SLACK:
                # Words that differ are noted again, over the same span: the parts after it
                # keep their boundaries, and so their notes.
                return Part(pos, last, d if fingerprint(segments[pos:last + 1]) == d.sha256 else None)
            if segments[last].end > d.end + TIME_SLACK:
                break
    return None
