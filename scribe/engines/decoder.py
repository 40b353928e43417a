"""Audio decoding in a child process that holds no keys (SECURITY.md S13).

The container parser (FFmpeg, through PyAV) is the code most exposed to hostile input, so
it never runs in the web app or the worker. ``SandboxDecoder`` starts a fresh interpreter
(an exec, not a fork: none of the parent's memory, keys included, is in it) with an empty
environment. Before it reads a byte of input the child limits itself: address space, CPU
seconds, no files written, no core dumps, no new privileges. It reads the container from
stdin and writes 16 kHz float32 samples, mono or a stereo file's two sides (or only their count) to stdout, counting
them as it goes: the duration is what decodes, never what the header claims, and decoding
stops at the policy's longest recording. The parent bounds what it reads and kills the
child at a wall-clock deadline.

Run as ``python -m scribe.engines.decoder {probe,pcm} MAX_SECONDS MEMORY_MB CPU_SECONDS``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from typing import Any

from scribe.domain.errors import EngineError, InvalidInput
from scribe.engines.protocols import Audio

RATE = 16000
_STATUS_LIMIT = 4096
_TOO_LONG = 3
_NO_AUDIO = 4
_UNREADABLE = 5


@dataclass(frozen=True)
class DecoderLimits:
    memory_mb: int = 1024
    cpu_seconds: int = 900
    wall_seconds: float = 1200.0


class SandboxDecoder:
    """The parent side. A file that is not usable audio, is too long, or makes the decoder
    hit a limit or die is an InvalidInput (shown to the uploader); nothing it does can
    reach the caller's memory, keys or disk."""

    name = "sandboxed-pyav"

    def __init__(self, limits: DecoderLimits) -> None:
        self.limits = limits
        self.last_peak_mb = 0.0  # the last child's peak resident memory, as it reported it (0: it died)

    def probe(self, data: bytes, *, max_seconds: float) -> float:
        return self._run("probe", data, max_seconds).seconds

    def pcm(self, data: bytes, *, max_seconds: float, source: str = "") -> Audio:
        decoded = self._run("pcm", data, max_seconds)
        return Audio(decoded.samples, decoded.seconds, source, decoded.channels)

    def pcm_after(self, head: bytes, tail: bytes, *, max_seconds: float) -> Audio:
        """A later stretch of a stream recording: ``head`` is its first piece (the container's
        header), ``tail`` the pieces from some later one on. Returns the tail's audio only, with
        ``offset`` its start in the recording (from the container's own timestamps). A tail that
        runs straight on from the head gives the whole recording (offset 0)."""
        decoded, jump = self._decode("pcm", head + tail, max_seconds)
        if jump is None:
            return decoded
        samples = decoded.samples[int(jump[0]):]
        return Audio(samples, len(samples) / RATE, offset=float(jump[1]))

    def _run(self, mode: str, data: bytes, max_seconds: float) -> Audio:
        return self._decode(mode, data, max_seconds)[0]

    def _decode(self, mode: str, data: bytes, max_seconds: float) -> tuple[Audio, list[float] | None]:
        import numpy as np

        if not data:
            raise InvalidInput("the file is empty")
        cap = int(max_seconds * RATE) + RATE  # samples; the child stops just past the policy's limit
        argv = [sys.executable, "-I", "-m", "scribe.engines.decoder", mode, repr(float(max_seconds)),
                str(self.limits.memory_mb), str(self.limits.cpu_seconds)]
        env = {"PATH": "/usr/bin:/bin", "LC_ALL": "C", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
        child = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, env=env, cwd="/", close_fds=True, start_new_session=True)
        out = bytearray()
        status = bytearray()
        timed_out = threading.Event()

        def feed() -> None:
            try:
                assert child.stdin is not None  # noqa: S101 - narrows the type; never a guard
                child.stdin.write(data)
            except (BrokenPipeError, OSError):
                pass  # the child stopped reading (it refused the file): its status says why
            finally:
                with contextlib.suppress(OSError):
                    child.stdin.close()  # type: ignore[union-attr]

        def errors() -> None:
            assert child.stderr is not None  # noqa: S101 - narrows the type; never a guard
            while chunk := child.stderr.read(4096):
                if len(status) < _STATUS_LIMIT:
                    status.extend(chunk[: _STATUS_LIMIT - len(status)])

        def kill() -> None:
            timed_out.set()
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGKILL)

        threads = [threading.Thread(target=feed, daemon=True), threading.Thread(target=errors, daemon=True)]
        for t in threads:
            t.start()
        timer = threading.Timer(self.limits.wall_seconds, kill)
        timer.daemon = True
        timer.start()
        try:
            assert child.stdout is not None  # noqa: S101 - narrows the type; never a guard
            limit = cap * 4 * 2 if mode == "pcm" else 0  # two sides at most
            while chunk := child.stdout.read(1 << 20):
                if len(out) + len(chunk) > limit:
                    kill()  # more than it may produce: a misbehaving decoder
                    break
                out.extend(chunk)
            code = child.wait()
        finally:
            timer.cancel()
            for t in threads:
                t.join(timeout=5)
            for stream in (child.stdout, child.stderr):  # the pipes are ours to close
                if stream is not None:
                    with contextlib.suppress(OSError):
                        stream.close()
        report = _parse_status(bytes(status))
        self.last_peak_mb = float(report.get("peak_mb", 0.0))
        if timed_out.is_set():
            raise InvalidInput(f"the file could not be decoded within {self.limits.wall_seconds:.0f} s")
        if code == _TOO_LONG:
            raise InvalidInput(f"the recording is longer than {_span(max_seconds)}")
        if code == _NO_AUDIO:
            raise InvalidInput("the file has no audio track")
        if code == _UNREADABLE:
            raise InvalidInput(f"the file could not be read as audio ({report.get('error', 'unknown')})")
        if code != 0 or "seconds" not in report:
            # Killed by a limit (memory, CPU time) or crashed inside FFmpeg.
            why = f"signal {-code}" if code < 0 else f"exit {code}"
            raise InvalidInput(f"the file could not be decoded within the decoder's limits ({why})")
        seconds = float(report["seconds"])
        sides = int(report.get("channels", 1))
        samples = np.frombuffer(bytes(out), dtype=np.float32) if mode == "pcm" else None
        channels = None
        if samples is not None and sides == 2:
            pairs = samples[: len(samples) // 2 * 2].reshape(-1, 2)
            channels = np.ascontiguousarray(pairs.T)
            samples = pairs.mean(axis=1).astype(np.float32)
            if _one_side_copied(channels):
                channels = None  # a mono recording saved as stereo: both sides say the same
        if samples is not None and abs(len(samples) - seconds * RATE) > 1:
            raise EngineError("the decoder's output does not match its own count", retryable=False)
        jump = report.get("jump")
        return Audio(samples, seconds, channels=channels), ([float(x) for x in jump][:2] if jump else None)


def _one_side_copied(channels: Any) -> bool:
    import numpy as np

    left, right = channels[0].astype(np.float64), channels[1].astype(np.float64)
    scale = float(np.mean(left ** 2) + np.mean(right ** 2)) or 1.0
    return float(np.mean((left - right) ** 2)) < 1e-3 * scale


def _span(seconds: float) -> str:
    return f"{seconds / 3600:.1f} hours" if seconds >= 3600 else f"{seconds / 60:.0f} minutes"


def _parse_status(raw: bytes) -> dict[str, Any]:
    for line in reversed(raw.decode("utf-8", "replace").splitlines()):
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    return {}


# ---- the child -------------------------------------------------------------------------


def _confine(memory_mb: int, cpu_seconds: int) -> None:
    """Resource limits, then no new privileges. Called before any input is read."""
    import resource

    mem = memory_mb << 20
    resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds))
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")


