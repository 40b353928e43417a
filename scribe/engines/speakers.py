"""Simple speaker turns: two clusters of per-segment voice features.

Each segment gets a feature vector (log energies in mel-like bands over its voiced
frames, and a pitch estimate); 2-means splits them; the cluster of the first
segment is the clinician when the practice's rule says the clinician speaks first.
A later issue replaces this with voice embeddings (resemblyzer)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from scribe.domain.transcript import Segment, Speaker

Audio = npt.NDArray[np.float32]


def _features(chunk: Audio, sr: int) -> npt.NDArray[np.float64]:
    frame, hop = 400, 160
    if len(chunk) < frame * 2:
        chunk = np.pad(chunk, (0, frame * 2 - len(chunk)))
    n = 1 + (len(chunk) - frame) // hop
    idx = np.arange(frame)[None, :] + hop * np.arange(n)[:, None]
    frames = chunk[idx] * np.hanning(frame)
    energy = (frames ** 2).sum(axis=1)
    voiced = frames[energy > np.percentile(energy, 40)] if n > 4 else frames
    spec = np.abs(np.fft.rfft(voiced, n=512, axis=1)) ** 2
    freqs = np.fft.rfftfreq(512, 1 / sr)
    edges = np.geomspace(80, 7600, 17)
    bands = [spec[:, (freqs >= lo) & (freqs < hi)].sum(axis=1).mean() for lo, hi in zip(edges[:-1], edges[1:])]
    logb = np.log(np.asarray(bands) + 1e-9)
    logb -= logb.mean()
    # Pitch: autocorrelation peak between 70 and 400 Hz over voiced frames.
    ac = np.fft.irfft(np.abs(np.fft.rfft(voiced, n=1024, axis=1)) ** 2, axis=1)[:, : sr // 70]
    lo = sr // 400
    lags = lo + np.argmax(ac[:, lo:], axis=1)
    pitch = np.log(sr / np.median(lags))
    return np.concatenate([logb, [pitch * 4.0]])


def label_speakers(audio: Audio, segments: tuple[Segment, ...], *, sample_rate: int, clinician_first: bool) -> tuple[Segment, ...]:
    if not segments:
        return segments
    feats = []
    for s in segments:
        a, b = int(s.start * sample_rate), int(s.end * sample_rate)
        feats.append(_features(audio[a:max(b, a + 800)], sample_rate))
    x = np.asarray(feats)
    if len(segments) == 1:
        labels = np.zeros(1, dtype=int)
    else:
        x = (x - x.mean(axis=0)) / (x.std(axis=0) + 1e-6)
        labels = _two_means(x)
    first = labels[0]
    clinician_label = first if clinician_first else 1 - first
    return tuple(s.with_speaker(Speaker.CLINICIAN if lab == clinician_label else Speaker.CLIENT)
                 for s, lab in zip(segments, labels))


def _two_means(x: npt.NDArray[np.float64], iterations: int = 50, restarts: int = 12) -> npt.NDArray[np.int64]:
    """2-means with deterministic restarts (each seeded by a point and the point farthest
    from it); the split with the lowest within-cluster spread wins."""
    d = ((x[:, None, :] - x[None, :, :]) ** 2).sum(axis=2)
    seeds = np.linspace(0, len(x) - 1, num=min(restarts, len(x))).astype(int)
    best: tuple[float, npt.NDArray[np.int64]] | None = None
    for i in seeds:
        j = int(np.argmax(d[i]))
        centres = np.stack([x[i], x[j]])
        labels = np.full(len(x), -1, dtype=np.int64)
        for _ in range(iterations):
            dist = ((x[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2)
            new = np.argmin(dist, axis=1)
            if (new == labels).all():
                break
            labels = new
            for k in (0, 1):
                if (labels == k).any():
                    centres[k] = x[labels == k].mean(axis=0)
        inertia = float(sum(((x[labels == k] - centres[k]) ** 2).sum() for k in (0, 1)))
        if best is None or inertia < best[0] - 1e-9:
            best = (inertia, labels.copy())
    assert best is not None
    return best[1]
