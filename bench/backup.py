"""Backup and restore for a practice-sized data set: RPO and RTO.

Seeds a practice with N sessions (default 1,000) the way they sit in a real database: each
with a sealed transcript of S segments (default 300, about half an hour of speech), a
pseudonymized copy, an AI draft with its sentences, a signed note; one in ten keeps its
recording (a real 30-second WAV, sealed), as only clients who consented to keep_audio do.
Then it runs `scribe backup` and, into an empty data directory, `scribe restore` with its
verification (audit chain against the anchors, every signed note's hash, every recording
opened and checked), and prints:

- RTO: seconds from an empty data directory to a verified, running database;
- RPO: what a schedule of one backup per hour can lose (the interval plus a backup's duration);
- sizes and rates, beside a plain copy of the same data directory (unencrypted, unchecked)
  in the same run, the floor any backup pays.

    .venv/bin/python bench/backup.py [--sessions 1000] [--segments 300]

Writes bench/out/backup.json."""

from __future__ import annotations

import argparse
import io
import json
import shutil
import sys
import tempfile
import time
import wave
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import OUT, table
from scribe.config import Settings
from scribe.db.engine import session_scope
from scribe.db.tables import (
    Draft,
    DraftSection,
    DraftSentence,
    Encounter,
    Note,
    Pseudonymization,
    Recording,
    Transcript,
    TranscriptSegment,
)
from scribe.domain.notes import SIGNATURE_MEANING, EncounterStatus, VersionKind
from scribe.runtime import build_runtime
from scribe.services import audit, backup, records
from scribe.services.files import FileKey, recordings


