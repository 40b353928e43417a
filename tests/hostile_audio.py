"""A hostile upload corpus (SECURITY.md S13), built in memory from a seed: duration lies,
decompression bombs, truncated and garbage containers, huge headers, zero-length
streams, odd sample rates and channel counts, corrupted bytes, a file with no audio.

Each case says what the upload path must answer: ``accept`` (a usable recording),
``refuse`` (a clear 4xx) or ``either`` (corrupted bytes: whatever decodes, but never a
server error). The corpus is uploaded with a 60-second limit on recordings."""

from __future__ import annotations

import io
import random
import struct
import wave
from dataclasses import dataclass
from typing import Any

import numpy as np

LIMIT_SECONDS = 60.0


@dataclass(frozen=True)
class Case:
    name: str
    data: bytes
    expect: str  # accept | refuse | either
    message: str = ""  # part of the error shown, for a refusal


def _tone(seconds: float, rate: int, channels: int = 1) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    mono = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    return np.tile(mono, (channels, 1))


def wav(seconds: float = 3.0, *, rate: int = 16000, channels: int = 1) -> bytes:
    samples = (_tone(seconds, rate, channels).T * 32767).astype("<i2")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.tobytes())
    return buf.getvalue()


def raw_wav(*, channels: int, rate: int, bits: int = 16, data: bytes = b"", data_size: int | None = None,
            riff_size: int | None = None, fmt_size: int = 16) -> bytes:
    """A WAV written by hand, so that every header field can lie."""
    block = channels * bits // 8
    fmt = struct.pack("<HHIIHH", 1, channels, rate, rate * block, block, bits)
    body = b"WAVE" + b"fmt " + struct.pack("<I", fmt_size) + fmt
    body += b"data" + struct.pack("<I", len(data) if data_size is None else data_size) + data
    return b"RIFF" + struct.pack("<I", len(body) if riff_size is None else riff_size) + body


def encoded(container: str, codec: str, seconds: float, *, rate: int = 48000, channels: int = 1,
            bit_rate: int | None = None, silent: bool = False) -> bytes:
    import av

    buf = io.BytesIO()
    out = av.open(buf, mode="w", format=container)
    stream: Any = out.add_stream(codec, rate=rate)  # an audio stream (its codec is one)
    stream.layout = "mono" if channels == 1 else "stereo"
    if bit_rate:
        stream.bit_rate = bit_rate
    samples = _tone(seconds, rate, channels)
    if silent:
        samples[:] = 0
    step = 960 if "opus" in codec else 1152 if codec == "libmp3lame" else 1024
    for i in range(0, samples.shape[1], step):
        chunk = np.ascontiguousarray(samples[:, i:i + step])
        frame = av.AudioFrame.from_ndarray(chunk.reshape(1, -1) if channels == 1 else chunk.T.reshape(1, -1).copy(),
                                           format="flt", layout=stream.layout.name)
        frame.sample_rate = rate
        _mux(out, stream, frame)
    return _finish(out, stream, buf)


def _mux(out: Any, stream: Any, frame: Any) -> None:
    for packet in stream.encode(frame):
        out.mux(packet)


def _finish(out: Any, stream: Any, buf: io.BytesIO) -> bytes:
    _mux(out, stream, None)  # flush the encoder
    out.close()
    return buf.getvalue()


def video_only() -> bytes:
    """An MP4 (the m4a magic) that carries a video track and no audio."""
    import av

    buf = io.BytesIO()
    out = av.open(buf, mode="w", format="mp4")
    stream = out.add_stream("mpeg4", rate=5)
    stream.width, stream.height, stream.pix_fmt = 16, 16, "yuv420p"
    for _ in range(5):
        _mux(out, stream, av.VideoFrame.from_ndarray(np.zeros((16, 16, 3), dtype=np.uint8), format="rgb24"))
    return _finish(out, stream, buf)


def lie_about_duration(webm: bytes, seconds: float) -> bytes:
    """Rewrite the Matroska Duration element (ID 0x4489, an 8-byte float in milliseconds at
    the default timecode scale) so that the header claims ``seconds``."""
    at = webm.find(b"\x44\x89\x88")
    assert at > 0, "no 8-byte Duration element to rewrite"
    return webm[:at + 3] + struct.pack(">d", seconds * 1000.0) + webm[at + 11:]


def headers_only_ogg(ogg: bytes) -> bytes:
    """An Ogg Opus stream cut after its two header pages: a stream of zero samples."""
    third = ogg.find(b"OggS", ogg.find(b"OggS", 4) + 4)
    return ogg[:third]


def flipped(data: bytes, fraction: float, seed: int) -> bytes:
    rnd = random.Random(seed)
    out = bytearray(data)
    for _ in range(max(1, int(len(out) * fraction))):
        i = rnd.randrange(64, len(out))
        out[i] ^= 1 << rnd.randrange(8)
    return bytes(out)


