"""S13: hostile uploads. Every file of the corpus goes through the browser's upload route;
none gets a server error, each decodes in a sandboxed child under memory, CPU-time and
wall-clock caps, the duration is counted from decoded samples, and the child can open no
file, socket or program."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from scribe.app import create_app
from scribe.db.engine import session_scope
from scribe.db.tables import Recording
from scribe.domain.errors import InvalidInput
from scribe.engines.decoder import DecoderLimits, SandboxDecoder
from scribe.runtime import Runtime
from tests.conftest import PASSWORD, Practice, totp_code, wav_bytes
from tests.helpers import must_search
from tests.hostile_audio import LIMIT_SECONDS, corpus, encoded, lie_about_duration

CAPS = DecoderLimits(memory_mb=512, cpu_seconds=20, wall_seconds=30)
SECONDS_PER_FILE = 15.0  # wall clock for one upload, spawn and all, on 2 busy cores


@pytest.fixture
def tight(runtime: Runtime) -> Iterator[Runtime]:
    """The runtime with the corpus's caps: 60-second recordings, a 512 MB decoder."""
    limits = runtime.policies.pipeline.upload
    old = limits.max_seconds
    object.__setattr__(limits, "max_seconds", LIMIT_SECONDS)
    runtime._decoder = SandboxDecoder(CAPS)
    yield runtime
    object.__setattr__(limits, "max_seconds", old)


def logged_in(runtime: Runtime) -> TestClient:
    app = create_app(runtime.settings, runtime=runtime, start_worker=False)
    web = TestClient(app, base_url="http://testserver", raise_server_exceptions=False)
    r = web.post("/login", data={"username": "dr_ada", "password": PASSWORD, "code": totp_code(runtime, "dr_ada")},
                 follow_redirects=False)
    assert r.status_code == 303
    return web


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024


def test_the_corpus_is_big_enough_and_covers_each_kind() -> None:
    cases = corpus()
    assert len(cases) >= 30
    names = " ".join(c.name for c in cases)
    for kind in ("claiming", "bitrate", "cut at", "noise", "4 GB", "0 channels", "0 Hz", "no audio", "flipped"):
        assert kind in names


def test_every_hostile_file_gets_a_clear_answer_never_a_server_error(tight: Runtime, practice: Practice) -> None:

    web = logged_in(tight)
    decoder = tight.decoder
    assert isinstance(decoder, SandboxDecoder)
    token = must_search(r'name="csrf_token" value="([^"]+)"', web.get("/").text).group(1)
    rss_before = _rss_mb()
    outcomes = []
    for case in corpus():
        started = time.perf_counter()
        r = web.post("/sessions", data={"csrf_token": token, "client_id": practice.maya.id, "note_type": "soap"},
                     files={"audio": ("upload.bin", case.data, "application/octet-stream")}, follow_redirects=False)
        seconds = time.perf_counter() - started
        peak = decoder.last_peak_mb
        outcomes.append((case.name, r.status_code, round(seconds, 2), round(peak)))
        assert r.status_code < 500, (case.name, r.status_code)
        assert seconds < SECONDS_PER_FILE, (case.name, seconds)
        assert peak < CAPS.memory_mb, (case.name, peak)
        if case.expect == "accept":
            assert r.status_code == 303, (case.name, r.status_code)
        elif case.expect == "refuse":
            assert r.status_code == 400, (case.name, r.status_code)
            assert case.message in r.text, (case.name, case.message)
        else:
            assert r.status_code in (303, 400), (case.name, r.status_code)
    # The web process itself parsed none of it: its memory stays where it was.
    assert _rss_mb() - rss_before < 150, outcomes
    with session_scope(tight.engine) as s:
        accepted = len(s.exec(select(Recording)).all())
    assert accepted == sum(1 for _, code, _, _ in outcomes if code == 303)
    print("S13 corpus:", len(outcomes), "files;", sum(1 for o in outcomes if o[1] >= 500), "server errors;",
          "slowest", max(o[2] for o in outcomes), "s; largest decoder peak", max(o[3] for o in outcomes), "MB")


