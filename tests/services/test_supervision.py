"""Co-signature, returns, corrections, supervision meetings, licensure hours, quality:
every transition and every refusal, through the services on a real database."""

from __future__ import annotations

import csv
import io
from contextlib import AbstractContextManager
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DatabaseError
from sqlmodel import Session, select

from scribe.db.engine import session_scope
from scribe.db.tables import Cosignature, Encounter, HoursEntry, NoteVersion, Recording, User
from scribe.domain.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from scribe.domain.notes import DraftStatus, EncounterStatus, VersionKind, VersionState
from scribe.domain.supervision import HoursCategory
from scribe.runtime import Runtime
from scribe.services import records, review, supervision, uploads
from tests.conftest import PASSWORD, Clock, Practice, wav_bytes
from tests.helpers import media, reload, run_pipeline
from tests.services.test_review import lock, ready, resolve_all, sign, view

SUPERVISION_TRANSCRIPT = """CLINICIAN: Let us start with your caseload this week, Sam.
CLIENT: I want to talk about Priya Castellano; she missed two sessions and I was unsure whether to call her.
CLINICIAN: What did you decide, and how did you document the outreach?
CLIENT: I called once and documented it. I felt anxious about overstepping.
CLINICIAN: Your outreach was appropriate. Work on naming the boundary explicitly at the next session.
CLIENT: I will also read the chapter on engagement before our next meeting."""


def s_(runtime: Runtime) -> AbstractContextManager[Session]:
    return session_scope(runtime.engine)


def signed_by_sam(runtime: Runtime, practice: Practice, wav: bytes) -> tuple[Encounter, NoteVersion]:
    encounter = ready(runtime, practice.sam, practice.priya.id, wav)
    version = sign(runtime, practice.sam, encounter, resolve_all(runtime, practice.sam, encounter))
    return encounter, version


def cosign(runtime: Runtime, actor: User, version_id: int | None, password: str = PASSWORD,
           attested: bool = True) -> Cosignature:
    with s_(runtime) as s:
        return supervision.cosign(s, runtime.audit_key, runtime.policies, actor=actor, version_id=version_id or 0,
                                  password=password, attested=attested, now=runtime.clock())


def return_it(runtime: Runtime, actor: User, version_id: int | None,
              comment: str = "Add the risk screening you did at the start.") -> Cosignature:
    with s_(runtime) as s:
        return supervision.return_note(s, runtime.audit_key, actor=actor, version_id=version_id or 0, comment=comment,
                                       now=runtime.clock())


def export(runtime: Runtime, actor: User, encounter: Encounter) -> str:
    with s_(runtime) as s:
        return records.export_text(
            s,
            runtime.audit_key,
            runtime.policies,
            actor=actor,
            encounter_id=encounter.id or 0,
            password=PASSWORD,
            now=runtime.clock(),
        )


def correct(runtime: Runtime, actor: User, encounter: Encounter, kind: VersionKind, **kw: Any) -> NoteVersion:
    with s_(runtime) as s:
        return records.correct(s, runtime.audit_key, runtime.policies, actor=actor, encounter_id=encounter.id or 0, kind=kind,
                               password=kw.pop("password", PASSWORD), attested=kw.pop("attested", True),
                               now=runtime.clock(), **kw)


def hours_of(runtime: Runtime, user: User) -> set[tuple[str, float]]:
    with s_(runtime) as s:
        return {(e.category, round(e.hours, 4)) for e in s.exec(select(HoursEntry).where(HoursEntry.user_id == user.id))}


def test_a_supervisees_note_is_not_a_record_until_cosigned(runtime: Runtime, practice: Practice, wav: bytes) -> None:
    encounter, version = signed_by_sam(runtime, practice, wav)
    assert version.requires_cosign and reload(runtime, encounter).status == EncounterStatus.PENDING_COSIGN
    with pytest.raises(Conflict, match="not a record yet"):
        export(runtime, practice.sam, encounter)
    with pytest.raises(PermissionDenied, match="not a record yet"):
        correct(runtime, practice.sam, encounter, VersionKind.ADDENDUM, addendum="Later note.")
    assert hours_of(runtime, practice.sam) == set()  # no hours from a note that is not a record

    row = cosign(runtime, practice.dr_ben, version.id)
    assert row.outcome == "cosigned" and reload(runtime, encounter).status == EncounterStatus.SIGNED
    text_out = export(runtime, practice.sam, encounter)
    assert "Electronically signed by Sam Tester" in text_out and "Co-signed by Dr Ben Tester" in text_out
    assert version.content_sha256 in text_out and row.content_sha256 in text_out
    assert hours_of(runtime, practice.sam) == {(HoursCategory.DIRECT_CONTACT, round(2.0 / 3600, 4))}


