"""Session, draft and note states; signature content hashing; who may sign."""

from __future__ import annotations

import hashlib
import json
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from scribe.domain.decision import Decision


class EncounterStatus(StrEnum):
    RECORDING = "recording"  # being recorded in the browser, chunk by chunk
    UPLOADED = "uploaded"
    TRANSCRIBING = "transcribing"
    PSEUDONYMIZING = "pseudonymizing"
    DRAFTING = "drafting"
    CHECKING = "checking"
    IN_REVIEW = "in_review"
    SIGNED = "signed"
    PENDING_COSIGN = "pending_cosign"
    RETURNED = "returned"  # the supervisor sent a supervisee's signed note back with comments
    FAILED = "failed"
    STOPPED = "stopped"  # consent lapsed or withdrawn
    VOIDED = "voided"  # recorded in error: its audio, transcript and draft purged with a receipt


class VoidReason(StrEnum):
    """Why a session is voided: a choice, never free text (it goes on the receipt and audit)."""

    WRONG_CLIENT = "recorded for the wrong client"
    DUPLICATE = "duplicate of another session"
    IN_ERROR = "recorded in error"
    NO_SHOW = "the client did not attend"
    TEST = "test recording"


class EncounterKind(StrEnum):
    THERAPY = "therapy"  # a clinician with a client
    SUPERVISION = "supervision"  # a supervisor with one supervisee (individual) or more (group)


class JobKind(StrEnum):
    TRANSCRIBE = "transcribe"
    PSEUDONYMIZE = "pseudonymize"
    DRAFT = "draft"
    EVIDENCE = "evidence"
    LIVE = "live"  # transcribing a recording while it is made (not a pipeline stage: it runs again
    # as pieces arrive, and the transcribe stage finishes what it left)


PIPELINE: tuple[JobKind, ...] = (
    JobKind.TRANSCRIBE,
    JobKind.PSEUDONYMIZE,
    JobKind.DRAFT,
    JobKind.EVIDENCE,
)

STATUS_WHILE_RUNNING = {
    JobKind.TRANSCRIBE: EncounterStatus.TRANSCRIBING,
    JobKind.PSEUDONYMIZE: EncounterStatus.PSEUDONYMIZING,
    JobKind.DRAFT: EncounterStatus.DRAFTING,
    JobKind.EVIDENCE: EncounterStatus.CHECKING,
}


# While a session is in one of these states the page keeps polling its status.
PROCESSING = frozenset({EncounterStatus.UPLOADED, *STATUS_WHILE_RUNNING.values()})


def next_stage(kind: JobKind) -> JobKind | None:
    i = PIPELINE.index(kind)
    return PIPELINE[i + 1] if i + 1 < len(PIPELINE) else None


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    STOPPED = "stopped"


class Role(StrEnum):
    CLINICIAN = "clinician"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"
    INTAKE = "intake"  # front desk: clients and consents, never clinical text


# The roles that read clinical content (sessions, transcripts, drafts, notes). Admins and
# intake staff never do: minimum necessary.
CLINICAL_ROLES = frozenset({Role.CLINICIAN, Role.SUPERVISOR})


class LicenceStatus(StrEnum):
    LICENSED = "licensed"
    PRE_LICENSURE = "pre_licensure"
    INACTIVE = "inactive"


class VersionKind(StrEnum):
    ORIGINAL = "original"
    REVISION = "revision"  # a supervisee's re-signed note after the supervisor returned it
    ADDENDUM = "addendum"  # added text; the version it follows stands unchanged
    AMENDMENT = "amendment"  # corrected text; the version it supersedes is shown marked "amended"


# The versions written from the AI draft (an original, or a supervisee's re-signed revision):
# they carry the edit figures and the hours, and a return reopens their draft. An addendum or an
# amendment is the clinician's own text.
FROM_AI_DRAFT = (VersionKind.ORIGINAL, VersionKind.REVISION)


