"""Withdrawal and the purges it triggers. A withdrawal is a ledger entry; from that moment
no step that needs the function runs (queued jobs stop now, a running one at its commit),
and what the policy names is removed from the client's sessions — signed notes never. Each
purge leaves a receipt: what was removed, when, by which rule, with content hashes."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import Engine, delete
from sqlmodel import Session, col, select

from scribe.db.queries import get_client_for_actor
from scribe.db.sealing.columns import vault_for
from scribe.db.sealing.envelope import Scope
from scribe.db.tables import (
    Client,
    Consent,
    DeletionReceipt,
    Draft,
    DraftChange,
    DraftSection,
    DraftSentence,
    Encounter,
    EncounterParticipant,
    Job,
    Note,
    Pseudonymization,
    Recording,
    RecordingChunk,
    Transcript,
    TranscriptSegment,
    User,
)
from scribe.domain.chart import cases_found
from scribe.domain.errors import InvalidInput, PermissionDenied
from scribe.domain.notes import EncounterStatus, JobKind, JobStatus, Role, content_sha256
from scribe.domain.redaction import SurrogateMap
from scribe.policies import Policies
from scribe.services import audit
from scribe.services.scrub import MediaTools, scrub_client_from_meetings

log = logging.getLogger("scribe.purge")

ENDED = {JobStatus.DONE, JobStatus.FAILED, JobStatus.STOPPED}


@dataclass
class Withdrawn:
    receipt: DeletionReceipt
    stale_files: list[str]  # recordings re-made without the client's case: remove once this commits


def withdraw(s: Session, key: bytes, policies: Policies, *, actor: User, client_id: int, function: str,
             tools: MediaTools, now: datetime) -> Withdrawn:
    """Record a withdrawal; stop what needs the consent; purge what the policy says from the
    client's sessions, and take their case out of the supervision meetings that discussed it;
    leave one receipt for all of it."""
    if actor.role == Role.ADMIN:
        raise PermissionDenied("withdrawals are recorded by the client's clinician or intake staff")
    client = get_client_for_actor(s, actor, client_id)
    if function not in policies.consent.functions:
        raise InvalidInput("no such consent")
    form = policies.consent.forms[function]
    s.add(Consent(client_id=client.id or 0, function=function, granted=False, captured_by=actor.id or 0,
                  captured_at=now, form_version=form.version,
                  form_text=f"Withdrawn: {policies.consent.functions[function]}", effective_from=now))
    stopped = _stop_jobs(s, policies, client.id or 0, function, now)
    rule = policies.consent.on_withdrawal[function]
    scrubbed, stale = scrub_client_from_meetings(s, client=client, parts=list(rule.supervision), tools=tools, now=now)
    receipt = purge(s, client_id=client.id or 0, artefacts=list(rule.purge), sessions=rule.sessions,
                    rule=f"consent withdrawn: {function}", function=function, actor_id=actor.id, now=now,
                    stopped=stopped, also=scrubbed)
    audit.record(s, key, now=now, actor_id=actor.id, action="consent.withdraw", object_type="client",
                 object_id=client.id, reason=function, content_sha256=receipt.receipt_sha256)
    if scrubbed:
        audit.record(s, key, now=now, actor_id=actor.id, action="supervision.scrub", object_type="client",
                     object_id=client.id, reason=f"{len({i['session_id'] for i in scrubbed})} meeting(s)")
    return Withdrawn(receipt, stale)


def _stop_jobs(s: Session, policies: Policies, client_id: int, function: str, now: datetime) -> list[int]:
    """Queued jobs whose step needs the function stop now; a running one stops at its commit,
    where consent is checked again inside the transaction that would write its output."""
    needs = {step for step, funcs in policies.consent.steps.items() if function in funcs}
    stopped: list[int] = []
    rows = s.exec(select(Job, Encounter).join(Encounter, col(Encounter.id) == Job.encounter_id)
                  .where(Encounter.client_id == client_id, col(Job.status).not_in(list(ENDED)))).all()
    for job, encounter in rows:
        step = JobKind.TRANSCRIBE.value if job.kind == JobKind.LIVE else job.kind  # live: a transcription
        if step not in needs:
            continue
        job.status, job.error, job.updated_at = JobStatus.STOPPED, f"consent withdrawn: {function}", now
        encounter.status, encounter.status_reason = EncounterStatus.STOPPED, f"consent withdrawn: {function}"
        encounter.updated_at = now
        s.add(job)
        s.add(encounter)
        stopped.append(encounter.id or 0)
    # A recording in progress stops (no more chunks, no more live transcription) when what it
    # needs goes: recording it, or transcribing it while it is made.
    if needs & {"record", JobKind.TRANSCRIBE.value}:
        for encounter in s.exec(select(Encounter).where(Encounter.client_id == client_id,
                                                        Encounter.status == EncounterStatus.RECORDING)):
            encounter.status, encounter.status_reason = EncounterStatus.STOPPED, f"consent withdrawn: {function}"
            encounter.updated_at = now
            s.add(encounter)
            stopped.append(encounter.id or 0)
            for job in s.exec(select(Job).where(Job.encounter_id == encounter.id, Job.kind == JobKind.LIVE)):
                job.status, job.error, job.updated_at = JobStatus.STOPPED, f"consent withdrawn: {function}", now
                s.add(job)
    return stopped


def _signed(s: Session, encounter_id: int) -> bool:
    return s.exec(select(Note).where(Note.encounter_id == encounter_id)).first() is not None


def purge(s: Session, *, client_id: int, artefacts: list[str], sessions: str, rule: str, function: str,
          actor_id: int | None, now: datetime, stopped: list[int] | None = None,
          also: list[dict[str, object]] | None = None) -> DeletionReceipt:
    """Remove the named artefacts from the client's sessions and write the receipt. Audio
    rows are marked purged here; their files go once this transaction has committed
    (sweep_files), so a rolled-back purge never loses a recording."""
    items: list[dict[str, object]] = []
    for encounter in s.exec(select(Encounter).where(Encounter.client_id == client_id).order_by(col(Encounter.id))):
        signed = _signed(s, encounter.id or 0)
        if (sessions == "signed" and not signed) or (sessions == "unsigned" and signed):
            continue
        for artefact in ("audio", "transcript", "draft"):
            if artefact in artefacts:
                items += purge_artefact(s, encounter.id or 0, artefact, now)
    if sessions == "all":  # every session's copy is gone: destroy the keys too (crypto-shredding)
        for kind in artefacts:
            items += shred_client_keys(s, client_id, kind, now)
    items += also or []
    if any(item.get("kept") for item in items):
        rule = f"{rule} (kept under legal hold: nothing deleted)"
    body = {"client_id": client_id, "rule": rule, "at": now.isoformat(), "items": items,
            "stopped_sessions": stopped or []}
    receipt = DeletionReceipt(client_id=client_id, rule=rule, function=function, at=now, by=actor_id,
                              items=items + [{"artefact": "stopped", "session_id": e} for e in (stopped or [])],
                              receipt_sha256=content_sha256(body))
    s.add(receipt)
    s.flush()
    log.info("purge receipt=%s client=%s items=%d", receipt.id, client_id, len(items))
    return receipt


def purge_encounter_audio(s: Session, *, client_id: int, encounter_id: int, rule: str, now: datetime) -> DeletionReceipt:
    """One session's audio, by a rule other than a withdrawal (at signing)."""
    items = purge_artefact(s, encounter_id, "audio", now)
    if any(item.get("kept") for item in items):
        rule = f"{rule} (kept under legal hold: nothing deleted)"
    receipt = DeletionReceipt(client_id=client_id, rule=rule, at=now, by=None, items=items,
                              receipt_sha256=content_sha256({"client_id": client_id, "rule": rule,
                                                             "at": now.isoformat(), "items": items}))
    s.add(receipt)
    s.flush()
    return receipt


