"""Live transcription benchmark: a long recording replayed through the real live path (the
recorder's two-second pieces, at a speed factor, while a worker runs), and the same file through
the cold upload path, in the same run, on the same machine.

    .venv/bin/python bench/live.py [--profile default|test] [--minutes 50] [--speed 4]

The recording: the five Fareez OSCE interviews, one after another (then the first again, as far
as needed), encoded as WebM/Opus as a browser records it. Prints, for both paths: seconds from the
end of the recording to the draft in the review queue, with each stage's seconds; the real-time
factor of live transcription; WER against the concatenated reference transcripts; the share of
words on the right speaker; peak resident memory. Writes bench/out/live-PROFILE.json."""

from __future__ import annotations

import argparse
import io
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import jiwer
import numpy as np
from sqlmodel import col, select

from bench.common import EVAL, OUT, normalise, reference_turns, speaker_accuracy, table
from scribe.config import Settings
from scribe.db.engine import session_scope
from scribe.db.tables import Draft, Encounter, Job, Transcript, TranscriptSegment
from scribe.domain.notes import EncounterStatus
from scribe.engines.build import build_engines
from scribe.engines.offline import force_offline
from scribe.runtime import build_runtime
from scribe.services import recording
from scribe.services.demo import demo_client_id, seed_demo, user_by_name
from scribe.services.uploads import accept_upload
from scribe.worker import Worker

PIECE_SECONDS = 2.0
RATE = 48000


def recording_and_reference(minutes: float) -> tuple[bytes, str, float, list[tuple[float, float, str]]]:
    """The OSCE clips back to back up to ``minutes`` (whole clips only: the reference must match),
    as WebM/Opus; the references joined the same way."""
    import av

    clips = sorted((EVAL / "fareez_osce" / "audio").glob("*.mp3"))
    parts: list[np.ndarray] = []
    refs: list[str] = []
    spans: list[tuple[float, float, str]] = []  # each clip's start and end in the recording, and its reference
    total = 0.0
    i = 0
    while total < minutes * 60:
        clip = clips[i % len(clips)]
        with av.open(str(clip)) as c:
            resampler = av.AudioResampler(format="flt", layout="mono", rate=RATE)
            pcm = np.concatenate([p.to_ndarray().reshape(-1) for f in c.decode(audio=0) for p in resampler.resample(f)])
        parts.append(pcm)
        refs.append((EVAL / "fareez_osce" / "reference" / f"{clip.stem}.txt").read_text())
        spans.append((total, total + len(pcm) / RATE, refs[-1]))
        total += len(pcm) / RATE
        i += 1
    signal = np.concatenate(parts)
    cache = OUT / f"live-{len(parts)}clips.webm"
    if not cache.exists():
        out = io.BytesIO()
        with av.open(out, "w", format="webm") as container:
            stream = container.add_stream("libopus", rate=RATE)
            stream.layout, stream.bit_rate = "mono", 32000
            for j in range(0, len(signal), 960 * 50):
                frame = av.AudioFrame.from_ndarray(signal[j:j + 960 * 50].reshape(1, -1), format="flt", layout="mono")
                frame.rate = RATE
                for packet in stream.encode(frame):
                    container.mux(packet)
            for packet in stream.encode(None):
                container.mux(packet)
        OUT.mkdir(parents=True, exist_ok=True)
        cache.write_bytes(out.getvalue())
    return cache.read_bytes(), "\n".join(refs), len(signal) / RATE, spans