class DraftStatus(StrEnum):
    DRAFTING = "drafting"  # the pipeline is still writing it
    READY = "ready"  # open for the author: never signed, or returned by the supervisor
    SIGNED = "signed"


class Resolution(StrEnum):
    """How a flagged draft sentence was settled ("" while it is open)."""

    EDITED = "edited"  # the clinician's edit took the claim out, or made it agree with what was said
    CONFIRMED = "confirmed"  # kept, with the clinician's reason
    RECHECKED = "rechecked"  # the checks no longer raise it once the voices were corrected


class CosignOutcome(StrEnum):
    COSIGNED = "cosigned"
    RETURNED = "returned"


class VersionState(StrEnum):
    RECORD = "record"
    PENDING_COSIGN = "pending_cosign"
    RETURNED = "returned"


SIGNATURE_MEANING = "Author: I reviewed and edited this AI-assisted draft; it reflects the session I provided."
SIGNATURE_MEANING_UNEDITED = ("Author: I reviewed this AI-assisted draft and changed nothing; it reflects the "
                              "session I provided.")


def signature_meaning(*, edited: bool) -> str:
    """What the signature says happened: "reviewed and edited" only when something was edited."""
    return SIGNATURE_MEANING if edited else SIGNATURE_MEANING_UNEDITED
AMENDMENT_MEANING = "Author: I made this correction to my signed note; the earlier version is kept unchanged."
ADDENDUM_MEANING = "Author: I added this to my signed note; the signed note is kept unchanged."
COSIGN_MEANING = "Supervisor: I reviewed this note by my supervisee and co-sign it."