def thirty_seconds() -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(bytes(range(256)) * (16000 * 2 * 30 // 256))
    return buf.getvalue()


SENTENCES = ["I have been sleeping better since we talked about the evening routine.",
             "Work has been hard this week and I felt anxious most mornings.",
             "We practised the breathing exercise together for five minutes.",
             "She said the conversation with her sister went better than expected."]


def seed(rt, sessions: int, segments: int) -> None:
    """The practice's N sessions, written through the ORM (so sealed exactly as the app seals)."""
    from tests.conftest import Clock, make_practice

    clock = Clock()
    p = make_practice(rt, clock)
    store, audio = recordings(rt.recordings_dir), thirty_seconds()
    started = time.perf_counter()
    for i in range(sessions):
        now = clock.now + timedelta(hours=i)
        with session_scope(rt.engine) as s:
            e = Encounter(clinic_id=p.dr_ada.clinic_id, client_id=p.maya.id, clinician_id=p.dr_ada.id, note_type="soap",
                          occurred_at=now, status=EncounterStatus.SIGNED, created_at=now, updated_at=now,
                          service_start=now - timedelta(minutes=50), service_end=now, place_of_service="11",
                          service_code="90834")
            s.add(e)
            s.flush()
            if i % 10 == 0:
                name = f"bench-{i:05d}.wav"
                size, sha = store.write(FileKey.for_owner(s, f"client:{p.maya.id}", "audio", now), name,
                                        io.BytesIO(audio))
                s.add(Recording(encounter_id=e.id, path=name, sha256=sha, format="wav", bytes=size,
                                duration_seconds=30.0, created_at=now))
            t = Transcript(encounter_id=e.id, engine="bench", language="en", duration_seconds=3000, seconds_taken=1,
                           created_at=now)
            s.add(t)
            s.flush()
            lines = []
            for k in range(segments):
                said = SENTENCES[k % len(SENTENCES)]
                s.add(TranscriptSegment(transcript_id=t.id, idx=k, start=k * 10.0, end=k * 10.0 + 9, speaker="client",
                                        text=said, words=[[k * 10.0, k * 10.0 + 1, w, 0.9] for w in said.split()[:4]]))
                lines.append(f"[{k}] CLIENT: {said}")
            s.add(Pseudonymization(encounter_id=e.id, engine="bench", lines=lines, segment_texts=lines,
                                   surrogates={"[CLIENT]": "Maya"}, entity_counts={"PERSON": 1}, created_at=now))
            d = Draft(encounter_id=e.id, note_type="soap", template_version=1, model="bench", status="signed",
                      ai_sections={"subjective": SENTENCES[0]}, created_at=now, updated_at=now)
            s.add(d)
            s.flush()
            for pos, key in enumerate(("subjective", "objective", "assessment", "plan")):
                s.add(DraftSection(draft_id=d.id, key=key, title=key.title(), position=pos, ai_text=SENTENCES[pos],
                                   text=SENTENCES[pos], reviewed=True))
                s.add(DraftSentence(draft_id=d.id, section_key=key, idx=pos, text=SENTENCES[pos], evidence=[pos]))
            note = Note(encounter_id=e.id, clinician_id=p.dr_ada.id, created_at=now)
            s.add(note)
            s.flush()
            v = records.add_version(s, note=note, encounter=e, actor=p.dr_ada, kind=VersionKind.ORIGINAL,
                                    sections=tuple((k, k.title(), SENTENCES[j]) for j, k in
                                                   enumerate(("subjective", "objective", "assessment", "plan"))),
                                    meaning=SIGNATURE_MEANING, now=now)
            audit.record(s, rt.audit_key, now=now, actor_id=p.dr_ada.id, action="note.sign", object_type="note_version",
                         object_id=v.id, content_sha256=v.content_sha256)
        if (i + 1) % 100 == 0:
            print(f"  seeded {i + 1}/{sessions} sessions ({time.perf_counter() - started:.0f} s)", flush=True)
    with session_scope(rt.engine) as s:
        audit.anchor(s, rt.audit_key, rt.anchors_dir, clock.now + timedelta(hours=sessions))


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--segments", type=int, default=300)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="scribe-backup-bench-"))
    settings = Settings(data_dir=work / "var", engines="fake", worker_in_process=False)
    rt = build_runtime(settings)
    print(f"seeding {args.sessions} sessions of {args.segments} segments in {work}", flush=True)
    seed(rt, args.sessions, args.segments)
    counts = backup.counts(rt.engine)
    data_bytes = folder_bytes(settings.data_dir)

    started = time.perf_counter()  # the peer: a plain copy of the data directory
    shutil.copytree(settings.data_dir, work / "plain-copy")
    plain_seconds = time.perf_counter() - started
    shutil.rmtree(work / "plain-copy")

    made = backup.make_backup(settings, rt.engine, work / "backups", now=datetime.now(UTC))
    rt.engine.dispose()
    shutil.rmtree(settings.data_dir)  # the server is lost (keys and anchors kept apart, as the README says)

    started = time.perf_counter()
    restored = backup.restore_backup(settings, made.folder)
    rt2 = build_runtime(settings, policies=rt.policies)
    report = backup.verify_restore(rt2)
    rto = time.perf_counter() - started
    assert report.ok, report.to_json()
    rows = [
        {"what": "plain copy of the data directory (peer: no encryption, no check)", "seconds": plain_seconds,
         "MB": data_bytes / 1e6},
        {"what": "scribe backup (online, sealed, manifest signed)", "seconds": made.seconds,
         "MB": made.total_bytes / 1e6},
        {"what": "scribe restore into an empty data directory", "seconds": restored["seconds"], "MB": ""},
        {"what": "verification (chain, every signed note, every recording)", "seconds": report.seconds, "MB": ""},
    ]
    print(table(rows, ["what", "seconds", "MB"]))
    result = {
        "sessions": counts["sessions"], "signed_versions": counts["signed_versions"],
        "recordings": counts["recordings"], "segments_per_session": args.segments,
        "data_dir_bytes": data_bytes, "backup_bytes": made.total_bytes, "backup_seconds": round(made.seconds, 2),
        "plain_copy_seconds": round(plain_seconds, 2), "restore_seconds": restored["seconds"],
        "verify_seconds": round(report.seconds, 2), "rto_seconds": round(rto, 2),
        "rpo_hourly_schedule_seconds": round(3600 + made.seconds, 1),
        "verification": report.to_json(),
    }
    print(f"\nRTO (empty data directory to a verified database): {rto:.1f} s for {counts['sessions']} sessions")
    print(f"RPO with an hourly `scribe backup`: at most {3600 + made.seconds:.0f} s of work "
          f"(the interval plus one backup's {made.seconds:.1f} s)")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "backup.json").write_text(json.dumps(result, indent=2))
    rt2.engine.dispose()
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
