"""Encode a short synthetic tone in each accepted container with PyAV (for upload tests)."""

from __future__ import annotations

import io

import numpy as np

FORMATS = {"mp3": ("mp3", "libmp3lame", 16000), "ogg": ("ogg", "libopus", 48000),
           "webm": ("webm", "libopus", 48000), "m4a": ("ipod", "aac", 16000)}


def encode(kind: str, seconds: float = 2.0) -> bytes:
    import av

    container, codec, rate = FORMATS[kind]
    buf = io.BytesIO()
    out = av.open(buf, mode="w", format=container)
    stream = out.add_stream(codec, rate=rate)
    stream.layout = "mono"
    t = np.arange(int(seconds * rate)) / rate
    samples = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    step = 960 if "opus" in codec else 1152 if codec == "libmp3lame" else 1024
    for i in range(0, len(samples), step):
        chunk = samples[i : i + step]
        frame = av.AudioFrame.from_ndarray(chunk.reshape(1, -1), format="flt", layout="mono")
        frame.sample_rate = rate
        for packet in stream.encode(frame):
            out.mux(packet)
    for packet in stream.encode(None):
        out.mux(packet)
    out.close()
    return buf.getvalue()