def corpus() -> list[Case]:
    rnd = random.Random(13)
    junk = bytes(rnd.randrange(256) for _ in range(64 * 1024))
    ogg, webm = encoded("ogg", "libopus", 3), encoded("webm", "libopus", 3)
    mp3, m4a = encoded("mp3", "libmp3lame", 3, rate=16000), encoded("ipod", "aac", 3, rate=16000)
    long_webm = encoded("webm", "libopus", LIMIT_SECONDS + 30, bit_rate=6000)
    cases = [
        # Usable recordings, including odd rates and channel counts: accepted.
        Case("wav 16 kHz mono", wav(3), "accept"),
        Case("wav 44.1 kHz stereo", wav(3, rate=44100, channels=2), "accept"),
        Case("wav 8 kHz", wav(3, rate=8000), "accept"),
        Case("wav 96 kHz", wav(3, rate=96000), "accept"),
        Case("wav 8 channels", wav(2, rate=48000, channels=8), "accept"),
        Case("ogg opus", ogg, "accept"),
        Case("webm opus", webm, "accept"),
        Case("mp3", mp3, "accept"),
        Case("m4a aac", m4a, "accept"),
        Case("ogg opus stereo 24 kHz", encoded("ogg", "libopus", 3, rate=24000, channels=2), "accept"),
        # Duration lies and decompression bombs: the counted samples decide.
        Case("webm claiming 5 s, carrying 90 s", lie_about_duration(long_webm, 5), "refuse", "longer than"),
        Case("low-bitrate opus, 10 minutes of silence", encoded("ogg", "libopus", 600, bit_rate=6000, silent=True),
             "refuse", "longer than"),
        Case("wav at 1 Hz (100 samples = 100 s)", raw_wav(channels=1, rate=1, data=b"\x00\x10" * 100), "refuse",
             "longer than"),
        Case("wav whose data size claims 4 GB", raw_wav(channels=1, rate=16000, data=wav(0.5)[44:],
                                                         data_size=0xFFFFFFFF), "refuse", "too short"),
        Case("wav whose RIFF size claims 4 GB", raw_wav(channels=1, rate=16000, data=wav(0.5)[44:],
                                                         riff_size=0xFFFFFFFF), "refuse", "too short"),
        # Huge headers.
        Case("wav with a 4 GB fmt chunk", raw_wav(channels=1, rate=16000, data=junk, fmt_size=0xFFFFFFF0), "refuse"),
        Case("ID3 tag claiming 256 MB", b"ID3\x04\x00\x00\x7f\x7f\x7f\x7f" + junk, "refuse"),
        Case("MP4 box claiming 4 GB", b"\xff\xff\xff\xffftypisom" + junk, "refuse"),
        Case("EBML element of 2^56 bytes", b"\x1a\x45\xdf\xa3\x01\xff\xff\xff\xff\xff\xff\xff" + junk, "refuse"),
        # Impossible formats and zero-length streams.
        Case("wav with 0 channels", raw_wav(channels=0, rate=16000, data=junk), "refuse"),
        Case("wav at 0 Hz", raw_wav(channels=1, rate=0, data=junk), "refuse"),
        Case("wav with 7-bit samples", raw_wav(channels=1, rate=16000, bits=7, data=junk), "either"),
        Case("wav with an empty data chunk", raw_wav(channels=1, rate=16000), "refuse"),
        Case("wav header only, cut mid-header", wav(3)[:30], "refuse"),
        Case("ogg with its headers and no audio pages", headers_only_ogg(ogg), "refuse"),
        Case("webm with its headers and no cluster", webm[: webm.find(b"\x1f\x43\xb6\x75")], "refuse"),
        Case("mp4 with video and no audio", video_only(), "refuse", "no audio track"),
        # Truncated containers.
        Case("ogg cut at 10 %", ogg[: len(ogg) // 10], "refuse"),
        Case("webm cut at 10 %", webm[: len(webm) // 10], "refuse"),
        Case("mp3 cut at 10 %", mp3[: len(mp3) // 10], "refuse"),
        Case("m4a cut at 50 % (no index)", m4a[: len(m4a) // 2], "refuse"),
        # Garbage behind each format's magic bytes.
        Case("RIFF/WAVE magic, then noise", b"RIFF\x00\x10\x00\x00WAVE" + junk, "refuse"),
        Case("OggS magic, then noise", b"OggS" + junk, "refuse"),
        Case("EBML magic, then noise", b"\x1a\x45\xdf\xa3" + junk, "refuse"),
        Case("ftyp box, then noise", b"\x00\x00\x00\x18ftypM4A " + junk, "refuse"),
        Case("ID3 magic, then noise", b"ID3" + junk, "refuse"),
        # Corrupted bytes in valid files: whatever decodes, never a server error.
        *(Case(f"{name} with 1 % of bits flipped", flipped(data, 0.01, seed), "either")
          for seed, (name, data) in enumerate((("ogg", ogg), ("webm", webm), ("mp3", mp3), ("m4a", m4a),
                                               ("wav", wav(3)))))
    ]
    return cases
