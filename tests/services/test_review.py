"""Review and sign-off: refusals, signatures, immutability of signed versions."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DatabaseError
from sqlmodel import Session, select

from scribe.db.engine import session_scope
from scribe.db.tables import AuditEvent, Draft, DraftSection, Encounter, NoteVersion, User
from scribe.domain.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from scribe.domain.notes import EncounterStatus
from scribe.runtime import Runtime
from scribe.services import audit, review
from tests.conftest import PASSWORD, Fakes, Practice
from tests.helpers import TRANSCRIPT, reload, run_pipeline, upload


def ready(runtime: Runtime, actor: User, client_id: int | None, wav: bytes, transcript: str = TRANSCRIPT) -> Encounter:
    encounter = upload(runtime, actor, client_id, wav, transcript=transcript)
    run_pipeline(runtime)
    return encounter


def view(runtime: Runtime, actor: User, encounter: Encounter) -> review.ReviewView:
    with session_scope(runtime.engine) as s:
        return review.review_view(
            s, runtime.audit_key, runtime.policies, actor=actor, encounter_id=encounter.id or 0, now=runtime.clock()
        )


def lock(v: review.ReviewView) -> int:
    """The draft's version as this page has it."""
    assert v.draft is not None
    return v.draft.lock_version


def draft_lock(runtime: Runtime, actor: User, encounter: Encounter) -> int:
    """The draft's version as the review page has it (for a save or a sign from that page)."""
    draft = view(runtime, actor, encounter).draft
    assert draft is not None
    return draft.lock_version


def review_all(runtime: Runtime, actor: User, encounter: Encounter) -> int:
    """Save every section unchanged: the clinician marks it reviewed."""
    v = view(runtime, actor, encounter)
    version = lock(v)
    for section in v.sections:
        with session_scope(runtime.engine) as s:
            version = review.save_section(s, runtime.audit_key, medicines=runtime.policies.pipeline.medicines,
                                          actor=actor, encounter_id=encounter.id or 0,
                                          section_key=section.key, text=section.text, lock_version=version,
                                          now=runtime.clock()).lock_version
    return version


def resolve_all(runtime: Runtime, actor: User, encounter: Encounter) -> int:
    review_all(runtime, actor, encounter)
    v = view(runtime, actor, encounter)
    version = lock(v)
    for flag in v.open_flags:
        with session_scope(runtime.engine) as s:
            version = review.resolve_flag(s, runtime.audit_key, actor=actor, encounter_id=encounter.id or 0, target=flag.target,
                                          reason="checked against the recording", lock_version=version,
                                          now=runtime.clock()).lock_version
    return version


def sign(runtime: Runtime, actor: User, encounter: Encounter, lock_version: int, password: str = PASSWORD,
         attested: bool = True) -> NoteVersion:
    with session_scope(runtime.engine) as s:
        return review.sign(s, runtime.audit_key, runtime.policies, actor=actor, encounter_id=encounter.id or 0,
                           password=password, attested=attested, lock_version=lock_version, now=runtime.clock())


def test_it_refuses_signoff_with_unresolved_flags(runtime: Runtime, practice: Practice, wav: bytes, fakes: Fakes) -> None:
    fakes.drafter.extra_sentence = "The client adopted a parrot named Captain."
    encounter = ready(runtime, practice.dr_ada, practice.maya.id, wav)
    version = review_all(runtime, practice.dr_ada, encounter)
    v = view(runtime, practice.dr_ada, encounter)
    assert v.open_flags and not v.can_sign.allowed
    with pytest.raises(PermissionDenied, match="flag"):
        sign(runtime, practice.dr_ada, encounter, version)
    with session_scope(runtime.engine) as s:
        assert s.exec(select(NoteVersion)).first() is None
        assert s.exec(select(AuditEvent).where(AuditEvent.action == "note.sign.refused")).first() is not None