# A seccomp filter, installed once the decoder's code is loaded and before the input is
# read: the child may still compute, allocate, read stdin and write stdout, but it can no
# longer open a file (a key, say), make or change one, open a socket, or run a program.
_PR_SET_NO_NEW_PRIVS = 38
_PR_SET_SECCOMP = 22
_SECCOMP_MODE_FILTER = 2
_DENIED = {
    "x86_64": (0xC000003E, {"open": 2, "openat": 257, "openat2": 437, "creat": 85, "socket": 41, "connect": 42,
                            "execve": 59, "execveat": 322, "fork": 57, "vfork": 58, "ptrace": 101,
                            "process_vm_readv": 310, "process_vm_writev": 311, "unlink": 87, "unlinkat": 263,
                            "rename": 82, "renameat": 264, "renameat2": 316, "link": 86, "linkat": 265,
                            "symlink": 88, "mkdir": 83, "chmod": 90, "fchmodat": 268, "truncate": 76}),
    "aarch64": (0xC00000B7, {"openat": 56, "openat2": 437, "socket": 198, "connect": 203, "execve": 221,
                             "execveat": 281, "ptrace": 117, "process_vm_readv": 270, "process_vm_writev": 271,
                             "unlinkat": 35, "renameat": 38, "renameat2": 276, "linkat": 37, "symlinkat": 36,
                             "mkdirat": 34, "fchmodat": 53, "truncate": 45}),
}


