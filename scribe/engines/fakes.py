"""Hand-written fakes with the adapters' signatures; they record ``.calls``.

For fast unit tests and for running the UI without weights (``SCRIBE_ENGINES=fake``).
They never stand in for the real path in what an issue asks to show."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

from scribe.domain.redaction import (
    KnownIdentifier,
    Span,
    SurrogateMap,
    apply_surrogates,
    find_known,
    merge_spans,
)
from scribe.domain.transcript import (
    Segment,
    TranscriptResult,
    model_line,
    parse_plain_transcript,
)
from scribe.engines.prompts import NOT_DISCUSSED
from scribe.engines.protocols import (
    Audio,
    Deadline,
    DigestResult,
    DraftResult,
    PseudonymizedTranscript,
    SectionRequest,
    VoiceHints,
)

SAMPLE_LINES = """CLINICIAN: Welcome back. How has your week been?
CLIENT: It was stressful at work but I slept better, about seven hours most nights.
CLINICIAN: Have you had any thoughts of hurting yourself?
CLIENT: No, none at all.
CLINICIAN: Let's keep practicing the breathing exercise every morning and meet next week."""


class FakeTranscriber:
    """Returns the transcript in ``AUDIO.txt`` beside the audio, or a fixed sample (one line per
    five seconds). A live window (samples from the middle of a recording, or with no file behind
    them) gets the lines that fall within it, timed from its start."""

    name = "fake-transcriber"

    def __init__(self, *, fail_with: Exception | None = None, cost_seconds: float = 0.0) -> None:
        self.calls: list[Path] = []
        self.fail_with = fail_with
        self.cost_seconds = cost_seconds  # a fixed cost per call (benchmarks of the queue, crash tests)

    def transcribe(self, audio: Audio, deadline: Deadline | None = None, *, context: str = "",
                   progress: Callable[[float], None] | None = None) -> TranscriptResult:
        path = Path(audio.source)
        self.calls.append(path)
        if self.fail_with is not None:
            raise self.fail_with
        time.sleep(self.cost_seconds)
        if deadline is not None:
            deadline.check()
        sidecar = Path(str(path) + ".txt")
        text = sidecar.read_text() if sidecar.exists() else SAMPLE_LINES
        segments = parse_plain_transcript(text)
        if progress is not None:
            progress(1.0)
        if audio.offset > 0 or not audio.source:  # a window of a recording: the lines within it
            a, b = audio.offset, audio.offset + audio.seconds
            inside = [x for x in segments if x.start >= a and x.end <= b]
            segments = tuple(Segment(i, x.start - a, x.end - a, x.text, x.speaker) for i, x in enumerate(inside))
            return TranscriptResult(segments=segments, duration=audio.seconds)
        return TranscriptResult(segments=segments, duration=segments[-1].end if segments else 0.0)


class FakeVoices:
    """Keeps the scripted transcript's labels; an enrolled voice is a vector made from the
    sample's bytes (the same sample, the same voice), so the enrolment page runs without weights."""

    name = "fake-voices"

    def __init__(self) -> None:
        self.calls: list[VoiceHints] = []

    def label(self, samples: object, segments: tuple[Segment, ...], hints: VoiceHints,
              channels: object = None) -> tuple[Segment, ...]:
        self.calls.append(hints)
        return segments

    def label_window(self, samples: object, segments: tuple[Segment, ...], hints: VoiceHints,
                     state: dict[str, object], offset: float) -> tuple[tuple[Segment, ...], dict[str, object]]:
        self.calls.append(hints)
        return segments, {"windows": int(state.get("windows", 0)) + 1}  # type: ignore[call-overload]

    def enrol(self, samples: object) -> tuple[float, ...]:
        import hashlib

        import numpy as np

        data = np.asarray(samples, dtype=np.float32)
        if len(data) < 16000:
            raise ValueError("too little speech in the sample: record at least ten seconds of talking")
        seed = hashlib.sha256(data.tobytes()).digest()
        v = np.frombuffer(seed * 32, dtype=np.uint8)[:256].astype(np.float64) + 1.0
        return tuple(float(x) for x in v / np.linalg.norm(v))


