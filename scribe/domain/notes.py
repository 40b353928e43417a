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
    UPLOADED = "uploaded"
    TRANSCRIBING = "transcribing"
    PSEUDONYMIZING = "pseudonymizing"
    DRAFTING = "drafting"
    CHECKING = "checking"
    IN_REVIEW = "in_review"
    SIGNED = "signed"
    PENDING_COSIGN = "pending_cosign"
    FAILED = "failed"
    STOPPED = "stopped"  # consent lapsed or withdrawn


class JobKind(StrEnum):
    TRANSCRIBE = "transcribe"
    PSEUDONYMIZE = "pseudonymize"
    DRAFT = "draft"
    EVIDENCE = "evidence"


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


class LicenceStatus(StrEnum):
    LICENSED = "licensed"
    PRE_LICENSURE = "pre_licensure"
    INACTIVE = "inactive"


class VersionKind(StrEnum):
    ORIGINAL = "original"
    ADDENDUM = "addendum"
    AMENDMENT = "amendment"


SIGNATURE_MEANING = "Author: I reviewed and edited this AI-assisted draft; it reflects the session I provided."


def canonical_json(obj: Any) -> str:
    """Canonical JSON over NFC-normalised strings (sorted keys, no spaces)."""
    return json.dumps(_nfc(obj), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def content_sha256(obj: Any) -> str:
    return hashlib.sha256(canonical_json(obj).encode("utf-8")).hexdigest()


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

    def to_canonical(self) -> dict[str, Any]:
        return {
            "encounter_id": self.encounter_id,
            "note_type": self.note_type,
            "sections": [{"key": k, "title": t, "text": x} for k, t, x in self.sections],
            "signer_id": self.signer_id,
            "signed_at": self.signed_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "meaning": self.meaning,
        }

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
) -> Decision:
    """Only the session's own clinician, active, with a ready draft, every section reviewed
    and no open flags."""
    if not signer.active:
        return Decision.deny("account is disabled")
    if signer.role == Role.ADMIN:
        return Decision.deny("admins do not sign clinical notes")
    if signer.user_id != encounter_clinician_id:
        return Decision.deny("only the clinician who held the session may sign its note")
    if signer.licence_status == LicenceStatus.INACTIVE:
        return Decision.deny("licence is not active")
    if already_signed:
        return Decision.deny("this note is already signed; add an addendum instead")
    if not draft_ready:
        return Decision.deny("the draft is not ready for review yet")
    if unreviewed_sections:
        return Decision.deny(f"{unreviewed_sections} section(s) not yet reviewed (edit or save each one)")
    if unresolved_flags:
        return Decision.deny(f"{unresolved_flags} flag(s) must be resolved before signing")
    return Decision.allow("own session, every section reviewed, all flags resolved")


def status_after_signing(licence_status: LicenceStatus) -> EncounterStatus:
    """A pre-licensure clinician's signed note waits for the supervisor's co-signature."""
    if licence_status == LicenceStatus.PRE_LICENSURE:
        return EncounterStatus.PENDING_COSIGN
    return EncounterStatus.SIGNED
