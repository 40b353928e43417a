"""``scribe demo``: seed the demo practice, run the bundled session end to end on the real
engines, and report each stage's seconds."""

from __future__ import annotations

import json
import os
import time
from typing import Any

from sqlmodel import col, select

from scribe.config import Settings
from scribe.db.engine import session_scope
from scribe.db.tables import Draft, DraftSentence, Encounter, Job
from scribe.runtime import Runtime, build_runtime
from scribe.services.demo import SAMPLE_AUDIO, demo_client_id, seed_demo, user_by_name
from scribe.services.uploads import accept_upload
from scribe.worker import Worker


def _logins(settings: Settings, fresh: list[Any]) -> list[dict[str, str]]:
    path = settings.data_dir / "demo-logins.json"
    if fresh:
        data = [{"username": x.username, "password": x.password, "role": x.role, "description": x.description} for x in fresh]
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2)
        return data
    return json.loads(path.read_text()) if path.exists() else []


def run_demo(settings: Settings) -> tuple[dict[str, Any], Runtime]:
    t0 = time.perf_counter()
    rt = build_runtime(settings)
    with session_scope(rt.engine) as s:
        logins = _logins(settings, seed_demo(s, now=rt.clock()))
    t_load = time.perf_counter()
    rt.load_engines()
    load_seconds = time.perf_counter() - t_load
    t_upload = time.perf_counter()
    with session_scope(rt.engine) as s, SAMPLE_AUDIO.open("rb") as audio:
        actor = user_by_name(s, "dr_ada")
        encounter = accept_upload(s, rt.audit_key, rt.policies, recordings_dir=settings.recordings_dir, decoder=rt.decoder,
                                  actor=actor,
                                  client_id=demo_client_id(s), note_type="soap", filename=SAMPLE_AUDIO.name,
                                  stream=audio, now=rt.clock())
    Worker(rt).run_until_idle()
    to_queue = time.perf_counter() - t_upload
    with session_scope(rt.engine) as s:
        enc = s.get(Encounter, encounter.id)
        assert enc is not None  # noqa: S101 - narrows the type; never a guard
        jobs = s.exec(select(Job).where(Job.encounter_id == enc.id).order_by(col(Job.id))).all()
        draft = s.exec(select(Draft).where(Draft.encounter_id == enc.id)).first()
        sentences = s.exec(select(DraftSentence).where(DraftSentence.draft_id == (draft.id if draft else -1))).all()
        engines = rt.engines
        assert engines is not None  # noqa: S101 - narrows the type; never a guard
        summary = {
            "encounter_id": enc.id,
            "status": enc.status,
            "status_reason": enc.status_reason,
            "profile": settings.model_profile,
            "engines": {
                "transcriber": engines.transcriber.name,
                "redactor": engines.redactor.name,
                "drafter": engines.drafter.name,
            },
            "model_load_seconds": round(load_seconds, 2),
            "stage_seconds": {j.kind: round(j.seconds_taken, 2) for j in jobs},
            "stage_status": {j.kind: j.status for j in jobs},
            "upload_to_review_queue_seconds": round(to_queue, 2),
            "draft": {
                "sentences": len(sentences),
                "with_evidence": sum(1 for x in sentences if x.evidence),
                "flagged": sum(1 for x in sentences if x.flags),
                "removed_by_checks": len(draft.removed) if draft else 0,
                "draft_flags": len(draft.draft_flags) if draft else 0,
                "generated_tokens": draft.generated_tokens if draft else 0,
                "tokens_per_second": round(draft.generated_tokens / draft.seconds_taken, 2)
                if draft and draft.seconds_taken
                else None,
            },
            "review_url": f"http://{settings.host}:{settings.port}/sessions/{enc.id}",
            "total_seconds": round(time.perf_counter() - t0, 2),
            "logins": logins,
        }
    return summary, rt
