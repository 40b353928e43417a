"""Break-the-glass (property 3), retention and legal holds (14, S20), Part 2 tagging and
its notice (11, S14), and the audit chain's anchors outside the database (7, S8)."""

from __future__ import annotations

import io
import sqlite3
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st
from sqlmodel import select

from scribe.cli import main as cli_main
from scribe.db.engine import session_scope
from scribe.db.tables import (
    AuditEvent,
    BreakGlassGrant,
    DeletionReceipt,
    Draft,
    Encounter,
    NoteVersion,
    Recording,
    Transcript,
    User,
)
from scribe.domain.decision import Ground
from scribe.domain.egress import PART2_NOTICE
from scribe.domain.errors import InvalidInput, NotFound, PermissionDenied
from scribe.domain.notes import VersionKind
from scribe.domain.retention import PURGEABLE, Candidate, Rule, select_due
from scribe.policies import Policies
from scribe.runtime import Runtime
from scribe.services import audit, breakglass, records, retention, review
from scribe.services.uploads import accept_upload
from scribe.worker import Worker
from tests.conftest import PASSWORD, Clock, Practice
from tests.helpers import TRANSCRIPT, confirm, run_pipeline, upload
from tests.services.test_review import resolve_all, sign


def signed(runtime: Runtime, practice: Practice, wav: bytes, *, part2: bool = False) -> tuple[Encounter, NoteVersion]:
    if part2:
        with session_scope(runtime.engine) as s:
            e = accept_upload(s, runtime.audit_key, runtime.policies, recordings_dir=runtime.settings.recordings_dir,
                              decoder=runtime.decoder,
                              actor=practice.dr_ada, client_id=practice.maya.id or 0, note_type="soap", filename="s.wav",
                              stream=io.BytesIO(wav), now=runtime.clock(), part2=True)
        with session_scope(runtime.engine) as s:
            rec = s.exec(select(Recording).where(Recording.encounter_id == e.id)).one()
        (runtime.settings.recordings_dir / (rec.path + ".txt")).write_text(TRANSCRIPT)
        confirm(runtime, practice.dr_ada, e)
    else:
        e = upload(runtime, practice.dr_ada, practice.maya.id, wav, transcript=TRANSCRIPT)
    run_pipeline(runtime)
    return e, sign(runtime, practice.dr_ada, e, resolve_all(runtime, practice.dr_ada, e))


def grant(runtime: Runtime, actor: User, mrn: str, minutes: int = 30,
          reason: str = "client in crisis, their clinician is away today") -> BreakGlassGrant:
    with session_scope(runtime.engine) as s:
        return breakglass.request_grant(s, runtime.audit_key, runtime.policies.security, actor=actor, mrn=mrn,
                                        reason=reason, minutes=minutes, now=runtime.clock())


def read(runtime: Runtime, actor: User, encounter: Encounter) -> review.ReviewView:
    with session_scope(runtime.engine) as s:
        return review.review_view(
            s, runtime.audit_key, runtime.policies, actor=actor, encounter_id=encounter.id or 0, now=runtime.clock()
        )


# -- break-the-glass -----------------------------------------------------------------------

def test_break_glass_is_time_boxed_needs_a_reason_reads_notes_only_and_is_always_audited(
    runtime: Runtime, practice: Practice, wav: bytes, clock: Clock
) -> None:
    encounter, _ = signed(runtime, practice, wav)
    with pytest.raises(NotFound):
        read(runtime, practice.dr_cole, encounter)  # not their client
    with pytest.raises(InvalidInput, match="reason"):
        grant(runtime, practice.dr_cole, practice.maya.mrn, reason="urgent")
    with pytest.raises(InvalidInput, match="minutes"):
        grant(runtime, practice.dr_cole, practice.maya.mrn, minutes=24 * 60)
    with pytest.raises(PermissionDenied):
        grant(runtime, practice.root, practice.maya.mrn)  # admins never read clinical content
    with pytest.raises(NotFound):
        grant(runtime, practice.eve, practice.maya.mrn)  # another practice's client
    g = grant(runtime, practice.dr_cole, practice.maya.mrn, minutes=30)
    view = read(runtime, practice.dr_cole, encounter)
    assert view.access.reason == f"break-glass grant #{g.id}"
    assert view.access.ground is Ground.BREAK_GLASS and view.emergency  # the page says so, read-only
    assert not (view.can_edit or view.can_correct or view.shows_draft)
    assert view.draft is None and view.segments == () and view.versions  # signed notes only
    clock.advance(minutes=31)
    with pytest.raises(NotFound):
        read(runtime, practice.dr_cole, encounter)  # the grant ended
    with session_scope(runtime.engine) as s:
        events = s.exec(select(AuditEvent).where(AuditEvent.actor_id == practice.dr_cole.id)).all()
    assert [e.action for e in events if e.action.startswith("breakglass")] == ["breakglass.grant"]
    reads = [e for e in events if e.action == "encounter.read"]
    assert len(reads) == 1 and reads[0].reason == f"break-glass grant #{g.id}"  # 100 % of uses logged