def under_legal_hold(s: Session, encounter_id: int) -> bool:
    """Whether a session's material is preserved for litigation: its client is on hold. A
    supervision meeting is held if any client whose case it discussed is (before its
    transcript is pseudonymized that is not known yet: then any client of those present)."""
    encounter = s.get(Encounter, encounter_id)
    if encounter is None:
        return False
    if encounter.client_id is not None:
        client = s.get(Client, encounter.client_id)
        return client is not None and client.legal_hold
    p = s.exec(select(Pseudonymization).where(Pseudonymization.encounter_id == encounter_id)).first()
    if p is not None:
        cases = cases_found(SurrogateMap.from_json(p.surrogates))
        return any(c.legal_hold for c in s.exec(select(Client).where(col(Client.id).in_(cases))))
    people = [encounter.clinician_id, *s.exec(select(EncounterParticipant.user_id).where(
        EncounterParticipant.encounter_id == encounter_id)).all()]
    return s.exec(select(Client.id).where(col(Client.clinician_id).in_(people),
                                          col(Client.legal_hold).is_(True))).first() is not None


def purge_artefact(s: Session, encounter_id: int, artefact: str, now: datetime) -> list[dict[str, object]]:
    """Remove one kind of artefact (audio, transcript, draft) from one session; the items
    (hashes and counts, never content) go on the caller's receipt.

    The one primitive every purge goes through (withdrawal, retention, signing, void), so the
    legal hold is checked here and nowhere else: under a hold nothing is removed, and the
    item says so."""
    if artefact not in ("audio", "transcript", "draft"):
        raise ValueError(f"unknown artefact {artefact!r}")
    if under_legal_hold(s, encounter_id):
        log.info("purge kept session=%s artefact=%s reason=legal-hold", encounter_id, artefact)
        return [{"artefact": artefact, "session_id": encounter_id, "kept": "legal hold"}]
    if artefact == "audio":
        return _purge_audio(s, encounter_id, now)
    if artefact == "transcript":
        return _purge_transcript(s, encounter_id)
    return _purge_draft(s, encounter_id)