def test_a_clinician_signs_after_resolving_flags(runtime: Runtime, practice: Practice, wav: bytes) -> None:
    encounter = ready(runtime, practice.dr_ada, practice.maya.id, wav)
    version = resolve_all(runtime, practice.dr_ada, encounter)
    signed = sign(runtime, practice.dr_ada, encounter, version)
    assert signed.signer_name == practice.dr_ada.full_name and signed.signer_credential == "LCSW"
    assert signed.signer_licence_number == practice.dr_ada.licence_number
    assert signed.signed_at == runtime.clock() and signed.meaning.startswith("Author")
    assert review.verify_version(signed)
    assert reload(runtime, encounter).status == EncounterStatus.SIGNED


def test_editing_a_flagged_sentence_out_resolves_it(runtime: Runtime, practice: Practice, wav: bytes, fakes: Fakes) -> None:
    fakes.drafter.extra_sentence = "The client adopted a parrot named Captain."
    encounter = ready(runtime, practice.dr_ada, practice.maya.id, wav)
    v = view(runtime, practice.dr_ada, encounter)
    first = v.sections[0]
    with session_scope(runtime.engine) as s:
        review.save_section(s, runtime.audit_key, medicines=runtime.policies.pipeline.medicines,
                            actor=practice.dr_ada, encounter_id=encounter.id or 0, section_key=first.key,
                            text=first.text.replace("The client adopted a parrot named Captain.", ""),
                            lock_version=lock(v), now=runtime.clock())
    after = view(runtime, practice.dr_ada, encounter)
    assert not any("parrot" in f.sentence for f in after.open_flags)


def test_it_refuses_signoff_until_every_section_is_reviewed(runtime: Runtime, practice: Practice, wav: bytes) -> None:
    encounter = ready(runtime, practice.dr_ada, practice.maya.id, wav)
    v = view(runtime, practice.dr_ada, encounter)
    version = lock(v)
    for flag in v.open_flags:
        with session_scope(runtime.engine) as s:
            version = review.resolve_flag(s, runtime.audit_key, actor=practice.dr_ada, encounter_id=encounter.id or 0,
                                          target=flag.target, reason="checked", lock_version=version,
                                          now=runtime.clock()).lock_version
    with pytest.raises(PermissionDenied, match="not yet reviewed"):
        sign(runtime, practice.dr_ada, encounter, version)


def test_signing_needs_the_password_and_the_attestation(runtime: Runtime, practice: Practice, wav: bytes) -> None:
    encounter = ready(runtime, practice.dr_ada, practice.maya.id, wav)
    version = resolve_all(runtime, practice.dr_ada, encounter)
    with pytest.raises(PermissionDenied, match="password"):
        sign(runtime, practice.dr_ada, encounter, version, password="wrong password!")
    with pytest.raises(InvalidInput, match="attestation"):
        sign(runtime, practice.dr_ada, encounter, version, attested=False)


def test_nobody_else_may_sign_or_edit(runtime: Runtime, practice: Practice, wav: bytes) -> None:
    encounter = ready(runtime, practice.dr_ada, practice.maya.id, wav)
    version = resolve_all(runtime, practice.dr_ada, encounter)
    for other in (practice.dr_cole, practice.eve, practice.root, practice.dr_ben):
        with pytest.raises(NotFound):
            sign(runtime, other, encounter, version)


def test_a_supervisor_reads_but_cannot_sign_a_supervisees_note(runtime: Runtime, practice: Practice, wav: bytes) -> None:
    encounter = ready(runtime, practice.sam, practice.priya.id, wav)
    version = resolve_all(runtime, practice.sam, encounter)
    assert view(runtime, practice.dr_ben, encounter).access.reason == "supervisee's session"
    with pytest.raises(PermissionDenied):
        sign(runtime, practice.dr_ben, encounter, version)


def test_a_supervisees_signed_note_is_pending_until_cosigned(runtime: Runtime, practice: Practice, wav: bytes) -> None:
    encounter = ready(runtime, practice.sam, practice.priya.id, wav)
    version = resolve_all(runtime, practice.sam, encounter)
    sign(runtime, practice.sam, encounter, version)
    assert reload(runtime, encounter).status == EncounterStatus.PENDING_COSIGN


