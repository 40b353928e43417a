"""Pipeline benchmark: WER, transcription real-time factor, drafting tokens/s and seconds
from upload to draft in the review queue, on the bundled sample and the five Fareez OSCE
clips — beside plain faster-whisper with its defaults on the same files in the same run.

    .venv/bin/python bench/pipeline.py [--profile default|test] [--files N]

Prints a table and writes bench/out/pipeline.json."""

from __future__ import annotations

import argparse
import io
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import jiwer
from sqlmodel import col, select

from bench.common import EVAL, OUT, normalise, table
from scribe.config import Settings
from scribe.db.engine import session_scope
from scribe.db.tables import Draft, Encounter, Job, Transcript, TranscriptSegment
from scribe.engines.build import build_engines
from scribe.engines.offline import force_offline
from scribe.runtime import build_runtime
from scribe.services.demo import (
    SAMPLE_AUDIO,
    SAMPLE_SCRIPT,
    demo_client_id,
    seed_demo,
    user_by_name,
)
from scribe.services.uploads import accept_upload
from scribe.weights import profile_paths
from scribe.worker import Worker


def files(limit: int) -> list[tuple[str, Path, str]]:
    out = [("sample", SAMPLE_AUDIO, SAMPLE_SCRIPT.read_text())]
    audio_dir = EVAL / "fareez_osce" / "audio"
    if audio_dir.exists():
        for mp3 in sorted(audio_dir.glob("*.mp3"))[:limit]:
            out.append((mp3.stem, mp3, (EVAL / "fareez_osce" / "reference" / f"{mp3.stem}.txt").read_text()))
    return out


def plain_faster_whisper(model_dir: Path, path: Path) -> tuple[str, float]:
    """faster-whisper exactly as its README shows it, with its defaults."""
    from faster_whisper import WhisperModel

    model = WhisperModel(str(model_dir))
    started = time.perf_counter()
    segments, _ = model.transcribe(str(path))
    text = " ".join(s.text for s in segments)
    return text, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--profile", default="default", choices=["default", "test"])
    parser.add_argument("--files", type=int, default=5, help="how many Fareez clips (0-5)")
    args = parser.parse_args()
    force_offline()
    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), model_profile=args.profile, worker_in_process=False)
        runtime = build_runtime(settings)
        with session_scope(runtime.engine) as s:
            seed_demo(s, now=runtime.clock())
        t = time.perf_counter()
        runtime.engines = build_engines(settings, runtime.policies)
        load_seconds = time.perf_counter() - t
        whisper_dir = profile_paths(settings.models_dir, args.profile).whisper
        totals = {"ours": [[], []], "plain": [[], []]}
        for name, path, reference in files(args.files):
            duration = runtime.decoder.probe(path.read_bytes(), max_seconds=1e9)
            ref = normalise(reference)
            plain_text, plain_seconds = plain_faster_whisper(whisper_dir, path)
            started = time.perf_counter()
            with session_scope(runtime.engine) as s:
                actor = user_by_name(s, "dr_ada")
                encounter = accept_upload(s, runtime.audit_key, runtime.policies, recordings_dir=settings.recordings_dir,
                                          decoder=runtime.decoder, actor=actor, client_id=demo_client_id(s), note_type="soap",
                                          filename=path.name, stream=io.BytesIO(path.read_bytes()), now=runtime.clock())
            Worker(runtime).run_until_idle()
            to_queue = time.perf_counter() - started
            with session_scope(runtime.engine) as s:
                enc = s.get(Encounter, encounter.id)
                jobs = {j.kind: j for j in s.exec(select(Job).where(Job.encounter_id == encounter.id)).all()}
                tr = s.exec(select(Transcript).where(Transcript.encounter_id == encounter.id)).one()
                ours_text = " ".join(x.text for x in s.exec(select(TranscriptSegment).where(
                    TranscriptSegment.transcript_id == tr.id).order_by(col(TranscriptSegment.idx))).all())
                draft = s.exec(select(Draft).where(Draft.encounter_id == encounter.id)).one()
            hyp_ours, hyp_plain = normalise(ours_text), normalise(plain_text)
            for key, hyp in (("ours", hyp_ours), ("plain", hyp_plain)):
                totals[key][0].append(" ".join(ref))
                totals[key][1].append(" ".join(hyp))
            rows.append({
                "file": name, "audio_s": round(duration, 1), "status": enc.status if enc else "?",
                "wer_ours": jiwer.wer(" ".join(ref), " ".join(hyp_ours)),
                "wer_plain_fw": jiwer.wer(" ".join(ref), " ".join(hyp_plain)),
                "rtf_ours": tr.seconds_taken / duration, "rtf_plain_fw": plain_seconds / duration,
                "draft_tok_s": draft.generated_tokens / draft.seconds_taken if draft.seconds_taken else None,
                "prompt_tokens": draft.prompt_tokens, "draft_s": jobs["draft"].seconds_taken,
                "upload_to_queue_s": round(to_queue, 1),
            })
            print(table(rows[-1:], list(rows[-1])), flush=True)
    corpus = {k: jiwer.wer(v[0], v[1]) for k, v in totals.items()}
    fareez = [r for r in rows if r["file"] != "sample"]
    fz = {}
    if fareez:
        fz = {
            "corpus_wer_ours": jiwer.wer(totals["ours"][0][1:], totals["ours"][1][1:]),
            "corpus_wer_plain_fw": jiwer.wer(totals["plain"][0][1:], totals["plain"][1][1:]),
            "rtf_ours": sum(r["rtf_ours"] * r["audio_s"] for r in fareez) / sum(r["audio_s"] for r in fareez),
            "rtf_plain_fw": sum(r["rtf_plain_fw"] * r["audio_s"] for r in fareez) / sum(r["audio_s"] for r in fareez),
        }
    summary = {"profile": args.profile, "engines": {"transcriber": runtime.engines.transcriber.name,
                                                    "drafter": runtime.engines.drafter.name},
               "model_load_s": round(load_seconds, 1), "corpus_wer_all": corpus, "fareez": fz, "rows": rows}
    print("\n" + table(rows, list(rows[0])))
    print("\n" + json.dumps({k: v for k, v in summary.items() if k != "rows"}, indent=2))
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"pipeline-{args.profile}.json").write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