def test_the_supervisor_returns_then_cosigns_the_revision(runtime: Runtime, practice: Practice, wav: bytes) -> None:
    encounter, v1 = signed_by_sam(runtime, practice, wav)
    return_it(runtime, practice.dr_ben, v1.id)
    assert reload(runtime, encounter).status == EncounterStatus.RETURNED
    v = view(runtime, practice.sam, encounter)
    comments = v.returned[-1].cosign
    assert v.editing and comments is not None and comments.comment.startswith("Add the risk")
    assert all(not sec.reviewed for sec in v.sections)  # reviewed again, with the comments in mind
    assert v.can_sign.allowed is False

    with s_(runtime) as s:
        review.save_section(s, runtime.audit_key, medicines=runtime.policies.pipeline.medicines,
                            actor=practice.sam, encounter_id=encounter.id or 0,
                            section_key=v.sections[0].key, text=v.sections[0].text + " Risk screening: denied.",
                            lock_version=lock(v), now=runtime.clock())
    v2 = sign(runtime, practice.sam, encounter, resolve_all(runtime, practice.sam, encounter))
    assert v2.kind == VersionKind.REVISION and v2.version == 2 and v2.supersedes_id == v1.id
    assert reload(runtime, encounter).status == EncounterStatus.PENDING_COSIGN

    with pytest.raises(Conflict, match="not awaiting co-signature"):
        cosign(runtime, practice.dr_ben, v1.id)  # the returned version, from a stale page
    cosign(runtime, practice.dr_ben, v2.id)
    assert reload(runtime, encounter).status == EncounterStatus.SIGNED
    with pytest.raises(Conflict):
        cosign(runtime, practice.dr_ben, v2.id)  # decided already
    states = [x.state for x in view(runtime, practice.sam, encounter).versions]
    assert states == [VersionState.RETURNED, VersionState.RECORD]
    out = export(runtime, practice.dr_ben, encounter)
    assert "Version 2 (revision)" in out and "Version 1" not in out


def test_only_the_authors_supervisor_cosigns_with_password_and_attestation(
    runtime: Runtime, practice: Practice, wav: bytes
) -> None:
    encounter, version = signed_by_sam(runtime, practice, wav)
    for outsider in (practice.dr_ada, practice.dr_cole, practice.eve, practice.root):
        with pytest.raises(NotFound):
            cosign(runtime, outsider, version.id)
    with pytest.raises(PermissionDenied, match="licensed supervisor"):
        cosign(runtime, practice.sam, version.id)  # their own note
    with pytest.raises(PermissionDenied):
        cosign(runtime, practice.dr_ben, version.id, password="wrong password")
    with pytest.raises(InvalidInput):
        cosign(runtime, practice.dr_ben, version.id, attested=False)
    with pytest.raises(InvalidInput):
        return_it(runtime, practice.dr_ben, version.id, comment=" ")
    assert reload(runtime, encounter).status == EncounterStatus.PENDING_COSIGN


def test_a_licensed_clinicians_note_needs_no_cosignature(runtime: Runtime, practice: Practice, wav: bytes) -> None:
    encounter = ready(runtime, practice.dr_ada, practice.maya.id, wav)
    version = sign(runtime, practice.dr_ada, encounter, resolve_all(runtime, practice.dr_ada, encounter))
    assert not version.requires_cosign and reload(runtime, encounter).status == EncounterStatus.SIGNED
    assert hours_of(runtime, practice.dr_ada) == set()  # not a supervisee: no ledger


