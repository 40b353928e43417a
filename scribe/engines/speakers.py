"""Speaker turns from voice embeddings (resemblyzer), labelled per word.

How it works (settings as verified in ../shared/design/MODELS.md):
- the whole recording is normalised in gain only (no silence is cut, so times keep matching
  Whisper's words) and turned into one mel spectrogram;
- 1.6-second windows every 0.8 seconds; a window is voiced when WebRTC's voice detector hears
  speech in at least half of its 30 ms frames; each voiced window gets a 256-dimension voice
  embedding;
- the voiced windows are clustered (k-means) into as many voices as the session has people;
- every Whisper word takes the voice of the voiced window whose centre is nearest its middle,
  and a segment is split where the voice changes, so a turn is never one label per segment;
- which voice is the clinician: the one nearest the clinician's enrolled voice sample when there
  is one, otherwise the practice's rule (the first speaker is the clinician); the other voices
  are clients, the one who talks most first;
- a stereo recording (telehealth: one side per channel) is labelled by its channels where one
  channel is clearly louder over a word, and by voice elsewhere.

The pure parts (clustering aside) take arrays and are tested without the model."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from scribe.domain.errors import ModelMissing
from scribe.domain.transcript import CLIENT_VOICES, Segment, Speaker, Word
from scribe.engines.protocols import VoiceHints

Array = npt.NDArray[np.float32]
RATE = 16000
WINDOW = 1.6  # seconds per embedding window (160 mel frames)
HOP = 0.8
# The voice encoder's weights as resemblyzer 0.1.4 ships them (its package is pinned by hash in
# requirements.lock; the weights are checked again before they are loaded).
WEIGHTS_SHA256 = "39373b86598fa3da9fcddee6142382efe09777e8d37dc9c0561f41f0070f134e"  # pragma: allowlist secret
LOUDER = 4.0  # a channel 6 dB louder than the other over a word says who spoke it
MAX_SPEAKERS = 1 + len(CLIENT_VOICES)


@dataclass(frozen=True)
class Windows:
    centres: npt.NDArray[np.float64]  # seconds
    embeddings: Array  # one row per voiced window
    voiced: npt.NDArray[np.bool_] = field(default_factory=lambda: np.zeros(0, dtype=bool))


class VoiceTurns:
    """The engine: loads resemblyzer's voice encoder once (CPU, 17 MB)."""

    def __init__(self, *, threads: int = 2) -> None:
        try:
            import resemblyzer
            import torch
            from resemblyzer import VoiceEncoder
            from resemblyzer.audio import wav_to_mel_spectrogram
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise ModelMissing("resemblyzer is not installed: make install") from exc
        weights = Path(resemblyzer.__file__).parent / "pretrained.pt"
        if not weights.exists() or hashlib.sha256(weights.read_bytes()).hexdigest() != WEIGHTS_SHA256:
            raise ModelMissing("the voice encoder's weights are missing or not the pinned ones: make install")
        torch.set_num_threads(max(1, threads))
        self._torch = torch
        self._encoder = VoiceEncoder("cpu", verbose=False, weights_fpath=weights)
        self._mel = wav_to_mel_spectrogram
        self.name = "resemblyzer-0.1.4"

    def windows(self, samples: Array) -> Windows:
        wav = _normalise(np.asarray(samples, dtype=np.float32))
        n_windows = max(0, int((len(wav) / RATE - WINDOW) / HOP) + 1)
        if n_windows == 0:
            return Windows(np.zeros(0), np.zeros((0, 256), dtype=np.float32))
        voiced = _voiced_windows(wav, n_windows)
        mel = self._mel(wav)
        frames = int(WINDOW * 100)
        starts = [int(i * HOP * 100) for i in range(n_windows) if voiced[i]]
        batch = np.stack([_frames(mel, a, frames) for a in starts]) if starts else np.zeros((0, frames, 40), np.float32)
        embeddings = np.zeros((0, 256), dtype=np.float32)
        with self._torch.no_grad():
            parts = [self._encoder(self._torch.from_numpy(batch[i:i + 256])).numpy()
                     for i in range(0, len(batch), 256)]
        if parts:
            embeddings = np.concatenate(parts).astype(np.float32)
        centres = np.asarray([i * HOP + WINDOW / 2 for i in range(n_windows) if voiced[i]])
        return Windows(centres, embeddings, voiced)

    def enrol(self, samples: Array) -> tuple[float, ...]:
        """The clinician's voice from a short sample (a unit vector)."""
        found = self.windows(samples)
        if len(found.embeddings) < 3:
            raise ValueError("too little speech in the sample: record at least ten seconds of talking")
        return tuple(float(x) for x in _unit(found.embeddings.mean(axis=0)))

    def label(self, samples: Array, segments: tuple[Segment, ...], hints: VoiceHints,
              channels: Array | None = None) -> tuple[Segment, ...]:
        if not segments:
            return segments
        found = self.windows(samples)
        return label_segments(segments, found, hints, channels=channels)

    def label_window(self, samples: Array, segments: tuple[Segment, ...], hints: VoiceHints,
                     state: dict[str, object], offset: float) -> tuple[tuple[Segment, ...], dict[str, object]]:
        """A live window (its samples start at ``offset`` in the recording; the segments' times
        are the recording's)."""
        found = self.windows(samples)
        found = Windows(found.centres + offset, found.embeddings, found.voiced)
        return label_window(segments, found, hints, state)