def test_a_stale_save_or_sign_is_a_conflict_not_a_lost_update(runtime: Runtime, practice: Practice, wav: bytes) -> None:
    encounter = ready(runtime, practice.dr_ada, practice.maya.id, wav)
    v = view(runtime, practice.dr_ada, encounter)
    stale = lock(v)
    with session_scope(runtime.engine) as s:
        review.save_section(s, runtime.audit_key, medicines=runtime.policies.pipeline.medicines,
                            actor=practice.dr_ada, encounter_id=encounter.id or 0,
                            section_key=v.sections[0].key, text="First tab's text.", lock_version=stale,
                            now=runtime.clock())
    with pytest.raises(Conflict, match="changed"), session_scope(runtime.engine) as s:
        review.save_section(s, runtime.audit_key, medicines=runtime.policies.pipeline.medicines,
                            actor=practice.dr_ada, encounter_id=encounter.id or 0,
                            section_key=v.sections[0].key, text="Second tab's text.", lock_version=stale,
                            now=runtime.clock())
    assert view(runtime, practice.dr_ada, encounter).sections[0].text == "First tab's text."
    with pytest.raises(Conflict):
        sign(runtime, practice.dr_ada, encounter, stale)


def signed_session(runtime: Runtime, practice: Practice, wav: bytes) -> tuple[Encounter, NoteVersion]:
    encounter = ready(runtime, practice.dr_ada, practice.maya.id, wav)
    return encounter, sign(runtime, practice.dr_ada, encounter, resolve_all(runtime, practice.dr_ada, encounter))


def signed_version(runtime: Runtime, practice: Practice, wav: bytes) -> NoteVersion:
    return signed_session(runtime, practice, wav)[1]


def test_a_signed_version_cannot_change_through_the_orm(runtime: Runtime, practice: Practice, wav: bytes) -> None:
    from scribe.domain.errors import ImmutableRecord

    signed = signed_version(runtime, practice, wav)
    with pytest.raises(ImmutableRecord, match="append-only"), Session(runtime.engine) as s:
        row = s.get_one(NoteVersion, signed.id)
        row.content = {"sections": [{"text": "rewritten"}]}
        s.add(row)
        s.commit()
    with pytest.raises(ImmutableRecord), Session(runtime.engine) as s:
        s.delete(s.get(NoteVersion, signed.id))
        s.commit()
    # Past the app's guard (a bulk UPDATE does not flush objects), the database refuses it.
    with pytest.raises(DatabaseError, match="append-only"), Session(runtime.engine) as s:
        from sqlalchemy import update

        s.execute(update(NoteVersion).values(content_sha256="forged"))
        s.commit()


@pytest.mark.parametrize("sql", [
    "UPDATE note_versions SET content_sha256 = 'x'",
    "DELETE FROM note_versions",
    "UPDATE audit_events SET reason = 'x'",
    "DELETE FROM audit_events",
])
def test_signed_versions_and_audit_rows_refuse_raw_sql(runtime: Runtime, practice: Practice, wav: bytes,
                                                       sql: str) -> None:
    signed_version(runtime, practice, wav)
    with pytest.raises(DatabaseError, match="append-only"), runtime.engine.begin() as conn:
        conn.execute(text(sql))


def test_a_signed_note_cannot_be_signed_or_edited_again(runtime: Runtime, practice: Practice, wav: bytes) -> None:
    encounter, signed = signed_session(runtime, practice, wav)
    with session_scope(runtime.engine) as s:
        draft = s.exec(select(Draft)).one()
    with pytest.raises(Conflict):
        sign(runtime, practice.dr_ada, encounter, draft.lock_version)
    with pytest.raises(Conflict), session_scope(runtime.engine) as s:
        review.save_section(s, runtime.audit_key, medicines=runtime.policies.pipeline.medicines,
                            actor=practice.dr_ada, encounter_id=encounter.id or 0, section_key="plan",
                            text="changed", lock_version=draft.lock_version, now=runtime.clock())
    assert signed.id is not None


def test_the_audit_chain_verifies_after_a_full_session(runtime: Runtime, practice: Practice, wav: bytes) -> None:
    signed_version(runtime, practice, wav)
    with session_scope(runtime.engine) as s:
        assert audit.verify(s, runtime.audit_key) == []
        actions = {e.action for e in s.exec(select(AuditEvent)).all()}
    assert {"recording.upload", "encounter.read", "note.sign", "pipeline.draft"} <= actions