def test_amendments_and_addenda_keep_the_original(runtime: Runtime, practice: Practice, wav: bytes) -> None:
    encounter = ready(runtime, practice.dr_ada, practice.maya.id, wav)
    original = sign(runtime, practice.dr_ada, encounter, resolve_all(runtime, practice.dr_ada, encounter))
    first = original.content["sections"][0]
    with pytest.raises(InvalidInput, match="changes nothing"):
        correct(runtime, practice.dr_ada, encounter, VersionKind.AMENDMENT, texts={first["key"]: first["text"]})
    with pytest.raises(PermissionDenied):
        correct(runtime, practice.dr_ada, encounter, VersionKind.AMENDMENT, texts={first["key"]: "x"}, password="nope")
    for other in (practice.dr_ben,):  # the supervisor can read? no: dr_ada is not a supervisee
        with pytest.raises(NotFound):
            correct(runtime, other, encounter, VersionKind.ADDENDUM, addendum="Not mine.")

    amended = correct(runtime, practice.dr_ada, encounter, VersionKind.AMENDMENT,
                      texts={first["key"]: "Corrected: the client reported six hours of sleep."})
    added = correct(runtime, practice.dr_ada, encounter, VersionKind.ADDENDUM, addendum="Client called to reschedule.")
    assert amended.supersedes_id == original.id and amended.content["supersedes_sha256"] == original.content_sha256
    assert added.kind == VersionKind.ADDENDUM and added.version == 3
    with s_(runtime) as s:
        stored = s.get_one(NoteVersion, original.id)
        assert stored.content == original.content and review.verify_version(stored)
    views = view(runtime, practice.dr_ada, encounter).versions
    assert [x.amended_by for x in views] == [2, None, None]
    out = export(runtime, practice.dr_ada, encounter)
    assert "[AMENDED: see version 2]" in out and "six hours of sleep" in out and "Client called to reschedule." in out


def test_a_supervisees_addendum_waits_for_cosignature_and_can_be_returned(
    runtime: Runtime, practice: Practice, wav: bytes
) -> None:
    encounter, version = signed_by_sam(runtime, practice, wav)
    cosign(runtime, practice.dr_ben, version.id)
    added = correct(runtime, practice.sam, encounter, VersionKind.ADDENDUM, addendum="Client emailed about fees.")
    assert added.requires_cosign and reload(runtime, encounter).status == EncounterStatus.PENDING_COSIGN
    with pytest.raises(PermissionDenied, match="still awaiting"):
        correct(runtime, practice.sam, encounter, VersionKind.ADDENDUM, addendum="Another one.")
    out = export(runtime, practice.sam, encounter)  # the co-signed original is still the record
    assert "AWAITING CO-SIGNATURE" in out
    return_it(runtime, practice.dr_ben, added.id, comment="Fees belong in billing, not the note.")
    assert reload(runtime, encounter).status == EncounterStatus.SIGNED  # the record stands
    assert "Client emailed about fees." not in export(runtime, practice.sam, encounter)


def test_two_tabs_get_a_conflict_that_says_what_changed(runtime: Runtime, practice: Practice, wav: bytes) -> None:
    encounter = ready(runtime, practice.dr_ada, practice.maya.id, wav)
    v = view(runtime, practice.dr_ada, encounter)
    stale = lock(v)
    section = v.sections[0]
    with s_(runtime) as s:
        review.save_section(s, runtime.audit_key, medicines=runtime.policies.pipeline.medicines,
                            actor=practice.dr_ada, encounter_id=encounter.id or 0,
                            section_key=section.key, text="Tab one's text.", lock_version=stale, now=runtime.clock())
    with pytest.raises(Conflict) as caught, s_(runtime) as s:
        review.save_section(s, runtime.audit_key, medicines=runtime.policies.pipeline.medicines,
                            actor=practice.dr_ada, encounter_id=encounter.id or 0,
                            section_key=section.key, text="Tab two's text.", lock_version=stale, now=runtime.clock())
    message = caught.value.public_message
    assert f"edited section '{section.title}'" in message and "Dr Ada Tester" in message
    assert "Tab" not in message  # says what changed, never the clinical text
    assert view(runtime, practice.dr_ada, encounter).sections[0].text == "Tab one's text."


