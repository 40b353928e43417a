"""A client's case, taken out of the supervision meetings that discussed it. When a client
withdraws a consent (supervision use; or recording, transcription or drafting, which reach
every artefact derived from them), each meeting whose transcript names or identifies them
loses what was said of their case: the recording is silenced over those stretches (decoded
in the sandbox, re-encoded, re-sealed as a new file), the transcript segments and the
pseudonymized copy become a "removed" marker, and the draft loses every sentence that cited
them (with a flag the supervisor resolves). A signed supervision note keeps what it says:
it names cases only by reference. Other clients' cases in the same meeting are untouched."""

from __future__ import annotations

import io
import uuid
import wave
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import delete
from sqlmodel import Session, col, select

from scribe.db.tables import (
    Client,
    Draft,
    DraftSection,
    DraftSentence,
    Encounter,
    Note,
    Pseudonymization,
    Recording,
    Transcript,
    TranscriptSegment,
    owner_of,
)
from scribe.domain.chart import case_reference, cases_found, known_identifiers
from scribe.domain.evidence import Flag, FlagKind, split_sentences
from scribe.domain.notes import EncounterKind, content_sha256
from scribe.domain.redaction import SurrogateMap, find_known
from scribe.domain.transcript import Segment, Speaker, model_line
from scribe.engines.protocols import Decoder
from scribe.services.files import FileKey, recordings

REMOVED = "[removed: a case whose client withdrew consent]"
SAMPLE_RATE = 16_000


@dataclass(frozen=True)
class MediaTools:
    """What silencing a recording needs: where recordings live, and the sandboxed decoder."""

    recordings_dir: Path
    decoder: Decoder


def meetings_citing(s: Session, client: Client) -> list[tuple[Encounter, set[int]]]:
    """The clinic's supervision meetings whose transcript names or identifies the client, with
    the indexes of those segments: from the meeting's pseudonymization (the redactor's own
    finds, keyed by case) and, for a meeting not yet pseudonymized, the chart's identifiers."""
    from scribe.services.pipeline import _facts  # the chart as the redactor knows it

    known = known_identifiers(_facts(client))
    found = []
    for meeting in s.exec(select(Encounter).where(Encounter.clinic_id == client.clinic_id,
                                                  Encounter.kind == EncounterKind.SUPERVISION)):
        segments = _segments(s, meeting)
        if not segments:
            continue
        hit = {seg.idx for seg in segments if find_known(seg.text, known)}
        p = s.exec(select(Pseudonymization).where(Pseudonymization.encounter_id == meeting.id)).first()
        if p is not None:
            surrogates = SurrogateMap.from_json(p.surrogates)
            if client.id in cases_found(surrogates):
                marks = [v for k, v in surrogates.forward.items() if k.startswith(f"case{client.id}:")]
                hit |= {i for i, text in enumerate(p.segment_texts) if any(m in text for m in marks)}
        if hit:
            found.append((meeting, hit))
    return found


def _segments(s: Session, meeting: Encounter) -> list[TranscriptSegment]:
    t = s.exec(select(Transcript).where(Transcript.encounter_id == meeting.id)).first()
    if t is None:
        return []
    return list(s.exec(select(TranscriptSegment).where(TranscriptSegment.transcript_id == t.id)
                       .order_by(col(TranscriptSegment.idx))))


def scrub_client_from_meetings(s: Session, *, client: Client, parts: list[str], tools: MediaTools,
                               now: datetime) -> tuple[list[dict[str, object]], list[str]]:
    """Take the client's case out of every meeting that discussed it: ``parts`` of audio,
    transcript, draft. Returns the receipt's items and the recording files (sealed over the
    case) to delete once this commits."""
    if not parts:
        return [], []
    items: list[dict[str, object]] = []
    stale: list[str] = []
    for meeting, indexes in meetings_citing(s, client):
        if client.legal_hold:
            items.append({"artefact": "supervision meeting", "session_id": meeting.id, "kept": "legal hold"})
            continue
        segments = _segments(s, meeting)
        spans = [(seg.start, seg.end) for seg in segments if seg.idx in indexes]
        marks = _case_marks(s, meeting, client)
        if "audio" in parts:
            old = _silence(s, meeting, spans, tools, now)
            if old:
                stale.append(old)
                items.append({"artefact": "supervision audio: case silenced", "session_id": meeting.id,
                              "seconds": round(sum(b - a for a, b in spans), 1)})
        if "transcript" in parts:
            before = content_sha256([seg.text for seg in segments if seg.idx in indexes])
            for seg in segments:
                if seg.idx in indexes:
                    seg.text, seg.words = REMOVED, []
                    s.add(seg)
            _scrub_pseudonymization(s, meeting, client, indexes)
            items.append({"artefact": "supervision transcript: case removed", "session_id": meeting.id,
                          "segments": len(indexes), "sha256": before})
        if "draft" in parts:
            removed = _scrub_draft(s, meeting, client, indexes, marks, now)
            if removed:
                items.append({"artefact": "supervision draft: sentences removed", "session_id": meeting.id,
                              "sentences": removed})
    return items, stale