def test_the_signature_says_edited_only_when_something_was_edited(runtime: Runtime, practice: Practice, wav: bytes) -> None:
    """Issue 15: the attestation follows what happened (both branches)."""
    untouched = ready(runtime, practice.dr_ada, practice.maya.id, wav)
    signed = sign(runtime, practice.dr_ada, untouched, resolve_all(runtime, practice.dr_ada, untouched))
    assert "changed nothing" in signed.meaning and "edited" not in signed.meaning and signed.zero_edit
    edited = ready(runtime, practice.dr_ada, practice.maya.id, wav)
    v = view(runtime, practice.dr_ada, edited)
    with session_scope(runtime.engine) as s:
        review.save_section(s, runtime.audit_key, medicines=runtime.policies.pipeline.medicines,
                            actor=practice.dr_ada, encounter_id=edited.id or 0,
                            section_key=v.sections[0].key, text=v.sections[0].text + " Client arrived on time.",
                            lock_version=lock(v), now=runtime.clock())
    signed = sign(runtime, practice.dr_ada, edited, resolve_all(runtime, practice.dr_ada, edited))
    assert "reviewed and edited" in signed.meaning and not signed.zero_edit


def _edit_first_section(runtime: Runtime, actor: User, encounter: Encounter, change: Callable[[str], str]) -> None:
    v = view(runtime, actor, encounter)
    with session_scope(runtime.engine) as s:
        review.save_section(s, runtime.audit_key, medicines=runtime.policies.pipeline.medicines,
                            actor=actor, encounter_id=encounter.id or 0, section_key=v.sections[0].key,
                            text=change(v.sections[0].text), lock_version=lock(v), now=runtime.clock())


def test_an_edit_that_does_not_address_a_flag_leaves_it_open(
    runtime: Runtime, practice: Practice, wav: bytes, fakes: Fakes
) -> None:
    """Issue 15: changing one character of a flagged sentence does not resolve it; rewriting it
    so that the transcript supports it does."""
    fakes.drafter.extra_sentence = "The client adopted a parrot named Captain."
    encounter = ready(runtime, practice.dr_ada, practice.maya.id, wav)
    _edit_first_section(runtime, practice.dr_ada, encounter,
                        lambda t: t.replace("named Captain.", "named Captain!"))
    still = [f for f in view(runtime, practice.dr_ada, encounter).open_flags if "parrot" in f.sentence]
    assert still and still[0].sentence.endswith("Captain!") and still[0].kind == "unsupported"
    _edit_first_section(runtime, practice.dr_ada, encounter, lambda t: t.replace(
        "The client adopted a parrot named Captain!", "The client sleeps about seven hours most nights."))
    assert not any("parrot" in f.sentence or "seven hours" in f.sentence
                   for f in view(runtime, practice.dr_ada, encounter).open_flags)


def test_a_medicine_the_session_never_named_stays_flagged_until_it_is_gone(
    runtime: Runtime, practice: Practice, wav: bytes, fakes: Fakes
) -> None:
    """Issue 15: a draft sentence naming a medicine nobody named in the session is flagged; an
    edit that swaps in another unnamed medicine leaves it open, one that drops it resolves it."""
    fakes.drafter.extra_sentence = "The client sleeps about seven hours most nights with trazodone."
    encounter = ready(runtime, practice.dr_ada, practice.maya.id, wav)
    flagged = [f for f in view(runtime, practice.dr_ada, encounter).open_flags if "trazodone" in f.sentence]
    assert [f.kind for f in flagged] == ["not_said"]
    _edit_first_section(runtime, practice.dr_ada, encounter, lambda t: t.replace("trazodone", "zolpidem"))
    still = [f for f in view(runtime, practice.dr_ada, encounter).open_flags if "nights with" in f.sentence]
    assert still and "zolpidem" in still[0].sentence and still[0].kind == "not_said"
    _edit_first_section(runtime, practice.dr_ada, encounter, lambda t: t.replace(" with zolpidem", ""))
    assert not any("nights" in f.sentence for f in view(runtime, practice.dr_ada, encounter).open_flags)