def test_every_grant_is_listed_for_review_until_reviewed(runtime: Runtime, practice: Practice, wav: bytes) -> None:
    g = grant(runtime, practice.dr_cole, practice.maya.mrn)
    with session_scope(runtime.engine) as s:
        rows = breakglass.grants_for_review(s, practice.root, runtime.policies.security)
        assert [r.grant.id for r in rows if r.grant.reviewed_at is None] == [g.id]
        with pytest.raises(PermissionDenied):
            breakglass.grants_for_review(s, practice.dr_ben, runtime.policies.security)
    with session_scope(runtime.engine) as s:
        breakglass.review(s, runtime.audit_key, runtime.policies.security, actor=practice.root, grant_id=g.id or 0,
                          note="called the client", now=runtime.clock())
    with session_scope(runtime.engine) as s:
        assert s.get_one(BreakGlassGrant, g.id).reviewed_by == practice.root.id


def test_part2_records_stay_with_the_treating_team_and_emergency_access_does_not_disclose_them(
        runtime: Runtime, practice: Practice, wav: bytes) -> None:
    encounter, _ = signed(runtime, practice, wav, part2=True)
    with pytest.raises(NotFound) as part2:
        grant(runtime, practice.dr_cole, practice.maya.mrn)
    with pytest.raises(NotFound) as unknown:
        grant(runtime, practice.dr_cole, "MRN-THAT-DOES-NOT-EXIST")
    assert str(part2.value) == str(unknown.value)  # the same answer: nobody learns who is in a Part 2 program
    with pytest.raises(NotFound):
        read(runtime, practice.dr_cole, encounter)
    with session_scope(runtime.engine) as s:
        reasons = [e.reason for e in s.exec(select(AuditEvent).where(AuditEvent.action == "breakglass.refused"))]
    assert reasons == ["Part 2 records are closed to emergency access", "no such MRN"]  # the audit knows which


def test_emergency_access_is_for_licensed_clinicians_and_rate_limited(runtime: Runtime, practice: Practice) -> None:
    with pytest.raises(PermissionDenied, match="licensed clinicians"):
        grant(runtime, practice.sam, practice.maya.mrn)  # pre-licensure
    limit = runtime.policies.security.break_glass.max_per_day
    for _ in range(limit):
        grant(runtime, practice.dr_cole, practice.maya.mrn)
    with pytest.raises(PermissionDenied, match="last 24 hours"):
        grant(runtime, practice.dr_cole, practice.maya.mrn)


def test_emergency_access_shows_signed_records_only(runtime: Runtime, practice: Practice, wav: bytes) -> None:
    """A supervisee's note awaiting co-signature is not a record: a grant does not show it."""
    e = upload(runtime, practice.sam, practice.priya.id, wav, transcript=TRANSCRIPT)
    run_pipeline(runtime)
    sign(runtime, practice.sam, e, resolve_all(runtime, practice.sam, e))  # pending the supervisor
    grant(runtime, practice.dr_cole, practice.priya.mrn)
    view = read(runtime, practice.dr_cole, e)
    assert view.access.reason.startswith("break-glass grant #") and view.versions == []


# -- Part 2 -------------------------------------------------------------------------------