def test_cosignatures_are_append_only_in_the_database(runtime: Runtime, practice: Practice, wav: bytes) -> None:
    _, version = signed_by_sam(runtime, practice, wav)
    cosign(runtime, practice.dr_ben, version.id)
    for sql in ("UPDATE cosignatures SET comment = 'x'", "DELETE FROM cosignatures",
                "UPDATE note_versions SET content_sha256 = 'x'", "DELETE FROM note_versions"):
        with pytest.raises(DatabaseError, match="append-only"), runtime.engine.begin() as conn:
            conn.execute(text(sql))
    with s_(runtime) as s:
        assert s.exec(select(Cosignature)).one().outcome == "cosigned"


def meeting(runtime: Runtime, supervisor: User, participants: list[User], agreed: bool = True) -> Encounter:
    data = wav_bytes(seconds=3)
    with s_(runtime) as s:
        encounter = uploads.accept_supervision_upload(
            s, runtime.audit_key, runtime.policies, recordings_dir=runtime.settings.recordings_dir, decoder=runtime.decoder,
            actor=supervisor,
            participant_ids=[p.id or 0 for p in participants], participants_agreed=agreed, stream=io.BytesIO(data),
            now=runtime.clock())
    with s_(runtime) as s:
        rec = s.exec(select(Recording).where(Recording.encounter_id == encounter.id)).one()
    (runtime.settings.recordings_dir / (rec.path + ".txt")).write_text(SUPERVISION_TRANSCRIPT)
    run_pipeline(runtime)
    return encounter


def test_a_supervision_meeting_is_drafted_by_case_reference_and_feeds_hours(runtime: Runtime, practice: Practice) -> None:
    encounter = meeting(runtime, practice.dr_ben, [practice.sam])
    v = view(runtime, practice.dr_ben, encounter)
    assert (
        v.draft is not None
        and v.draft.status == DraftStatus.READY
        and v.client is None
        and v.title == "Supervision with Sam Tester"
    )
    note_text = " ".join(sec.text for sec in v.sections)
    assert "Priya" not in note_text and "Castellano" not in note_text
    assert f"case C-{practice.priya.id:04d}" in note_text
    duration = next(sec for sec in v.sections if sec.key == "duration")
    assert duration.text == "Individual supervision, 0 minute(s), with Sam Tester."

    version = sign(runtime, practice.dr_ben, encounter, resolve_all(runtime, practice.dr_ben, encounter))
    assert not version.requires_cosign and reload(runtime, encounter).status == EncounterStatus.SIGNED
    assert hours_of(runtime, practice.sam) == {(HoursCategory.INDIVIDUAL_SUPERVISION, round(3.0 / 3600, 4))}

    # The supervisee reads the signed note, not the recording, transcript or draft.
    seen = view(runtime, practice.sam, encounter)
    assert seen.versions and seen.segments == () and seen.draft is None
    for outsider in (practice.dr_ada, practice.eve, practice.root):
        with pytest.raises(NotFound), s_(runtime) as s:
            review.review_view(
                s, runtime.audit_key, runtime.policies, actor=outsider, encounter_id=encounter.id or 0, now=runtime.clock()
            )


def test_a_case_without_supervision_consent_is_left_out_of_the_draft_with_a_flag(runtime: Runtime, practice: Practice,
                                                                               clock: Clock) -> None:
    """supervision_use: what identifies a client who has not consented never reaches the
    supervision drafter, and the draft says that something was left out (a flag the
    supervisor resolves before signing). With the consent, the same meeting cites the case."""
    from scribe.domain.chart import LEFT_OUT
    from scribe.services import purge
    from scribe.services.pipeline import load_pseudonymized

    clock.advance(seconds=1)
    with s_(runtime) as s:
        purge.withdraw(s, runtime.audit_key, runtime.policies, actor=practice.sam, client_id=practice.priya.id or 0,
                       function="supervision_use", tools=media(runtime), now=runtime.clock())
    clock.advance(seconds=1)
    encounter = meeting(runtime, practice.dr_ben, [practice.sam])
    v = view(runtime, practice.dr_ben, encounter)
    note_text = " ".join(sec.text for sec in v.sections)
    assert f"case C-{practice.priya.id:04d}" not in note_text and "missed two sessions" not in note_text
    with s_(runtime) as s:
        texts = [x.text for x in load_pseudonymized(s, encounter.id or 0).segments]
    assert texts[1] == LEFT_OUT and texts.count(LEFT_OUT) == 1  # only what identifies the case
    left_out = [f for f in v.open_flags if f.kind == "case_left_out"]
    assert len(left_out) == 1 and "1 part(s)" in left_out[0].reason
    assert not v.can_sign.allowed

    from tests.services.test_consent_ledger import grant

    grant(runtime, practice.sam, practice.priya.id, ["supervision_use"])
    clock.advance(seconds=1)
    again = meeting(runtime, practice.dr_ben, [practice.sam])
    w = view(runtime, practice.dr_ben, again)
    assert f"case C-{practice.priya.id:04d}" in " ".join(sec.text for sec in w.sections)
    assert not [f for f in w.open_flags if f.kind == "case_left_out"]