def test_a_header_that_lies_about_the_duration_is_not_believed(tight: Runtime) -> None:
    """A WebM whose header says 5 s while it carries 90 s: the old probe read the header."""
    import io

    import av

    lying = lie_about_duration(encoded("webm", "libopus", LIMIT_SECONDS + 30, bit_rate=6000), 5)
    with av.open(io.BytesIO(lying), mode="r") as container:  # the lie is really in the header
        assert container.duration is not None and container.duration / 1e6 < 10
    with pytest.raises(InvalidInput, match="longer than"):
        tight.decoder.probe(lying, max_seconds=LIMIT_SECONDS)
    assert abs(tight.decoder.probe(lying, max_seconds=3600) - (LIMIT_SECONDS + 30)) < 0.5


def test_a_decoder_past_its_memory_or_time_is_stopped_with_a_clear_error() -> None:
    data = wav_bytes(seconds=3)
    with pytest.raises(InvalidInput, match="within the decoder's limits"):
        SandboxDecoder(DecoderLimits(memory_mb=64, cpu_seconds=20, wall_seconds=30)).probe(data, max_seconds=60)
    with pytest.raises(InvalidInput, match="within 0 s"):
        SandboxDecoder(DecoderLimits(memory_mb=512, cpu_seconds=20, wall_seconds=0.01)).probe(data, max_seconds=60)


def test_the_decoder_child_gets_an_empty_environment_and_a_fresh_interpreter(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}
    real = subprocess.Popen

    def spy(argv: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        seen.update(argv=argv, **kwargs)
        return real(argv, **kwargs)

    monkeypatch.setenv("SCRIBE_KEY_DIR", "/secret/keys")
    monkeypatch.setattr(subprocess, "Popen", spy)
    SandboxDecoder(CAPS).probe(wav_bytes(seconds=2), max_seconds=60)
    assert seen["argv"][:4] == [sys.executable, "-I", "-m", "scribe.engines.decoder"]  # exec'd, not a fork
    assert not any(k.startswith("SCRIBE") for k in seen["env"]) and seen["env"]["PATH"] == "/usr/bin:/bin"
    assert seen["close_fds"] and seen["start_new_session"]


ESCAPES = {
    "read a key file": "open(KEY, 'rb').read()",
    "list the data directory": "os.listdir(DATA)",
    "write a file": "open(DATA + '/dropped', 'w').write('x')",
    "make a directory": "os.mkdir(DATA + '/d')",
    "open a socket": "import socket; socket.socket()",
    "connect out": "import socket; socket.create_connection(('127.0.0.1', 5432), timeout=2)",
    "run a program": "os.execv('/bin/sh', ['sh', '-c', 'true'])",
    "start a child": "import subprocess; subprocess.run(['/bin/true'])",
}


@pytest.mark.parametrize("attempt", sorted(ESCAPES))
def test_the_sealed_off_decoder_can_reach_no_file_socket_or_program(tmp_path: Path, attempt: str) -> None:
    """The same confinement the child applies, then one escape attempt: each must fail."""
    key = tmp_path / "master.key"
    key.write_bytes(os.urandom(32))
    script = (f"import os\nKEY, DATA = {str(key)!r}, {str(tmp_path)!r}\n"
              "from scribe.engines.decoder import _confine, seal_off\n"
              "_confine(512, 10)\nassert seal_off()\n"
              f"try:\n    {ESCAPES[attempt]}\nexcept OSError as e:\n    print('refused', e.errno)\n"
              "else:\n    print('ESCAPED')\n")
    r = subprocess.run([sys.executable, "-I", "-c", script], capture_output=True, text=True, timeout=60,
                       env={"PATH": "/usr/bin:/bin"})
    assert "ESCAPED" not in r.stdout
    assert r.stdout.startswith("refused") or r.returncode != 0, (r.stdout, r.stderr)
    assert not (tmp_path / "dropped").exists() and not (tmp_path / "d").exists()


def test_no_container_is_parsed_outside_the_sandboxed_decoder() -> None:
    """PyAV and faster-whisper's decode_audio appear only in the child's module."""
    import re

    from scribe.config import ROOT

    offenders = []
    for path in (ROOT / "scribe").rglob("*.py"):
        text = path.read_text()
        if re.search(r"^\s*(import av\b|from av\b)|decode_audio|av\.open\(", text, re.M):
            offenders.append(path.relative_to(ROOT).as_posix())
    assert offenders == ["scribe/engines/decoder.py"]