def seal_off() -> bool:
    """Install the seccomp filter; False where this architecture has no table here."""
    import ctypes
    import errno
    import platform
    import struct

    table = _DENIED.get(platform.machine())
    if table is None:
        return False
    arch, calls = table
    ld_w_abs, jeq_k, ret_k = 0x20, 0x15, 0x06
    kill, allow, eperm = 0x80000000, 0x7FFF0000, 0x00050000 | errno.EPERM
    numbers = sorted(set(calls.values()))
    prog = [(ld_w_abs, 0, 0, 4), (jeq_k, 1, 0, arch), (ret_k, 0, 0, kill), (ld_w_abs, 0, 0, 0)]
    for i, nr in enumerate(numbers):  # each match jumps to the EPERM return at the end
        prog.append((jeq_k, len(numbers) - i, 0, nr))
    prog += [(ret_k, 0, 0, allow), (ret_k, 0, 0, eperm)]
    raw = b"".join(struct.pack("HBBI", *ins) for ins in prog)
    buf = ctypes.create_string_buffer(raw, len(raw))

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    fprog = SockFprog(len(prog), ctypes.cast(buf, ctypes.c_void_p))
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_SECCOMP) failed")
    return True


def _say(**status: object) -> None:
    sys.stderr.write(json.dumps(status) + "\n")
    sys.stderr.flush()


def _child(mode: str, max_seconds: float, memory_mb: int, cpu_seconds: int) -> int:
    _confine(memory_mb, cpu_seconds)
    import importlib
    import io
    import pkgutil

    import av

    # PyAV imports some of its modules on first use; load them all now, since nothing can
    # be opened once the child is sealed off.
    for module in pkgutil.walk_packages(av.__path__, "av."):
        importlib.import_module(module.name)
    status = os.open("/proc/self/status", os.O_RDONLY)  # opened now, read at the end: the peak RSS

    def say(**fields: object) -> None:
        _say(peak_mb=_peak_mb(status), **fields)

    seal_off()
    data = sys.stdin.buffer.read()
    out = sys.stdout.buffer
    cap = int(max_seconds * RATE) + RATE
    total = 0
    jump: list[float] | None = None
    try:
        with av.open(io.BytesIO(data), metadata_errors="ignore") as container:
            streams = [s for s in container.streams if s.type == "audio"]
            if not streams:
                say(error="no audio track")
                return _NO_AUDIO
            # A two-channel recording (telehealth: one side per channel) keeps its sides, interleaved,
            # so speaker turns can use them; anything else is mixed down to mono.
            sides = 2 if mode == "pcm" and _channels(streams[0]) == 2 else 1
            resampler = av.AudioResampler(format="flt", layout="stereo" if sides == 2 else "mono", rate=RATE)
            expected: float | None = None
            if not isinstance(container, av.container.InputContainer):  # opened for reading, so never
                raise TypeError("av opened an output container")
            for frame in container.decode(streams[0]):
                if not isinstance(frame, av.AudioFrame):
                    continue
                # A gap in the timestamps: a recording's head followed by a later stretch of it (live
                # transcription decodes only what is new). Say where the later stretch starts.
                t = frame.time
                if t is not None:
                    if jump is None and expected is not None and t > expected + 0.25:
                        for piece in resampler.resample(None):  # the head's last samples first
                            total += _emit(piece, out, mode, sides)
                        resampler = av.AudioResampler(format="flt", layout="stereo" if sides == 2 else "mono",
                                                      rate=RATE)
                        jump = [total, float(t)]
                    expected = float(t) + frame.samples / max(1, frame.sample_rate)
                for piece in resampler.resample(frame):
                    total += _emit(piece, out, mode, sides)
                if total > cap:
                    say(error="too long", seconds=total / RATE)
                    return _TOO_LONG
            for piece in resampler.resample(None):
                total += _emit(piece, out, mode, sides)
    except MemoryError:
        say(error="memory limit")
        return _UNREADABLE
    except Exception as exc:
        say(error=exc.__class__.__name__)
        return _UNREADABLE
    if total > cap:
        say(error="too long", seconds=total / RATE)
        return _TOO_LONG
    out.flush()
    say(seconds=total / RATE, channels=sides if mode == "pcm" else 1, **({"jump": jump} if jump else {}))
    return 0


def _channels(stream: Any) -> int:
    try:
        return int(stream.codec_context.layout.nb_channels)
    except Exception:
        return 1


def _peak_mb(fd: int) -> float:
    """VmHWM of this process image (ru_maxrss would count the parent's pages before exec)."""
    os.lseek(fd, 0, os.SEEK_SET)
    for line in os.read(fd, 8192).decode().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _emit(frame: Any, out: Any, mode: str, sides: int = 1) -> int:
    n = int(frame.samples)  # per channel
    if mode == "pcm" and n:
        out.write(bytes(frame.planes[0])[: n * 4 * sides])
    return n


if __name__ == "__main__":
    if len(sys.argv) != 5 or sys.argv[1] not in {"probe", "pcm"}:
        print("usage: python -m scribe.engines.decoder {probe,pcm} MAX_SECONDS MEMORY_MB CPU_SECONDS",
              file=sys.stderr)
        raise SystemExit(2)
    raise SystemExit(_child(sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])))