_PATTERNS = [
    ("EMAIL_ADDRESS", re.compile(r"\b[\w.+-]+@[\w-]+\.[\w.]+\b")),
    ("PHONE_NUMBER", re.compile(r"\b\d{3}[-. ]\d{3}[-. ]\d{4}\b")),
    ("US_SSN", re.compile(r"\b\d{3}-\d{2}-\d{4}\b")),
]


class FakeRedactor:
    """Chart-known identifiers plus a few regexes; no NER model."""

    name = "fake-redactor"

    def __init__(self, *, fail_with: Exception | None = None) -> None:
        self.calls: list[tuple[tuple[Segment, ...], list[KnownIdentifier]]] = []
        self.fail_with = fail_with

    def pseudonymize(
        self, segments: tuple[Segment, ...], known: list[KnownIdentifier], surrogates: SurrogateMap | None = None
    ) -> PseudonymizedTranscript:
        self.calls.append((segments, known))
        if self.fail_with is not None:
            raise self.fail_with
        surrogates = surrogates or SurrogateMap()
        counts: dict[str, int] = {}
        out = []
        for seg in segments:
            spans = find_known(seg.text, known)
            for entity, pattern in _PATTERNS:
                spans += [Span(m.start(), m.end(), entity, 0.9, "pattern") for m in pattern.finditer(seg.text)]
            spans = merge_spans(spans, seg.text)
            for s in spans:
                counts[s.entity] = counts.get(s.entity, 0) + 1
            text = apply_surrogates(seg.text, spans, surrogates)
            out.append(Segment(seg.index, seg.start, seg.end, text, seg.speaker, ()))
        return PseudonymizedTranscript(
            lines=tuple(model_line(s) for s in out), segments=tuple(out), surrogates=surrogates,
            entity_counts=counts, _by_redactor=True)


class FakeDrafter:
    """Builds each section from what the client and clinician said (deterministic)."""

    name = "fake-drafter"
    leaves_host = False
    digests = True

    def __init__(self, *, fail_with: Exception | None = None, extra_sentence: str | None = None,
                 cost_seconds: float = 0.0) -> None:
        self.calls: list[tuple[PseudonymizedTranscript, str, list[SectionRequest]]] = []
        self.earlier: list[tuple[str, ...]] = []  # the notes each draft was given
        self.digested: list[PseudonymizedTranscript] = []  # each part notes were taken on
        self.fail_with = fail_with
        self.cost_seconds = cost_seconds
        self.extra_sentence = extra_sentence

    def digest(self, part: PseudonymizedTranscript, deadline: Deadline | None = None) -> DigestResult:
        """One line per turn of the part, as '- The client said: ...' (deterministic)."""
        self.digested.append(part)
        if self.fail_with is not None:
            raise self.fail_with
        lines = [f"- The {'client' if s.speaker.is_client else 'clinician'} said: {s.text}" for s in part.segments]
        return DigestResult("\n".join(lines), len(part.text.split()), sum(len(x.split()) for x in lines), 0.0)

    def draft(self, transcript: PseudonymizedTranscript, note_name: str, sections: list[SectionRequest],
              deadline: Deadline | None = None, earlier: tuple[str, ...] = ()) -> DraftResult:
        self.calls.append((transcript, note_name, sections))
        self.earlier.append(earlier)
        if self.fail_with is not None:
            raise self.fail_with
        time.sleep(self.cost_seconds)
        if deadline is not None:
            deadline.check()
        started = time.perf_counter()
        client = [s.text for s in transcript.segments if s.speaker.is_client]
        clinician = [s.text for s in transcript.segments if not s.speaker.is_client]
        out: dict[str, str] = {}
        for i, section in enumerate(sections):
            source = client if i % 2 == 0 else clinician
            picked = source[i // 2 : i // 2 + 1] or source[:1]
            text = " ".join(f"The client said: {p}" if source is client else f"The clinician said: {p}" for p in picked)
            out[section.key] = text or NOT_DISCUSSED
        if self.extra_sentence and sections:
            out[sections[0].key] += " " + self.extra_sentence
        tokens = sum(len(t.split()) for t in out.values())
        return DraftResult(out, self.name, len(transcript.text.split()), tokens, time.perf_counter() - started)
