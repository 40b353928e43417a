"""Transcript values: our own dataclasses, converted from engine results at the boundary."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Speaker(StrEnum):
    CLINICIAN = "clinician"
    CLIENT = "client"
    # A couple's or a family's session: the second, third and fourth client voice.
    CLIENT_2 = "client_2"
    CLIENT_3 = "client_3"
    CLIENT_4 = "client_4"
    UNKNOWN = "unknown"

    @property
    def is_client(self) -> bool:
        return self in CLIENT_VOICES

    @property
    def label(self) -> str:
        """How the page and the drafting model name the voice."""
        return {Speaker.CLINICIAN: "CLINICIAN", Speaker.UNKNOWN: "SPEAKER"}.get(
            self, self.value.upper().replace("_", " "))


CLIENT_VOICES = (Speaker.CLIENT, Speaker.CLIENT_2, Speaker.CLIENT_3, Speaker.CLIENT_4)


@dataclass(frozen=True)
class Word:
    start: float
    end: float
    text: str
    probability: float = 1.0


@dataclass(frozen=True)
class Segment:
    index: int
    start: float
    end: float
    text: str
    speaker: Speaker = Speaker.UNKNOWN
    words: tuple[Word, ...] = field(default_factory=tuple)

    def with_speaker(self, speaker: Speaker) -> Segment:
        return Segment(self.index, self.start, self.end, self.text, speaker, self.words)

    def shifted(self, by: float) -> Segment:
        """The same segment ``by`` seconds later (a window's times made the recording's)."""
        return Segment(self.index, self.start + by, self.end + by, self.text, self.speaker,
                       tuple(Word(w.start + by, w.end + by, w.text, w.probability) for w in self.words))

    def to_json(self) -> dict[str, object]:
        return {
            "index": self.index,
            "start": round(self.start, 2),
            "end": round(self.end, 2),
            "speaker": self.speaker.value,
            "text": self.text,
        }


@dataclass(frozen=True)
class TranscriptResult:
    """What a transcriber returns: time-ordered segments plus the audio duration."""

    segments: tuple[Segment, ...]
    duration: float
    language: str = "en"


def format_timestamp(seconds: float) -> str:
    total = int(seconds)
    return f"{total // 60:02d}:{total % 60:02d}"


def parse_plain_transcript(text: str) -> tuple[Segment, ...]:
    """Parse ``SPEAKER: text`` lines (CLINICIAN/THERAPIST/D vs CLIENT/PATIENT/P).

    Plain-text transcripts have no times, so each line gets a nominal 5-second slot.
    """
    clinician = {"clinician", "therapist", "counselor", "doctor", "d", "t", "supervisor"}
    client = {"client", "patient", "p", "c", "supervisee"}
    segments: list[Segment] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        speaker = Speaker.UNKNOWN
        head, sep, rest = line.partition(":")
        if sep and len(head) <= 20:
            key = head.strip().lower()
            if key in clinician:
                speaker, line = Speaker.CLINICIAN, rest.strip()
            elif key in client:
                speaker, line = Speaker.CLIENT, rest.strip()
        if not line:
            continue
        i = len(segments)
        segments.append(Segment(i, i * 5.0, i * 5.0 + 5.0, line, speaker))
    return tuple(segments)


def model_line(segment: Segment) -> str:
    """How a segment is shown to the drafting model: speaker and text. Evidence is aligned
    by our own code afterwards, so ids and times would only be echoed by small models."""
    return f"{segment.speaker.label}: {segment.text}"