def test_supervision_uploads_refuse_strangers_and_missing_agreement(runtime: Runtime, practice: Practice) -> None:
    from scribe.domain.errors import ConsentMissing

    with pytest.raises(NotFound):
        meeting(runtime, practice.dr_ben, [practice.dr_ada])  # not their supervisee
    with pytest.raises(ConsentMissing):
        meeting(runtime, practice.dr_ben, [practice.sam], agreed=False)
    with pytest.raises(PermissionDenied):
        meeting(runtime, practice.dr_ada, [practice.sam])  # not a supervisor


def test_group_supervision_counts_as_group_hours(runtime: Runtime, practice: Practice, clock: Clock) -> None:
    from scribe.db.tables import User
    from scribe.domain.notes import LicenceStatus, Role
    from tests.conftest import _user

    with s_(runtime) as s:
        from scribe.db.tables import Clinic

        clinic = s.get_one(Clinic, practice.sam.clinic_id)
        kim = _user(s, clinic, "kim", Role.CLINICIAN, LicenceStatus.PRE_LICENSURE, supervisor=practice.dr_ben, now=clock())
        assert isinstance(kim, User)
    encounter = meeting(runtime, practice.dr_ben, [practice.sam, kim])
    assert next(x for x in view(runtime, practice.dr_ben, encounter).sections if x.key == "duration").text.startswith("Group")
    sign(runtime, practice.dr_ben, encounter, resolve_all(runtime, practice.dr_ben, encounter))
    assert hours_of(runtime, practice.sam) == hours_of(runtime, kim) == {(HoursCategory.GROUP_SUPERVISION, round(3.0 / 3600, 4))}


def test_the_dashboard_shows_quality_figures_and_the_ledger_exports(runtime: Runtime, practice: Practice, wav: bytes) -> None:
    encounter, version = signed_by_sam(runtime, practice, wav)  # saved unchanged: zero edits
    cosign(runtime, practice.dr_ben, version.id)
    with s_(runtime) as s:
        rows = supervision.dashboard(s, runtime.audit_key, runtime.policies, actor=practice.dr_ben, now=runtime.clock())
    (row,) = rows
    assert row.user.id == practice.sam.id and row.quality.notes == 1 and row.quality.zero_edit_notes == 1
    assert row.quality.mean_ai_kept == 1.0 and row.quality.mean_edit_distance == 0
    assert row.quality.flags_confirmed == version.flags_confirmed > 0
    assert row.licence_type == runtime.policies.licensure.default_type
    direct = next(p for p in row.progress if p.category == HoursCategory.DIRECT_CONTACT)
    assert direct.target == 2000 and 0 < direct.done < 1

    with s_(runtime) as s:
        user, type_key, prog, entries = supervision.ledger(s, runtime.audit_key, runtime.policies, actor=practice.sam,
                                                           user_id=practice.sam.id or 0, now=runtime.clock())
    table = list(csv.reader(io.StringIO(supervision.ledger_csv(user, type_key, prog, entries))))
    assert table[0][:5] == ["supervisee", "licence_type", "date_utc", "category", "hours"]
    assert table[1][3] == "Direct client contact" and table[1][5] == str(encounter.id)
    for outsider in (practice.dr_ada, practice.dr_cole, practice.root):
        with pytest.raises(NotFound), s_(runtime) as s:
            supervision.ledger(s, runtime.audit_key, runtime.policies, actor=outsider, user_id=practice.sam.id or 0,
                               now=runtime.clock())
    with pytest.raises(PermissionDenied), s_(runtime) as s:
        supervision.dashboard(s, runtime.audit_key, runtime.policies, actor=practice.sam, now=runtime.clock())