# --- pure parts ---------------------------------------------------------------------------


def _normalise(wav: Array, target_dbfs: float = -30.0) -> Array:
    rms = float(np.sqrt(np.mean(wav.astype(np.float64) ** 2))) if len(wav) else 0.0
    if rms <= 1e-8:
        return wav
    gain = float(10 ** ((target_dbfs - 20 * np.log10(rms)) / 20))
    return (wav * gain).astype(np.float32)


def _frames(mel: Array, start: int, n: int) -> Array:
    part = mel[start:start + n]
    if len(part) < n:
        part = np.pad(part, ((0, n - len(part)), (0, 0)))
    return part.astype(np.float32)


def _voiced_windows(wav: Array, n_windows: int) -> npt.NDArray[np.bool_]:
    import webrtcvad

    vad = webrtcvad.Vad(2)
    step = int(RATE * 0.03)
    pcm = (np.clip(wav, -1, 1) * 32767).astype(np.int16)
    speech = np.zeros(len(pcm) // step, dtype=bool)
    for i in range(len(speech)):
        speech[i] = vad.is_speech(pcm[i * step:(i + 1) * step].tobytes(), RATE)
    per_window = int(WINDOW / 0.03)
    out = np.zeros(n_windows, dtype=bool)
    for w in range(n_windows):
        a = int(w * HOP / 0.03)
        out[w] = speech[a:a + per_window].mean() >= 0.5 if a < len(speech) else False
    return out


def _unit(v: npt.NDArray[np.floating]) -> npt.NDArray[np.float64]:
    w: npt.NDArray[np.float64] = np.asarray(v, dtype=np.float64)
    n = float(np.linalg.norm(w))
    return w / n if n > 0 else w


def cluster(embeddings: Array, k: int) -> npt.NDArray[np.int64]:
    """k-means on unit embeddings (deterministic); fewer windows than voices: one each."""
    if len(embeddings) == 0:
        return np.zeros(0, dtype=np.int64)
    k = max(1, min(k, len(embeddings)))
    if k == 1:
        return np.zeros(len(embeddings), dtype=np.int64)
    from sklearn.cluster import KMeans

    model = KMeans(n_clusters=k, n_init=10, random_state=0)
    return np.asarray(model.fit_predict(embeddings.astype(np.float64)), dtype=np.int64)


def smooth(labels: npt.NDArray[np.int64], width: int = 3) -> npt.NDArray[np.int64]:
    """The most common label among each window and its neighbours: a lone window in a turn is
    noise (a cough, an overlap), not a new turn."""
    if len(labels) < width:
        return labels
    half = width // 2
    out = labels.copy()
    for i in range(len(labels)):
        near = labels[max(0, i - half):i + half + 1]
        values, counts = np.unique(near, return_counts=True)
        if counts.max() > 1:
            out[i] = values[np.argmax(counts)]
    return out


def name_voices(labels: npt.NDArray[np.int64], embeddings: Array, hints: VoiceHints,
                first: int) -> dict[int, Speaker]:
    """Which cluster is who. The clinician: nearest the enrolled voice, else the first voice
    heard (when the practice's rule says so; otherwise the first other voice). Clients follow in
    order of how much they talk."""
    voices = sorted({int(x) for x in labels})
    if not voices:
        return {}
    centroids = {v: _unit(embeddings[labels == v].mean(axis=0)) for v in voices}
    if hints.clinician_voice is not None:
        enrolled = _unit(np.asarray(hints.clinician_voice))
        clinician = max(voices, key=lambda v: float(centroids[v] @ enrolled))
    elif hints.clinician_first or len(voices) == 1:
        clinician = first
    else:
        clinician = max((v for v in voices if v != first), key=lambda v: int((labels == v).sum()))
    others = sorted((v for v in voices if v != clinician), key=lambda v: -int((labels == v).sum()))
    names = {clinician: Speaker.CLINICIAN}
    for v, speaker in zip(others, CLIENT_VOICES, strict=False):
        names[v] = speaker
    return names


def nearest(centres: npt.NDArray[np.float64], t: float) -> int:
    i = int(np.searchsorted(centres, t))
    if i <= 0:
        return 0
    if i >= len(centres):
        return len(centres) - 1
    return i if centres[i] - t < t - centres[i - 1] else i - 1


def channel_voice(channels: Array, start: float, end: float) -> int | None:
    """0 or 1 when one channel is clearly louder over [start, end], else None."""
    n = channels.shape[1]
    a = min(int(start * RATE), n)
    b = min(max(int(end * RATE), a + 160), n)
    if b <= a:
        return None
    left, right = (float(np.mean(channels[c, a:b].astype(np.float64) ** 2)) for c in (0, 1))
    if left > LOUDER * right and left > 1e-7:
        return 0
    if right > LOUDER * left and right > 1e-7:
        return 1
    return None


def label_segments(segments: tuple[Segment, ...], found: Windows, hints: VoiceHints, *,
                   channels: Array | None = None) -> tuple[Segment, ...]:
    """Label every word and split segments where the voice changes; segments are renumbered."""
    speakers = max(1, min(hints.speakers, MAX_SPEAKERS))
    labels = smooth(cluster(found.embeddings, speakers))
    names: dict[int, Speaker] = {}
    if len(labels):
        first_word = segments[0].words[0] if segments[0].words else None
        first = int(labels[nearest(found.centres, first_word.start if first_word else segments[0].start)])
        names = name_voices(labels, found.embeddings, hints, first)
    side_names = _channel_names(channels, segments, found, labels, names, hints) if channels is not None else {}

    def voice_at(start: float, end: float) -> Speaker:
        if channels is not None:
            side = channel_voice(channels, start, end)
            if side is not None and side in side_names:
                return side_names[side]
        if not len(labels):
            return Speaker.UNKNOWN
        return names.get(int(labels[nearest(found.centres, (start + end) / 2)]), Speaker.UNKNOWN)

    return split_turns(segments, voice_at)


def split_turns(segments: tuple[Segment, ...], voice_at: Callable[[float, float], Speaker]) -> tuple[Segment, ...]:
    """Every word labelled by ``voice_at(start, end)``; a segment is split where the voice
    changes, and the turns are numbered afresh."""
    out: list[Segment] = []
    for seg in segments:
        words = seg.words or (Word(seg.start, seg.end, seg.text),)
        run: list[Word] = []
        who: Speaker | None = None
        for w in words:
            here = voice_at(w.start, w.end)
            if run and here != who:
                out.append(_turn(len(out), run, who or Speaker.UNKNOWN, seg))
                run = []
            who = here
            run.append(w)
        if run:
            out.append(_turn(len(out), run, who or Speaker.UNKNOWN, seg))
    return tuple(out)


def _turn(index: int, words: list[Word], speaker: Speaker, seg: Segment) -> Segment:
    if not seg.words:
        return Segment(index, seg.start, seg.end, seg.text, speaker)
    text = " ".join(w.text for w in words if w.text).strip()
    return Segment(index, words[0].start, words[-1].end, text, speaker, tuple(words))


def _channel_names(channels: Array, segments: tuple[Segment, ...], found: Windows,
                   labels: npt.NDArray[np.int64], names: dict[int, Speaker],
                   hints: VoiceHints) -> dict[int, Speaker]:
    """Which channel is the clinician: the channel whose clearly-one-sided words the voices
    named the clinician most often (so the enrolment or the rule decides, once)."""
    votes = np.zeros((2, 2))
    first_side: int | None = None
    for seg in segments:
        for w in seg.words or (Word(seg.start, seg.end, seg.text),):
            side = channel_voice(channels, w.start, w.end)
            if side is None:
                continue
            if first_side is None:
                first_side = side
            if len(labels):
                who = names.get(int(labels[nearest(found.centres, (w.start + w.end) / 2)]))
                votes[side, 0 if who == Speaker.CLINICIAN else 1] += 1
    if first_side is None:
        return {}
    if hints.clinician_voice is None and hints.clinician_first:
        clinician_side = first_side
    elif votes.sum() > 0:
        clinician_side = 0 if votes[0, 0] - votes[0, 1] >= votes[1, 0] - votes[1, 1] else 1
    else:
        clinician_side = 1 - first_side
    return {clinician_side: Speaker.CLINICIAN, 1 - clinician_side: Speaker.CLIENT}


# --- live: labels that stay steady from one window to the next ------------------------------

NEW_VOICE = 0.55  # a window further than this (cosine) from every voice so far is a new voice


def label_window(segments: tuple[Segment, ...], found: Windows, hints: VoiceHints,
                 state: dict[str, Any]) -> tuple[tuple[Segment, ...], dict[str, Any]]:
    """Label one live window's words against the voices heard so far (``state``: each voice's
    running centroid), so the same person keeps the same label across windows; the first window
    names its voices as a whole recording would. Returns the labelled segments and the state.
    The labels are provisional: the recording is labelled again as a whole when it ends."""
    voices: list[dict[str, Any]] = [dict(v) for v in state.get("voices", [])]
    emb = found.embeddings
    if not segments or len(emb) == 0:
        return segments, {"voices": voices}
    if not voices:
        k = max(1, min(hints.speakers, MAX_SPEAKERS, len(emb)))
        labels = smooth(cluster(emb, k))
        first_word = segments[0].words[0] if segments[0].words else None
        first = int(labels[nearest(found.centres, first_word.start if first_word else segments[0].start)])
        names = name_voices(labels, emb, hints, first)
        voices = [{"speaker": names[v].value, "centroid": [float(x) for x in _unit(emb[labels == v].mean(axis=0))],
                   "n": int((labels == v).sum())} for v in sorted(names)]
        assigned = np.asarray([next(i for i, x in enumerate(voices) if x["speaker"] == names[int(v)].value)
                               for v in labels], dtype=np.int64)
    else:
        assigned = np.zeros(len(emb), dtype=np.int64)
        for i, e in enumerate(emb):
            sims = [float(np.asarray(v["centroid"]) @ _unit(e)) for v in voices]
            best = int(np.argmax(sims))
            if sims[best] < NEW_VOICE and len(voices) < max(1, min(hints.speakers, MAX_SPEAKERS)):
                taken = {v["speaker"] for v in voices}
                free = next((x.value for x in (Speaker.CLINICIAN, *CLIENT_VOICES) if x.value not in taken), None)
                if free is not None:
                    voices.append({"speaker": free, "centroid": [float(x) for x in _unit(e)], "n": 0})
                    best = len(voices) - 1
            assigned[i] = best
        assigned = smooth(assigned)
    for i, v in enumerate(voices):  # running means
        mine = emb[assigned == i]
        if len(mine):
            n = int(v["n"])
            total = np.asarray(v["centroid"]) * n + mine.sum(axis=0)
            v["centroid"], v["n"] = [float(x) for x in _unit(total)], n + len(mine)
    names = {i: Speaker(v["speaker"]) for i, v in enumerate(voices)}
    turns = split_turns(segments, lambda a, b: names[int(assigned[nearest(found.centres, (a + b) / 2)])])
    return turns, {"voices": voices}
