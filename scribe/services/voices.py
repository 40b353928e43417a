"""Voices: a clinician's enrolled voice, and correcting a session's speaker labels.

Enrolling: the clinician records a short sample once; its voice embedding (sealed, biometric)
tells the speaker turns which voice is theirs, so that is no longer a guess from who spoke
first. Swapping: when the turns still came out wrong, one click swaps two voices' labels in
the transcript and in what the drafting model saw, and the checks that depend on who said
what (risk polarity, a report placed as an observation, contradictions, a risk not addressed)
run again on the note as it stands."""

from __future__ import annotations

import math
from datetime import datetime

from sqlmodel import Session, col, select

from scribe.db.tables import Draft, DraftSection, DraftSentence, Pseudonymization, Transcript, TranscriptSegment, User
from scribe.domain.errors import Conflict, InvalidInput
from scribe.domain.evidence import check_draft, split_sentences
from scribe.domain.notes import EncounterKind, Resolution
from scribe.domain.transcript import Speaker
from scribe.policies import Policies
from scribe.services import audit
from scribe.services.pipeline import load_segments
from scribe.services.review import check_version, claim_version, editable_draft

VOICE_SIZE = 256


def enrol(s: Session, key: bytes, *, user: User, voice: tuple[float, ...], now: datetime) -> None:
    """Keep the clinician's voice (replacing an earlier one)."""
    if len(voice) != VOICE_SIZE or not all(math.isfinite(x) for x in voice):
        raise InvalidInput("the voice sample could not be used")
    user.voice, user.voice_enrolled_at = [float(x) for x in voice], now
    s.add(user)
    audit.record(s, key, now=now, actor_id=user.id, action="voice.enrol", object_type="user", object_id=user.id)


def remove(s: Session, key: bytes, *, user: User, now: datetime) -> None:
    user.voice, user.voice_enrolled_at = None, None
    s.add(user)
    audit.record(s, key, now=now, actor_id=user.id, action="voice.remove", object_type="user", object_id=user.id)


def swap(s: Session, key: bytes, policies: Policies, *, actor: User, encounter_id: int, first: str, second: str,
         lock_version: int, now: datetime) -> Draft:
    """Swap two voices' labels everywhere the session holds them, then check the note again."""
    try:
        a, b = Speaker(first), Speaker(second)
    except ValueError:
        raise InvalidInput("choose two of the session's voices") from None
    if a == b or Speaker.UNKNOWN in (a, b):
        raise InvalidInput("choose two different voices to swap")
    encounter, draft = editable_draft(s, actor, encounter_id)
    check_version(s, draft, lock_version)
    transcript = s.exec(select(Transcript).where(Transcript.encounter_id == encounter.id)).first()
    if transcript is None:
        raise Conflict("this session has no transcript")
    claim_version(s, draft, lock_version, actor, f"swapped the voices {a.label.lower()} and {b.label.lower()}", now)
    swapped = {a.value: b.value, b.value: a.value}
    for row in s.exec(select(TranscriptSegment).where(TranscriptSegment.transcript_id == transcript.id)).all():
        if row.speaker in swapped:
            row.speaker = swapped[row.speaker]
            s.add(row)
    pseudo = s.exec(select(Pseudonymization).where(Pseudonymization.encounter_id == encounter.id)).first()
    if pseudo is not None:
        labels = {f"{a.label}: ": f"{b.label}: ", f"{b.label}: ": f"{a.label}: "}
        pseudo.lines = [next((labels[p] + line[len(p):] for p in labels if line.startswith(p)), line)
                        for line in pseudo.lines]
        s.add(pseudo)
    s.flush()
    if encounter.kind != EncounterKind.SUPERVISION:
        _recheck(s, policies, draft, encounter.note_type, encounter.id or 0, actor, now)
    audit.record(s, key, now=now, actor_id=actor.id, action="transcript.voices.swap", object_type="encounter",
                 object_id=encounter.id, reason=f"draft #{draft.id}: {a.value} <-> {b.value}")
    return draft


def _recheck(s: Session, policies: Policies, draft: Draft, note_type: str, encounter_id: int, actor: User,
             now: datetime) -> None:
    """The checks again, on the note as it stands, against the corrected transcript. An open
    flag they no longer raise is closed as rechecked; one they now raise is opened; a flag the
    clinician confirmed with a reason stays as it was."""
    segments = load_segments(s, encounter_id)
    template = policies.template(note_type)
    model_keys = {x.key for x in template.sections if x.source == "model"}
    sections = s.exec(select(DraftSection).where(DraftSection.draft_id == draft.id)
                      .order_by(col(DraftSection.position))).all()
    pairs = [(sec.key, sentence) for sec in sections if sec.key in model_keys for sentence in split_sentences(sec.text)]
    checked = check_draft(pairs, segments, observed=template.observed_sections, medicines=policies.pipeline.medicines)
    found = {(c.section, c.text): c for c in checked.sentences if c.flags}
    raised = {k: [f.to_json() for f in c.flags] for k, c in found.items()}
    sentences = s.exec(select(DraftSentence).where(DraftSentence.draft_id == draft.id)).all()
    known = {(x.section_key, x.text) for x in sentences}
    for sent in sentences:
        if sent.resolution:
            continue
        now_raised = raised.get((sent.section_key, sent.text))
        if now_raised:
            sent.flags = now_raised
        elif sent.flags:
            sent.resolution, sent.resolved_by, sent.resolved_at = Resolution.RECHECKED, actor.id, now
        s.add(sent)
    idx = max((x.idx for x in sentences), default=-1) + 1
    for (section, text), flags in raised.items():
        if (section, text) not in known:
            s.add(DraftSentence(draft_id=draft.id or 0, section_key=section, idx=idx, text=text, flags=flags,
                                evidence=list(found[section, text].evidence), support=found[section, text].score))
            idx += 1
    kept = [f for f in draft.draft_flags if f.get("resolution") or f.get("kind") == "case_left_out"]
    confirmed = {(f.get("kind"), f.get("category")) for f in kept}
    draft.draft_flags = kept + [f.to_json() for f in checked.draft_flags
                                if (f.kind.value, f.category or None) not in confirmed]
    s.add(draft)