def test_the_part2_tag_follows_every_version_and_every_export_carries_the_notice(
    runtime: Runtime, practice: Practice, wav: bytes
) -> None:
    encounter, _version = signed(runtime, practice, wav, part2=True)
    with session_scope(runtime.engine) as s:
        records.correct(s, runtime.audit_key, runtime.policies, actor=practice.dr_ada, encounter_id=encounter.id or 0,
                        kind=VersionKind.ADDENDUM, password=PASSWORD, attested=True, now=runtime.clock(),
                        addendum="Called back the next day.")
    with session_scope(runtime.engine) as s:
        versions = s.exec(select(NoteVersion)).all()
        assert len(versions) == 2 and all(v.content.get("part2") is True for v in versions)
        text = records.export_text(s, runtime.audit_key, runtime.policies, actor=practice.dr_ada, encounter_id=encounter.id or 0,
                                   password=PASSWORD, now=runtime.clock())
    assert text.startswith(PART2_NOTICE) and "No consent to disclose Part 2 records is in force" in text
    plain, _ = signed(runtime, practice, wav)
    with session_scope(runtime.engine) as s:
        assert PART2_NOTICE not in records.export_text(s, runtime.audit_key, runtime.policies, actor=practice.dr_ada,
                                                       encounter_id=plain.id or 0, password=PASSWORD, now=runtime.clock())


# -- retention ----------------------------------------------------------------------------

NOW = datetime(2027, 1, 1, tzinfo=UTC)
candidates = st.builds(Candidate, encounter_id=st.integers(1, 50), client_id=st.none() | st.integers(1, 5),
                       artefact=st.sampled_from([*PURGEABLE, "signed_note", "audit"]),
                       record_since=st.none() | st.datetimes(min_value=datetime(2019, 1, 1), max_value=datetime(2027, 1, 1),
                                                             timezones=st.just(UTC)),
                       legal_hold=st.booleans(), rule=st.sampled_from(list(Rule)))


@hyp_settings(max_examples=300, deadline=None)
@given(st.lists(candidates, max_size=40),
       st.dictionaries(st.tuples(st.sampled_from(list(Rule)), st.sampled_from(PURGEABLE)),
                       st.integers(0, 3000).map(lambda d: timedelta(days=d))))
def test_retention_never_selects_held_unstarted_records_or_anything_too_young(
        cands: list[Candidate], periods: dict[tuple[Rule, str], timedelta]) -> None:
    """Property: whatever the rules, nothing held, nothing whose clock has not started, nothing
    a rule does not name, nothing younger than its rule, never a signed note or audit row."""
    for c in select_due(cands, periods, NOW):
        assert c.artefact in PURGEABLE  # never signed notes or audit rows
        assert not c.legal_hold and c.record_since is not None
        assert (c.rule, c.artefact) in periods and NOW - c.record_since >= periods[(c.rule, c.artefact)]


def test_retention_purges_what_is_due_leaves_receipts_and_respects_a_legal_hold(
    runtime: Runtime, practice: Practice, wav: bytes, clock: Clock
) -> None:
    _encounter, version = signed(runtime, practice, wav)
    days = runtime.policies.retention.after_signing
    with session_scope(runtime.engine) as s:
        assert retention.run(s, runtime.audit_key, runtime.policies, now=clock())["due"] == 0
    with session_scope(runtime.engine) as s:
        retention.set_legal_hold(s, runtime.audit_key, actor=practice.root, client_id=practice.maya.id or 0, hold=True,
                                 reason="records request, case 12", now=clock())
    clock.advance(days=max(days.audio_days, days.transcript_days, days.draft_days) + 1)
    with session_scope(runtime.engine) as s:
        assert retention.run(s, runtime.audit_key, runtime.policies, now=clock())["due"] == 0  # held
    with session_scope(runtime.engine) as s:
        retention.set_legal_hold(s, runtime.audit_key, actor=practice.root, client_id=practice.maya.id or 0, hold=False,
                                 reason="", now=clock())
    with session_scope(runtime.engine) as s:
        summary = retention.run(s, runtime.audit_key, runtime.policies, now=clock())
    assert summary["due"] >= 3 and len(summary["receipts"]) == 1
    with session_scope(runtime.engine) as s:
        assert s.exec(select(Transcript)).all() == [] and s.exec(select(Draft)).all() == []
        rec = s.exec(select(Recording)).first()
        assert rec is None or rec.purged_at is not None
        assert s.get_one(NoteVersion, version.id).content_sha256 == version.content_sha256  # the record stays
        receipt = s.get_one(DeletionReceipt, summary["receipts"][0])
        assert receipt.rule.startswith("retention:") and "Maya" not in repr(receipt.items)
        assert s.exec(select(AuditEvent).where(AuditEvent.action == "retention.purge")).first() is not None