def pieces(data: bytes, seconds: float) -> list[bytes]:
    n = max(1, round(seconds / PIECE_SECONDS))
    size = -(-len(data) // n)
    return [data[i:i + size] for i in range(0, len(data), size)]


def wait_in_review(rt, encounter_id: int, limit: float = 7200) -> float:
    started = time.perf_counter()
    while time.perf_counter() - started < limit:
        with session_scope(rt.engine) as s:
            status = s.get(Encounter, encounter_id).status
        if status == EncounterStatus.IN_REVIEW:
            return time.perf_counter() - started
        if status in (EncounterStatus.FAILED, EncounterStatus.STOPPED):
            raise SystemExit(f"session {encounter_id} {status}")
        time.sleep(0.2)
    raise SystemExit("timed out")


def outcome(rt, encounter_id: int, reference: str, spans: list[tuple[float, float, str]],
            samples: np.ndarray) -> dict[str, object]:
    """WER over the whole recording; speaker attribution per interview (each has its own two
    people, so the concatenation has ten voices): the path's own words and times, labelled by the
    voices engine on that interview's audio, against its reference turns."""
    from scribe.domain.transcript import Segment, Word
    from scribe.engines.protocols import VoiceHints

    with session_scope(rt.engine) as s:
        t = s.exec(select(Transcript).where(Transcript.encounter_id == encounter_id)).one()
        rows = s.exec(select(TranscriptSegment).where(TranscriptSegment.transcript_id == t.id)
                      .order_by(col(TranscriptSegment.idx))).all()
        stages = {j.kind: round(j.seconds_taken, 1) for j in s.exec(select(Job).where(Job.encounter_id == encounter_id))}
        draft = s.exec(select(Draft).where(Draft.encounter_id == encounter_id)).one()
        drafting = {"parts_noted": len(t.digests or []), "prompt_tokens": draft.prompt_tokens,
                    "generated_tokens": draft.generated_tokens}
        words = [Word(*w) for r in rows for w in r.words]
        text = " ".join(r.text for r in rows)
    right = aligned = 0
    for a, b, ref in spans:
        inside = tuple(Segment(i, w.start - a, w.end - a, w.text, words=(Word(w.start - a, w.end - a, w.text),))
                       for i, w in enumerate(x for x in words if a <= (x.start + x.end) / 2 < b))
        clip = samples[int(a * 16000):int(b * 16000)]
        labelled = rt.engines.voices.label(clip, inside, VoiceHints(2))
        r, n = speaker_accuracy([(w.text, x.speaker.value) for x in labelled for w in x.words], reference_turns(ref))
        right, aligned = right + r, aligned + n
    return {"wer": jiwer.wer(" ".join(normalise(reference)), " ".join(normalise(text))),
            "speaker_words_right": right / aligned if aligned else None, "words_aligned": aligned, "stages": stages,
            "drafting": drafting}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--profile", default="default", choices=["default", "test"])
    parser.add_argument("--minutes", type=float, default=50.0)
    parser.add_argument("--speed", type=float, default=4.0, help="replay speed (1 = real time)")
    parser.add_argument("--skip-cold", action="store_true", help="the live path only (no upload of the same file)")
    args = parser.parse_args()
    force_offline()
    data, reference, seconds, spans = recording_and_reference(args.minutes)
    print(f"recording: {seconds / 60:.1f} min, {len(data) / 1e6:.1f} MB WebM/Opus; replay at {args.speed}x", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), model_profile=args.profile, worker_in_process=False)
        rt = build_runtime(settings)
        with session_scope(rt.engine) as s:
            seed_demo(s, now=rt.clock())
        rt.engines = build_engines(settings, rt.policies)
        worker = Worker(rt, poll_seconds=0.2)
        thread = worker.start_thread()

        # --- live: pieces as the recorder sends them, at the replay speed -----------------------
        with session_scope(rt.engine) as s:
            actor = user_by_name(s, "dr_ada")
            client_id = demo_client_id(s)
            encounter = recording.start(s, rt.audit_key, rt.policies, actor=actor, client_id=client_id,
                                        note_type="soap", now=rt.clock())
            live_id = encounter.id or 0
        begun = time.perf_counter()
        for seq, piece in enumerate(pieces(data, seconds)):
            due = begun + seq * PIECE_SECONDS / args.speed
            time.sleep(max(0.0, due - time.perf_counter()))
            with session_scope(rt.engine) as s:
                recording.add_chunk(s, rt.policies, actor=actor, encounter_id=live_id, seq=seq, data=piece,
                                    recordings_dir=settings.recordings_dir, now=rt.clock())
        time.sleep(max(0.0, begun + seconds / args.speed - time.perf_counter()))
        time.perf_counter()
        with session_scope(rt.engine) as s:
            t = s.exec(select(Transcript).where(Transcript.encounter_id == live_id)).first()
            live_until, live_seconds = (t.live_until, t.seconds_taken) if t else (0.0, 0.0)
            recording.finish(s, rt.audit_key, rt.policies, actor=actor, encounter_id=live_id,
                             recordings_dir=settings.recordings_dir, decoder=rt.decoder, now=rt.clock())
        live_to_queue = wait_in_review(rt, live_id)
        samples = rt.decoder.pcm(data, max_seconds=1e9).samples
        live = outcome(rt, live_id, reference, spans, samples)
        print(f"live: draft in the queue {live_to_queue:.1f} s after the recording ended; "
              f"{live_until:.0f} s of {seconds:.0f} s transcribed live", flush=True)

        # --- cold: the same file uploaded ------------------------------------------------------
        cold: dict[str, object] | None = None
        if not args.skip_cold:
            with session_scope(rt.engine) as s:
                cold_id = accept_upload(s, rt.audit_key, rt.policies, recordings_dir=settings.recordings_dir,
                                        decoder=rt.decoder, actor=actor, client_id=client_id, note_type="soap",
                                        filename="session.webm", stream=io.BytesIO(data), now=rt.clock()).id or 0
            cold_to_queue = wait_in_review(rt, cold_id)
            cold = outcome(rt, cold_id, reference, spans, samples)
            cold["end_to_queue_s"] = round(cold_to_queue, 1)
        worker.stop()
        thread.join(timeout=60)

    peak_self = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    peak_child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    rows = [
        {"path": "live", "end_to_queue_s": round(live_to_queue, 1), "wer": live["wer"],
         "speaker_words_right": live["speaker_words_right"], "stages_s": json.dumps(live["stages"]),
         "drafting": json.dumps(live["drafting"])},
    ]
    if cold is not None:
        rows.append({"path": "cold", "end_to_queue_s": cold["end_to_queue_s"], "wer": cold["wer"],
                     "speaker_words_right": cold["speaker_words_right"], "stages_s": json.dumps(cold["stages"]),
                     "drafting": json.dumps(cold["drafting"])})
    summary = {
        "profile": args.profile, "audio_minutes": round(seconds / 60, 1), "speed": args.speed,
        "live_transcribed_until_s": round(live_until, 1),
        "live_rtf": round(live_seconds / live_until, 3) if live_until else None,
        "peak_rss_mb_worker_process": round(peak_self), "peak_rss_mb_largest_child": round(peak_child),
        "engines": {"transcriber": rt.engines.transcriber.name, "drafter": rt.engines.drafter.name,
                    "voices": getattr(rt.engines.voices, "name", None)},
        "rows": rows,
    }
    print("\n" + table(rows, list(rows[0])))
    print("\n" + json.dumps({k: v for k, v in summary.items() if k != "rows"}, indent=2))
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"live-{args.profile}.json").write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
