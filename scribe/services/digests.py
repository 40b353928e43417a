"""A long session's notes, part by part (scribe.domain.digest): taken by the live job while
the session is recorded, and at the draft stage for whatever is not noted yet.

Only what the drafting model may see is noted: each part is cut from the pseudonymized
transcript (a PseudonymizedTranscript, which only a Redactor makes). Notes are taken only by a
drafter on this host, only for a client whose consent covers drafting, and never for a
supervision meeting (its cases are left out at its own stage). They are stored sealed with the
transcript and removed with it, and with the draft (scribe.services.purge.purge_artefact), since
they are model output.

Two writers can touch them: the live job (under its lease) and the draft stage's commit. A note
lost to the transcribe stage rewriting the transcript at the same moment is only made again at
the draft stage: a note is used only for the words it was made from."""

from __future__ import annotations

import dataclasses
import logging
from typing import TYPE_CHECKING

from sqlmodel import Session, select

from scribe.db.engine import session_scope
from scribe.db.tables import Encounter, Job, Transcript
from scribe.domain.digest import TIME_SLACK, Digest, Part, fingerprint, plan
from scribe.domain.notes import EncounterKind, EncounterStatus, JobKind
from scribe.engines.protocols import Deadline, Drafter, PseudonymizedTranscript
from scribe.services.consent import check_step
from scribe.services.jobs import hold_lease

if TYPE_CHECKING:
    from scribe.runtime import Runtime

log = logging.getLogger("scribe.digests")


@dataclasses.dataclass(frozen=True)
class Reading:
    """What a note is written from: the notes on the earlier parts and the verbatim rest."""

    rest: PseudonymizedTranscript
    earlier: tuple[str, ...]
    digests: tuple[Digest, ...]  # every part's, in order (to store)
    made: int  # parts noted now
    reused: int  # parts noted while the session was recorded
    prompt_tokens: int
    generated_tokens: int
    seconds: float


def enabled(rt: Runtime, encounter: Encounter, drafter: Drafter) -> bool:
    return (rt.policies.pipeline.digest_part_chars > 0 and drafter.digests and not drafter.leaves_host
            and encounter.kind != EncounterKind.SUPERVISION)


def stored(transcript: Transcript | None) -> tuple[Digest, ...]:
    if transcript is None or not transcript.digests:
        return ()
    return tuple(Digest.from_json(d) for d in transcript.digests)


def part_of(transcript: PseudonymizedTranscript, first: int, last: int | None = None) -> PseudonymizedTranscript:
    """Segments ``first``..``last`` of a pseudonymized transcript (still one the redactor made)."""
    end = len(transcript.segments) if last is None else last + 1
    return dataclasses.replace(transcript, lines=transcript.lines[first:end], segments=transcript.segments[first:end])


def _note(drafter: Drafter, transcript: PseudonymizedTranscript, part: Part,
          deadline: Deadline | None) -> tuple[Digest, int, int, float]:
    piece = part_of(transcript, part.first, part.last)
    result = drafter.digest(piece, deadline)
    digest = Digest(piece.segments[0].start, piece.segments[-1].end, fingerprint(piece.segments), result.text,
                    drafter.name)
    return digest, result.prompt_tokens, result.generated_tokens, result.seconds


def read(drafter: Drafter, transcript: PseudonymizedTranscript, have: tuple[Digest, ...], *, part_chars: int,
         deadline: Deadline | None) -> Reading:
    """The parts noted (reusing what still matches its words, noting the rest now) and the rest.
    A last part not noted yet is read verbatim with the rest (noting it would cost more)."""
    p = plan(transcript.segments, have, part_chars=part_chars)
    parts, tail = list(p.parts), p.tail
    if parts and parts[-1].digest is None:
        tail = parts.pop().first
    if not parts:
        return Reading(transcript, (), (), 0, 0, 0, 0, 0.0)
    notes: list[Digest] = []
    made = prompt = generated = 0
    seconds = 0.0
    for part in parts:
        if part.digest is not None:
            notes.append(part.digest)
            continue
        if deadline is not None:
            deadline.check()
        digest, n_prompt, n_generated, took = _note(drafter, transcript, part, deadline)
        notes.append(digest)
        made, prompt, generated, seconds = made + 1, prompt + n_prompt, generated + n_generated, seconds + took
    return Reading(part_of(transcript, tail), tuple(d.text for d in notes), tuple(notes), made,
                   len(notes) - made, prompt, generated, seconds)


def live_step(rt: Runtime, job: Job) -> bool:
    """While the session is recorded: note the next whole part of what is committed, if there is
    one. True when a part was noted (the live job then runs again)."""
    from scribe.services.pipeline import known_for, load_segments

    engines = rt.require_engines()
    drafter, part_chars = engines.drafter, rt.policies.pipeline.digest_part_chars
    with session_scope(rt.engine) as s:
        encounter = s.get(Encounter, job.encounter_id)
        if encounter is None or encounter.status != EncounterStatus.RECORDING or not enabled(rt, encounter, drafter):
            return False
        if not check_step(s, rt.policies, client_id=encounter.client_id or 0, step=JobKind.DRAFT.value,
                          now=rt.clock()):
            return False  # no drafting consent: nothing is read by the model
        have = stored(s.exec(select(Transcript).where(Transcript.encounter_id == job.encounter_id)).first())
        segments = load_segments(s, job.encounter_id)
        known = known_for(s, encounter)
    noted_until = max((d.end for d in have), default=0.0)
    if sum(len(x.text) for x in segments) < 2 * part_chars or \
            sum(len(x.text) for x in segments if x.start >= noted_until - TIME_SLACK) < part_chars:
        return False
    transcript = engines.redactor.pseudonymize(segments, known)
    todo = next((x for x in plan(transcript.segments, have, part_chars=part_chars).parts if x.digest is None), None)
    if todo is None:
        return False
    deadline = Deadline.after(rt.policies.pipeline.timeouts.draft_seconds, "note-taking")
    digest, n_prompt, n_generated, took = _note(drafter, transcript, todo, deadline)
    _keep(rt, job, digest)
    log.info("live job %s part noted encounter=%s until=%.1f prompt=%s generated=%s seconds=%.1f", job.id,
             job.encounter_id, digest.end, n_prompt, n_generated, took)
    return True


def _keep(rt: Runtime, job: Job, digest: Digest) -> None:
    """Store a part's notes with the transcript, in place of any older notes on the same start."""
    now = rt.clock()
    with session_scope(rt.engine) as s:
        hold_lease(s, job, now)
        encounter = s.get(Encounter, job.encounter_id)
        if encounter is None or not check_step(s, rt.policies, client_id=encounter.client_id or 0,
                                               step=JobKind.DRAFT.value, now=now):
            return
        transcript = s.exec(select(Transcript).where(Transcript.encounter_id == job.encounter_id)).first()
        if transcript is None:
            return
        kept = [d for d in stored(transcript) if abs(d.start - digest.start) > TIME_SLACK]
        transcript.digests = [d.to_json() for d in sorted([*kept, digest], key=lambda d: d.start)]
        s.add(transcript)


def keep_all(s: Session, encounter_id: int, digests: tuple[Digest, ...]) -> None:
    """At the draft stage's commit: the notes the draft was written from, for a retry to reuse."""
    transcript = s.exec(select(Transcript).where(Transcript.encounter_id == encounter_id)).first()
    if transcript is not None and digests:
        transcript.digests = [d.to_json() for d in digests]
        s.add(transcript)