def shred_client_keys(s: Session, client_id: int, kind: str, now: datetime) -> list[dict[str, object]]:
    """Destroy a client's data keys of one kind (crypto-shredding), unless the client is on hold."""
    client = s.get(Client, client_id)
    if client is not None and client.legal_hold:
        return [{"artefact": f"{kind} encryption key", "session_id": None, "kept": "legal hold"}]
    vault = vault_for(s.get_bind())
    if vault.shred(s, Scope(f"client:{client_id}", kind), now):
        return [{"artefact": f"{kind} encryption key", "session_id": None, "destroyed": True}]
    return []


def _purge_audio(s: Session, eid: int, now: datetime) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    rec = s.exec(select(Recording).where(Recording.encounter_id == eid)).first()
    if rec is not None and rec.purged_at is None:
        rec.purged_at = now
        s.add(rec)
        out.append({"artefact": "audio", "session_id": eid, "sha256": rec.sha256, "bytes": rec.bytes})
    for chunk in s.exec(select(RecordingChunk).where(RecordingChunk.encounter_id == eid)).all():
        out.append({"artefact": "audio chunk", "session_id": eid, "sha256": chunk.sha256, "bytes": chunk.bytes})
        s.delete(chunk)
    return out


def _purge_transcript(s: Session, eid: int) -> list[dict[str, object]]:
    t = s.exec(select(Transcript).where(Transcript.encounter_id == eid)).first()
    out: list[dict[str, object]] = []
    if t is not None:
        segs = s.exec(select(TranscriptSegment).where(TranscriptSegment.transcript_id == t.id)
                      .order_by(col(TranscriptSegment.idx))).all()
        out.append({"artefact": "transcript", "session_id": eid, "segments": len(segs),
                    "sha256": content_sha256([[x.start, x.end, x.speaker, x.text] for x in segs])})
        s.execute(delete(TranscriptSegment).where(col(TranscriptSegment.transcript_id) == t.id))
        s.delete(t)
    p = s.exec(select(Pseudonymization).where(Pseudonymization.encounter_id == eid)).first()
    if p is not None:
        out.append({"artefact": "pseudonymized transcript and re-identification map", "session_id": eid,
                    "sha256": content_sha256({"lines": p.lines, "map": p.surrogates})})
        s.delete(p)
    return out


