from datetime import UTC, datetime
from typing import Any

from scribe.domain.decision import Decision
from scribe.domain.notes import (
    EncounterStatus,
    LicenceStatus,
    Role,
    SignedContent,
    SignerFacts,
    can_sign,
    status_from_versions,
    version_state,
)

ADA = SignerFacts(1, Role.CLINICIAN, LicenceStatus.LICENSED, True)


def decide(signer: SignerFacts = ADA, **kw: Any) -> Decision:
    args: dict[str, Any] = {"encounter_clinician_id": 1, "draft_ready": True, "already_signed": False,
                            "unresolved_flags": 0}
    args.update(kw)
    return can_sign(signer=signer, **args)


def test_the_sessions_clinician_may_sign_a_clean_draft() -> None:
    assert decide().allowed


def test_it_refuses_signoff_with_unresolved_flags() -> None:
    d = decide(unresolved_flags=2)
    assert not d.allowed and "2 flag" in d.reason


def test_it_refuses_signoff_with_unreviewed_sections() -> None:
    d = decide(unreviewed_sections=1)
    assert not d.allowed and "not yet reviewed" in d.reason


def test_it_refuses_another_clinicians_note() -> None:
    assert not decide(encounter_clinician_id=7).allowed


def test_admins_and_disabled_accounts_never_sign() -> None:
    assert not decide(SignerFacts(1, Role.ADMIN, LicenceStatus.LICENSED, True)).allowed
    assert not decide(SignerFacts(1, Role.CLINICIAN, LicenceStatus.LICENSED, False)).allowed


def test_a_signed_note_cannot_be_signed_again() -> None:
    assert not decide(already_signed=True).allowed


def test_a_supervisees_note_waits_for_cosignature() -> None:
    # signed by a pre-licensure clinician: requires_cosign; by a licensed one: a record at once
    assert status_from_versions([("original", version_state(True, None))]) == EncounterStatus.PENDING_COSIGN
    assert status_from_versions([("original", version_state(False, None))]) == EncounterStatus.SIGNED


def test_the_content_hash_covers_every_signed_field() -> None:
    at = datetime(2026, 11, 2, 15, 0, tzinfo=UTC)
    base = SignedContent(1, "soap", (("s", "Subjective", "Slept well."),), 1, at, "Author")
    assert base.sha256() == SignedContent(1, "soap", (("s", "Subjective", "Slept well."),), 1, at, "Author").sha256()
    assert base.sha256() != SignedContent(1, "soap", (("s", "Subjective", "Slept badly."),), 1, at, "Author").sha256()
    assert base.sha256() != SignedContent(1, "soap", (("s", "Subjective", "Slept well."),), 2, at, "Author").sha256()