def canonical_json(obj: Any) -> str:
    """Canonical JSON over NFC-normalised strings (sorted keys, no spaces)."""
    return json.dumps(_nfc(obj), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def content_sha256(obj: Any) -> str:
    return hashlib.sha256(canonical_json(obj).encode("utf-8")).hexdigest()


def utc_text(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def cosignature_sha256(*, version_sha256: str, outcome: str, supervisor_id: int, at: datetime, meaning: str,
                       comment: str) -> str:
    """What a co-signature (or a return) covers: the exact signed version, and the decision."""
    return content_sha256({"version_sha256": version_sha256, "outcome": outcome, "supervisor_id": supervisor_id,
                           "at": utc_text(at), "meaning": meaning, "comment": comment})


def _nfc(obj: Any) -> Any:
    if isinstance(obj, str):
        return unicodedata.normalize("NFC", obj)
    if isinstance(obj, dict):
        return {_nfc(k): _nfc(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_nfc(v) for v in obj]
    return obj


@dataclass(frozen=True)
class SignedContent:
    """Exactly what a signature covers."""

    encounter_id: int
    note_type: str
    sections: tuple[tuple[str, str, str], ...]  # (key, title, text)
    signer_id: int
    signed_at: datetime
    meaning: str
    kind: str = "original"
    supersedes_sha256: str = ""  # for a revision, addendum or amendment: the version it follows
    part2: bool = False  # a 42 CFR Part 2 record: the tag is part of what is signed
    service: dict[str, Any] | None = None  # time, place, type, code and chart diagnoses of the service

    def to_canonical(self) -> dict[str, Any]:
        content: dict[str, Any] = {
            "encounter_id": self.encounter_id,
            "note_type": self.note_type,
            "sections": [{"key": k, "title": t, "text": x} for k, t, x in self.sections],
            "signer_id": self.signer_id,
            "signed_at": utc_text(self.signed_at),
            "meaning": self.meaning,
        }
        if self.kind != "original":
            content.update(kind=self.kind, supersedes_sha256=self.supersedes_sha256)
        if self.part2:
            content["part2"] = True
        if self.service:
            content["service"] = self.service
        return content

    def sha256(self) -> str:
        return content_sha256(self.to_canonical())


@dataclass(frozen=True)
class SignerFacts:
    user_id: int
    role: Role
    licence_status: LicenceStatus
    active: bool


def can_sign(
    *,
    signer: SignerFacts,
    encounter_clinician_id: int,
    draft_ready: bool,
    already_signed: bool,
    unresolved_flags: int,
    unreviewed_sections: int = 0,
    service_problem: str = "",
) -> Decision:
    """Only the session's own clinician, active, with a ready draft, every section reviewed,
    no open flags, and (for a billed service) its time, place and code confirmed."""
    if not signer.active:
        return Decision.deny("account is disabled")
    if signer.role == Role.ADMIN:
        return Decision.deny("admins do not sign clinical notes")
    if signer.user_id != encounter_clinician_id:
        return Decision.deny("only the clinician who held the session may sign its note")
    if signer.licence_status == LicenceStatus.INACTIVE:
        return Decision.deny("licence is not active")
    if already_signed:
        return Decision.deny("this note is already signed (or awaiting co-signature); add an addendum instead")
    if not draft_ready:
        return Decision.deny("the draft is not ready for review yet")
    if unreviewed_sections:
        return Decision.deny(f"{unreviewed_sections} section(s) not yet reviewed (edit or save each one)")
    if unresolved_flags:
        return Decision.deny(f"{unresolved_flags} flag(s) must be resolved before signing")
    if service_problem:
        return Decision.deny(f"the service is not confirmed: {service_problem}")
    return Decision.allow("own session, every section reviewed, all flags resolved")



def version_state(requires_cosign: bool, outcome: str | None) -> VersionState:
    """A version signed by a licensed clinician is a record at once; a supervisee's only once
    co-signed. Returned versions stay in the history, never as a record."""
    if outcome == CosignOutcome.RETURNED:
        return VersionState.RETURNED
    if requires_cosign and outcome != CosignOutcome.COSIGNED:
        return VersionState.PENDING_COSIGN
    return VersionState.RECORD


def status_from_versions(states: list[tuple[str, VersionState]]) -> EncounterStatus:
    """The session's status follows from its versions, oldest first: anything pending is
    pending; else a record is signed; else a returned original goes back to its author."""
    if any(st == VersionState.PENDING_COSIGN for _, st in states):
        return EncounterStatus.PENDING_COSIGN
    if any(st == VersionState.RECORD for _, st in states):
        return EncounterStatus.SIGNED
    if states:
        return EncounterStatus.RETURNED
    return EncounterStatus.IN_REVIEW


def can_cosign(*, supervisor: SignerFacts, author_supervisor_id: int | None, state: VersionState,
               is_latest: bool) -> Decision:
    if not supervisor.active:
        return Decision.deny("account is disabled")
    if supervisor.role != Role.SUPERVISOR or supervisor.licence_status != LicenceStatus.LICENSED:
        return Decision.deny("only a licensed supervisor co-signs")
    if author_supervisor_id != supervisor.user_id:
        return Decision.deny("only the author's own supervisor co-signs")
    if state != VersionState.PENDING_COSIGN:
        return Decision.deny(f"this version is not awaiting co-signature (it is {state.value.replace('_', ' ')})")
    if not is_latest:
        return Decision.deny("a newer version of this note was signed since; review that one")
    return Decision.allow("supervisor of the author, version awaiting co-signature")


def can_correct(*, signer: SignerFacts, author_id: int, has_record: bool, pending: bool) -> Decision:
    """Addenda and amendments: by the note's author, to a record, one at a time."""
    if not signer.active:
        return Decision.deny("account is disabled")
    if signer.user_id != author_id:
        return Decision.deny("only the note's author adds an addendum or amendment")
    if signer.licence_status == LicenceStatus.INACTIVE:
        return Decision.deny("licence is not active")
    if not has_record:
        return Decision.deny("the note is not a record yet; it can be corrected once signed (and co-signed)")
    if pending:
        return Decision.deny("an earlier correction is still awaiting co-signature")
    return Decision.allow("author correcting a signed record")