def _scrub_pseudonymization(s: Session, meeting: Encounter, client: Client, indexes: set[int]) -> None:
    p = s.exec(select(Pseudonymization).where(Pseudonymization.encounter_id == meeting.id)).first()
    if p is None:
        return
    texts = [REMOVED if i in indexes else text for i, text in enumerate(p.segment_texts)]
    originals = _segments(s, meeting)
    p.segment_texts = texts
    p.lines = [model_line(Segment(o.idx, o.start, o.end, t, Speaker(o.speaker))) for o, t in zip(originals, texts, strict=False)]
    # The map forgets the client: nothing of their case can be re-identified from this meeting.
    surrogates = dict(p.surrogates)
    forward = {k: v for k, v in dict(surrogates.get("forward", {})).items() if not k.startswith(f"case{client.id}:")}
    surrogates["forward"] = forward
    live = set(forward.values())
    surrogates["reverse"] = {k: v for k, v in dict(surrogates.get("reverse", {})).items() if k in live}
    p.surrogates = surrogates
    s.add(p)


def _case_marks(s: Session, meeting: Encounter, client: Client) -> list[str]:
    """The surrogates that stood for the client in the meeting's pseudonymized text."""
    p = s.exec(select(Pseudonymization).where(Pseudonymization.encounter_id == meeting.id)).first()
    if p is None:
        return []
    return [v for k, v in SurrogateMap.from_json(p.surrogates).forward.items() if k.startswith(f"case{client.id}:")]


def _scrub_draft(s: Session, meeting: Encounter, client: Client, indexes: set[int], marks: list[str],
                 now: datetime) -> int:
    """Sentences citing the case (by evidence, or by its reference) go from the draft; a signed
    note keeps its text (it names the case by reference only)."""
    draft = s.exec(select(Draft).where(Draft.encounter_id == meeting.id)).first()
    if draft is None:
        return 0
    signed = s.exec(select(Note).where(Note.encounter_id == meeting.id)).first() is not None
    reference = case_reference(client.id or 0)
    sentences = s.exec(select(DraftSentence).where(DraftSentence.draft_id == draft.id)).all()
    gone = [x for x in sentences if set(x.evidence) & indexes or reference in x.text]
    for sec in s.exec(select(DraftSection).where(DraftSection.draft_id == draft.id)):
        for x in gone:
            if x.section_key == sec.key:
                sec.ai_text = sec.ai_text.replace(x.text, "").strip()
                if not signed:
                    sec.text = sec.text.replace(x.text, "").strip()
        s.add(sec)
    if marks:  # the model's own text (pseudonymized) loses every sentence naming the case
        draft.ai_sections = {key: " ".join(x for x in split_sentences(text) if not any(m in x for m in marks))
                             for key, text in draft.ai_sections.items()}
        s.add(draft)
    if gone:
        s.execute(delete(DraftSentence).where(col(DraftSentence.id).in_([x.id for x in gone])))
        if not signed:
            draft.draft_flags = [*draft.draft_flags, Flag(
                FlagKind.CASE_LEFT_OUT, f"{len(gone)} sentence(s) about a case whose client withdrew consent were "
                "removed from this draft").to_json()]
        draft.removed = [r for r in draft.removed if reference not in str(r.get("text", ""))]
        draft.updated_at = now
        s.add(draft)
    return len(gone)


def _silence(s: Session, meeting: Encounter, spans: list[tuple[float, float]], tools: MediaTools,
             now: datetime) -> str:
    """Re-encode the meeting's recording with the case's stretches silent, sealed as a new
    file; returns the old file's name (to delete after the commit), or "" if none."""
    rec = s.exec(select(Recording).where(Recording.encounter_id == meeting.id)).first()
    if rec is None or rec.purged_at is not None or not spans:
        return ""
    store = recordings(tools.recordings_dir)
    audio = tools.decoder.pcm(store.read(s.get_bind(), rec.path), max_seconds=10 * 3600)  # type: ignore[arg-type]
    samples = audio.samples.copy()
    for start, end in spans:
        samples[max(0, int(start * SAMPLE_RATE)):max(0, int(end * SAMPLE_RATE) + 1)] = 0.0
    rel = f"{uuid.uuid4().hex}.wav"
    size, sha = store.write(FileKey.for_owner(s, owner_of(meeting), "audio", now), rel, io.BytesIO(_wav(samples)))
    old = rec.path
    rec.path, rec.sha256, rec.format, rec.bytes = rel, sha, "wav", size
    s.add(rec)
    return old


def _wav(samples: Any) -> bytes:
    import numpy as np

    pcm = (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2").tobytes()
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE)
        w.writeframes(pcm)
    return buf.getvalue()
