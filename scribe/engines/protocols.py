"""The engine interfaces services depend on."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from scribe.domain.errors import StageTimedOut
from scribe.domain.redaction import KnownIdentifier, SurrogateMap
from scribe.domain.transcript import Segment, TranscriptResult


@dataclass(frozen=True)
class Deadline:
    """When a stage must be done by (a monotonic time). Engines that work in steps check it
    between steps; the pipeline checks it again when the stage returns."""

    at: float
    stage: str
    seconds: float

    @classmethod
    def after(cls, seconds: float, stage: str) -> Deadline:
        return cls(time.monotonic() + seconds, stage, seconds)

    def remaining(self) -> float:
        return self.at - time.monotonic()

    def check(self) -> None:
        if time.monotonic() > self.at:
            raise StageTimedOut(self.stage, self.seconds)


@dataclass(frozen=True)
class Audio:
    """A decoded recording: 16 kHz mono float32 samples (a NumPy array) and their length.
    Containers are parsed only by a Decoder, in its sandbox; transcribers get samples."""

    samples: Any
    seconds: float
    source: str = ""  # the stored file's name, for logs by id and the fake's sidecar
    channels: Any = None  # a stereo recording's two sides (2 x n float32), else None
    offset: float = 0.0  # where these samples start in the recording (a live window: > 0)


class Decoder(Protocol):
    name: str

    def probe(self, data: bytes, *, max_seconds: float) -> float:
        """Seconds of audio the container decodes to (counted, not read from its header);
        InvalidInput when it is not usable audio or longer than ``max_seconds``."""
        ...

    def pcm_after(self, head: bytes, tail: bytes, *, max_seconds: float) -> Audio:
        """The audio of a later stretch of a stream recording (its first piece, then pieces from
        a later one on), with ``offset`` where it starts in the recording."""
        ...

    def pcm(self, data: bytes, *, max_seconds: float, source: str = "") -> Audio:
        """The decoded samples, under the same checks as ``probe``."""
        ...


class Transcriber(Protocol):
    name: str

    def transcribe(self, audio: Audio, deadline: Deadline | None = None, *, context: str = "",
                   progress: Callable[[float], None] | None = None) -> TranscriptResult:
        """Transcribe decoded audio into time-ordered segments (times from the samples' start;
        speaker turns come from Voices). ``context``: the text just before this audio (a live
        window's prompt); ``progress`` is called with the share of the audio done."""
        ...


@dataclass(frozen=True)
class PseudonymizedTranscript:
    """What the drafting model may see. Only a Redactor builds one (``_by_redactor``)."""

    lines: tuple[str, ...]  # one per segment: "[S3 01:02] CLIENT: text"
    segments: tuple[Segment, ...]  # the same segments with identifiers replaced
    surrogates: SurrogateMap
    entity_counts: dict[str, int]
    _by_redactor: bool = field(default=False, repr=False)
    part2: bool = False  # from a 42 CFR Part 2 session: leaves the host only with consent and the notice
    part2_consent: bool = False
    part2_basis: str = ""  # the consent's terms (or the QSO agreement) that travel with a Part 2 disclosure

    def __post_init__(self) -> None:
        if not self._by_redactor:
            raise TypeError("PseudonymizedTranscript is built only by a Redactor")

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    @classmethod
    def restore(
        cls, lines: tuple[str, ...], segments: tuple[Segment, ...], surrogates: SurrogateMap, entity_counts: dict[str, int]
    ) -> PseudonymizedTranscript:
        """Rebuild what a Redactor produced and the pipeline stored (the only other constructor)."""
        return cls(lines, segments, surrogates, entity_counts, _by_redactor=True)


class Redactor(Protocol):
    name: str

    def pseudonymize(
        self, segments: tuple[Segment, ...], known: list[KnownIdentifier], surrogates: SurrogateMap | None = None
    ) -> PseudonymizedTranscript:
        """Replace every identifier (chart-known first) with consistent surrogates."""
        ...


@dataclass(frozen=True)
class SectionRequest:
    key: str
    title: str
    instruction: str
    max_sentences: int


@dataclass(frozen=True)
class DraftResult:
    sections: dict[str, str]
    model: str
    prompt_tokens: int
    generated_tokens: int
    seconds: float


@dataclass(frozen=True)
class DigestResult:
    """The notes a drafter took on one part of a long session."""

    text: str
    prompt_tokens: int
    generated_tokens: int
    seconds: float


class Drafter(Protocol):
    name: str
    leaves_host: bool  # sends the transcript off this server (through the egress gateway)
    digests: bool  # takes notes on a long session part by part (scribe.domain.digest)

    def draft(self, transcript: PseudonymizedTranscript, note_name: str, sections: list[SectionRequest],
              deadline: Deadline | None = None, earlier: tuple[str, ...] = ()) -> DraftResult:
        """Draft each section from the pseudonymized transcript (read once, section by section).
        ``earlier``: the notes taken on the parts before it, when it is a long session's last stretch."""
        ...

    def digest(self, part: PseudonymizedTranscript, deadline: Deadline | None = None) -> DigestResult:
        """The facts stated in one part of a long session, one per line."""
        ...


@dataclass(frozen=True)
class VoiceHints:
    """What a session knows about its voices: how many people speak, the clinician's enrolled
    voice (a unit vector) if they recorded one, and the practice's rule for when there is none."""

    speakers: int = 2
    clinician_voice: tuple[float, ...] | None = None
    clinician_first: bool = True


class Voices(Protocol):
    """Speaker turns: labels every word of a transcript with a voice."""

    name: str

    def label(self, samples: Any, segments: tuple[Segment, ...], hints: VoiceHints,
              channels: Any = None) -> tuple[Segment, ...]:
        """The segments split into turns where the voice changes, each labelled. ``channels``
        (2 x n samples) when the recording is stereo."""
        ...

    def enrol(self, samples: Any) -> tuple[float, ...]:
        """A voice from a short sample of one person talking (ValueError: too little speech)."""
        ...

    def label_window(self, samples: Any, segments: tuple[Segment, ...], hints: VoiceHints,
                     state: dict[str, Any], offset: float) -> tuple[tuple[Segment, ...], dict[str, Any]]:
        """Provisional labels for one live window, steady across windows through ``state``."""
        ...


@dataclass
class Engines:
    transcriber: Transcriber
    redactor: Redactor
    drafter: Drafter
    # None: the transcriber's own labels are kept (the fakes' scripted transcripts).
    voices: Voices | None = None
