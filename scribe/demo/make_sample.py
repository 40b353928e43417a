"""Regenerate the bundled sample session (developers only; needs Debian's espeak-ng and sox).

Two espeak-ng voices read ``session_script.txt`` (a synthetic session written for this
project) with pauses between turns; the result is ``sample_session.ogg``:
    python -m scribe.demo.make_sample
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

HERE = Path(__file__).parent
VOICES = {"CLINICIAN": ["-v", "en-us+m3", "-s", "150", "-p", "35"], "CLIENT": ["-v", "en-us+f4", "-s", "160", "-p", "70"]}


def main() -> None:
    lines = [ln.split(":", 1) for ln in (HERE / "session_script.txt").read_text().splitlines() if ln.strip()]
    with tempfile.TemporaryDirectory() as tmp:
        parts = []
        silence = Path(tmp) / "silence.wav"
        subprocess.run(["sox", "-n", "-r", "16000", "-c", "1", str(silence), "trim", "0", "0.7"], check=True)
        for i, (speaker, text) in enumerate(lines):
            raw = Path(tmp) / f"{i:02d}-raw.wav"
            wav = Path(tmp) / f"{i:02d}.wav"
            subprocess.run(["espeak-ng", *VOICES[speaker.strip()], "-w", str(raw), text.strip()], check=True)
            subprocess.run(["sox", str(raw), "-r", "16000", "-c", "1", str(wav)], check=True)
            parts += [str(wav), str(silence)]
        subprocess.run(["sox", *parts, "-C", "3", str(HERE / "sample_session.ogg")], check=True)


if __name__ == "__main__":
    main()