def test_the_practice_may_require_an_edit_or_a_typed_confirmation_per_section(
    runtime: Runtime, practice: Practice, wav: bytes
) -> None:
    """Issue 15, both branches of policies/signing.yaml section_review: with `save` (the
    default) saving a section unchanged marks it reviewed; with `edit_or_typed` it does only
    when the clinician typed the word, and an edited section needs no word."""
    encounter = ready(runtime, practice.dr_ada, practice.maya.id, wav)
    v = view(runtime, practice.dr_ada, encounter)
    first, second = v.sections[0], v.sections[1]

    def save(section: DraftSection, text: str, version: int, **strict: str) -> int:
        with session_scope(runtime.engine) as s:
            return review.save_section(s, runtime.audit_key, medicines=runtime.policies.pipeline.medicines,
                                       actor=practice.dr_ada, encounter_id=encounter.id or 0,
                                       section_key=section.key, text=text, lock_version=version,
                                       now=runtime.clock(), **strict).lock_version

    with pytest.raises(InvalidInput, match="type \"reviewed\""):
        save(first, first.text, lock(v), typed_required="reviewed", confirmation="ok")
    assert not view(runtime, practice.dr_ada, encounter).sections[0].reviewed  # refused: nothing changed
    version = save(first, first.text, lock(v), typed_required="reviewed", confirmation=" Reviewed ")
    version = save(second, second.text + " She arrived on time.", version, typed_required="reviewed")
    after = view(runtime, practice.dr_ada, encounter).sections
    assert after[0].reviewed and not after[0].edited and after[1].reviewed and after[1].edited
    save(after[2], after[2].text, version)  # the default policy: a save is a review
    assert view(runtime, practice.dr_ada, encounter).sections[2].reviewed


def test_what_the_clinician_writes_is_checked_too(runtime: Runtime, practice: Practice, wav: bytes) -> None:
    """Issue 15: a risk the clinician writes otherwise than the client said it becomes a flag
    that blocks signing until fixed or confirmed; a faithful sentence they add does not."""
    encounter = ready(runtime, practice.dr_ada, practice.maya.id, wav)  # TRANSCRIPT: suicide screened, denied
    _edit_first_section(runtime, practice.dr_ada, encounter,
                        lambda t: t + " The client endorsed suicidal ideation. She sleeps about seven hours.")
    open_now = view(runtime, practice.dr_ada, encounter).open_flags
    assert [f.kind for f in open_now if "suicidal" in f.sentence] == ["risk_polarity"]
    assert not any("seven hours" in f.sentence for f in open_now)
    version = resolve_all(runtime, practice.dr_ada, encounter)  # confirmed with a reason, as a clinician may
    assert sign(runtime, practice.dr_ada, encounter, version).content_sha256


def _offers(v: review.ReviewView) -> dict[str, bool]:
    return {"edit": v.can_edit, "correct": v.can_correct, "awaiting_cosign": v.awaiting_cosign,
            "draft": v.shows_draft, "emergency": v.emergency}


def test_what_the_page_offers_is_decided_by_the_view_for_each_reader(runtime: Runtime, practice: Practice,
                                                                      wav: bytes) -> None:
    encounter = ready(runtime, practice.sam, practice.priya.id, wav)
    assert _offers(view(runtime, practice.sam, encounter)) == {
        "edit": True, "correct": False, "awaiting_cosign": False, "draft": True, "emergency": False}
    assert _offers(view(runtime, practice.dr_ben, encounter)) == {  # the supervisor reads; only the author edits
        "edit": False, "correct": False, "awaiting_cosign": False, "draft": True, "emergency": False}
    sign(runtime, practice.sam, encounter, resolve_all(runtime, practice.sam, encounter))
    assert _offers(view(runtime, practice.sam, encounter)) == {
        "edit": False, "correct": False, "awaiting_cosign": True, "draft": True, "emergency": False}
    own = ready(runtime, practice.dr_ada, practice.maya.id, wav)
    sign(runtime, practice.dr_ada, own, resolve_all(runtime, practice.dr_ada, own))
    assert _offers(view(runtime, practice.dr_ada, own)) == {  # a record: corrected by addendum or amendment
        "edit": False, "correct": True, "awaiting_cosign": False, "draft": True, "emergency": False}
