"""Encode a short synthetic tone in each accepted container with PyAV (for upload tests)."""

from __future__ import annotations

from tests.hostile_audio import encoded

FORMATS = {"mp3": ("mp3", "libmp3lame", 16000), "ogg": ("ogg", "libopus", 48000),
           "webm": ("webm", "libopus", 48000), "m4a": ("ipod", "aac", 16000)}


def encode(kind: str, seconds: float = 2.0) -> bytes:
    container, codec, rate = FORMATS[kind]
    return encoded(container, codec, seconds, rate=rate)
