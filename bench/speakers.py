"""Speaker attribution on real interviews: each Fareez OSCE clip transcribed by the profile's
Whisper (as the transcribe stage runs it), labelled by the voices engine with the
first-speaker rule (no enrolment), aligned to the human D:/P: reference turns.

    .venv/bin/python bench/speakers.py [--profile default|test]

Prints the share of aligned words on the right speaker per clip and over all, and the seconds
the voices took. Writes bench/out/speakers-PROFILE.json."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import EVAL, OUT, reference_turns, speaker_accuracy, table
from scribe.config import ROOT, Settings
from scribe.engines.build import build_decoder, build_transcriber
from scribe.engines.offline import force_offline
from scribe.engines.protocols import VoiceHints
from scribe.engines.speakers import VoiceTurns
from scribe.policies import load_policies


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--profile", default="default", choices=["default", "test"])
    args = parser.parse_args()
    force_offline()
    decoder = build_decoder(load_policies(ROOT / "policies"))
    transcriber = build_transcriber(Settings(model_profile=args.profile, models_dir=ROOT / "models"))
    voices = VoiceTurns()
    rows: list[dict[str, object]] = []
    right = aligned = 0
    for mp3 in sorted((EVAL / "fareez_osce" / "audio").glob("*.mp3")):
        audio = decoder.pcm(mp3.read_bytes(), max_seconds=10_000)
        segments = transcriber.transcribe(audio).segments
        started = time.perf_counter()
        labelled = voices.label(audio.samples, segments, VoiceHints(2))
        seconds = time.perf_counter() - started
        r, n = speaker_accuracy([(w.text, s.speaker.value) for s in labelled for w in s.words],
                                reference_turns((EVAL / "fareez_osce" / "reference" / f"{mp3.stem}.txt").read_text()))
        right, aligned = right + r, aligned + n
        rows.append({"clip": mp3.stem, "audio_s": round(audio.seconds), "words_aligned": n,
                     "right_speaker": r / n if n else None, "voices_s": round(seconds, 1)})
        print(table(rows[-1:], list(rows[-1])), flush=True)
    summary = {"profile": args.profile, "right_speaker": right / aligned if aligned else None,
               "words_aligned": aligned, "rows": rows}
    print("\n" + table(rows, list(rows[0])))
    print(f"\nall clips: {summary['right_speaker']:.4f} of {aligned} aligned words on the right speaker")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"speakers-{args.profile}.json").write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