def test_the_retention_policy_refuses_minimums_below_six_years(policies: Policies) -> None:
    from pydantic import ValidationError

    from scribe.policies.schema import RetentionPolicy

    data = policies.retention.model_dump()
    data["minimums"]["audit_years"] = 5
    with pytest.raises(ValidationError):
        RetentionPolicy.model_validate(data)


# -- audit anchors ------------------------------------------------------------------------

def test_the_worker_anchors_the_chain_and_verify_catches_a_rewritten_tail(
    runtime: Runtime,
    practice: Practice,
    wav: bytes,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    signed(runtime, practice, wav)
    worker = Worker(runtime)
    worker.housekeeping(retention_due=False)
    anchors = audit.read_anchors(runtime.settings.anchors_dir)
    assert len(anchors) == 1
    with session_scope(runtime.engine) as s:
        assert audit.verify(s, runtime.audit_key, runtime.settings.anchors_dir) == []
    monkeypatch.setenv("SCRIBE_DATA_DIR", str(runtime.settings.data_dir))
    assert cli_main(["audit", "verify"]) == 0 and "1 anchor(s)" in capsys.readouterr().out
    # Someone with the database file (and no key) removes the last events, triggers and all.
    with sqlite3.connect(runtime.settings.data_dir / "scribe.db") as raw:
        raw.execute("DROP TRIGGER audit_events_no_delete")
        raw.execute("DELETE FROM audit_events WHERE id > (SELECT MAX(id) - 2 FROM audit_events)")
    assert cli_main(["audit", "verify"]) == 1
    assert "missing" in capsys.readouterr().err


def test_a_grant_is_reviewed_by_neither_the_grantee_nor_whoever_made_the_account_and_new_accounts_are_flagged(
        runtime: Runtime, practice: Practice, clock: Clock) -> None:
    """An admin who made an account to read records with cannot also clear the alert."""
    from scribe.services import accounts

    clock.advance(days=runtime.policies.security.break_glass.new_account_days + 1)  # the practice's accounts age
    with session_scope(runtime.engine) as s:
        invited = accounts.create_user(s, runtime.audit_key, runtime.policies.security, actor=practice.root,
                                       username="dr_quick", full_name="Dr Quick", role="clinician", now=clock())
        second = accounts.create_user(s, runtime.audit_key, runtime.policies.security, actor=practice.root,
                                      username="root_two", full_name="Second Admin", role="admin", now=clock())
        quick, root_two = invited.user, second.user
    g = grant(runtime, quick, practice.maya.mrn)
    old = grant(runtime, practice.dr_cole, practice.maya.mrn)
    with session_scope(runtime.engine) as s:
        rows = {r.grant.id: r for r in breakglass.grants_for_review(s, practice.root, runtime.policies.security)}
    assert rows[g.id].new_account and not rows[old.id].new_account
    assert not rows[g.id].may_review(practice.root) and rows[old.id].may_review(practice.root)
    with session_scope(runtime.engine) as s:  # the reviewer's notice counts only what they may review
        assert breakglass.awaiting_review(s, practice.root, runtime.policies.security) == 1
        assert breakglass.awaiting_review(s, root_two, runtime.policies.security) == 2
        assert breakglass.awaiting_review(s, quick, runtime.policies.security) == 0
    with pytest.raises(PermissionDenied, match="another administrator"), session_scope(runtime.engine) as s:
        breakglass.review(s, runtime.audit_key, runtime.policies.security, actor=practice.root, grant_id=g.id or 0,
                          note="fine", now=clock())
    with session_scope(runtime.engine) as s:
        breakglass.review(
            s,
            runtime.audit_key,
            runtime.policies.security,
            actor=root_two,
            grant_id=g.id or 0,
            note="called them",
            now=clock(),
        )
        assert s.get_one(BreakGlassGrant, g.id).reviewed_by == root_two.id