def _purge_draft(s: Session, eid: int) -> list[dict[str, object]]:
    out = _purge_notes(s, eid)
    d = s.exec(select(Draft).where(Draft.encounter_id == eid)).first()
    if d is None:
        return out
    sections = s.exec(select(DraftSection).where(DraftSection.draft_id == d.id)).all()
    item = {"artefact": "AI draft", "session_id": eid,
            "sha256": content_sha256({"ai": d.ai_sections, "sections": [[x.key, x.ai_text, x.text] for x in sections]})}
    for table in (DraftSentence, DraftSection, DraftChange):
        s.execute(delete(table).where(col(table.draft_id) == d.id))
    s.delete(d)
    return [*out, item]


def _purge_notes(s: Session, eid: int) -> list[dict[str, object]]:
    """The drafting model's notes on a long session's parts: model output, so they go with the draft."""
    t = s.exec(select(Transcript).where(Transcript.encounter_id == eid)).first()
    if t is None or not t.digests:
        return []
    item: dict[str, object] = {"artefact": "AI notes on the session's parts", "session_id": eid,
                               "parts": len(t.digests), "sha256": content_sha256(t.digests)}
    t.digests = None
    s.add(t)
    return [item]


ORPHAN_GRACE_SECONDS = 3600.0  # an upload writes its file before its row commits: never sweep a young file


def sweep_files(engine: Engine, recordings_dir: Path, *, now: float | None = None) -> int:
    """After commit: delete the files of recordings marked purged, recordings no row names
    any more (a session moved to another client left its old copy, sealed under the wrong
    client's key; a crash between an upload's file and its row), once older than an hour,
    and chunk files that no row lists any more (joined into a recording, or purged). A
    recording still being made is never touched, so a chunk written but not yet committed
    is safe."""
    removed = 0
    with Session(engine) as s:
        purged = [rec.path for rec in s.exec(select(Recording).where(col(Recording.purged_at).is_not(None)))]
        named = {rec.path for rec in s.exec(select(Recording))}
        live = {c.path for c in s.exec(select(RecordingChunk))}
        recording = {str(e.id) for e in s.exec(select(Encounter).where(Encounter.status == EncounterStatus.RECORDING))}
    for rel in purged:
        path = recordings_dir / rel
        if path.exists():
            path.unlink()
            removed += 1
    if recordings_dir.exists():
        cutoff = (time.time() if now is None else now) - ORPHAN_GRACE_SECONDS
        for path in recordings_dir.iterdir():
            if (path.is_file() and not path.name.startswith(".") and path.suffix != ".txt" and path.name not in named
                    and path.stat().st_mtime < cutoff):
                path.unlink()
                removed += 1
    chunks = recordings_dir / "chunks"
    if chunks.exists():
        for folder in chunks.iterdir():
            if folder.name in recording:
                continue
            for path in folder.glob("*.chunk"):
                if str(path.relative_to(recordings_dir)) not in live:
                    path.unlink()
                    removed += 1
    return removed


def remove_unreferenced(engine: Engine, recordings_dir: Path, paths: list[str]) -> int:
    """After commit: delete these recording files if no row names them (a moved session's
    copy sealed under the wrong client's key). A rolled-back move still names its file, so
    nothing it needs is removed."""
    with Session(engine) as s:
        named = {rec.path for rec in s.exec(select(Recording).where(col(Recording.path).in_(paths)))}
    removed = 0
    for rel in paths:
        path = recordings_dir / rel
        if rel not in named and path.exists():
            path.unlink()
            removed += 1
    return removed
