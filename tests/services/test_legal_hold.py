"""A legal hold stops every path that deletes (issue 17 item 5): withdrawal of each consent,
retention, the audio purge at signing, the purge primitives called directly, and the
file sweep. The hold is checked inside the primitives, so no caller can skip it."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pytest
from sqlmodel import Session, col, func, select

from scribe.db.engine import session_scope
from scribe.db.tables import DataKey, DeletionReceipt, Draft, Encounter, Pseudonymization, Recording, Transcript
from scribe.policies import Policies
from scribe.runtime import Runtime
from scribe.services import purge, retention
from scribe.worker import Worker
from tests.conftest import Clock, Practice
from tests.helpers import TRANSCRIPT, media, run_pipeline, upload
from tests.services.test_review import resolve_all, sign


def snapshot(runtime: Runtime) -> dict[str, object]:
    """Everything a purge could remove for the practice's client, rows and files."""
    with Session(runtime.engine) as s:
        recordings = s.exec(select(Recording).where(col(Recording.purged_at).is_(None))).all()
        return {
            "recordings": sorted(r.id or 0 for r in recordings),
            "files": sorted(r.path for r in recordings if (runtime.settings.recordings_dir / r.path).exists()),
            "transcripts": s.exec(select(func.count()).select_from(Transcript)).one(),
            "pseudonymizations": s.exec(select(func.count()).select_from(Pseudonymization)).one(),
            "drafts": s.exec(select(func.count()).select_from(Draft)).one(),
            "live keys": s.exec(select(func.count()).select_from(DataKey)
                                .where(col(DataKey.destroyed_at).is_(None))).one(),
        }


Sessions = tuple[Encounter, Encounter]
Path_ = Callable[[Runtime, Practice, Clock, Sequence[Encounter]], None]


def held_practice(runtime: Runtime, practice: Practice, wav: bytes) -> Sessions:
    """One signed session and one unsigned (drafted) session, then the client goes on hold."""
    first = upload(runtime, practice.dr_ada, practice.maya.id, wav, transcript=TRANSCRIPT)
    run_pipeline(runtime)
    sign(runtime, practice.dr_ada, first, resolve_all(runtime, practice.dr_ada, first))
    second = upload(runtime, practice.dr_ada, practice.maya.id, wav, transcript=TRANSCRIPT)
    run_pipeline(runtime)
    with session_scope(runtime.engine) as s:
        retention.set_legal_hold(s, runtime.audit_key, actor=practice.root, client_id=practice.maya.id or 0, hold=True,
                                 reason="records request, case 12", now=runtime.clock())
    return first, second


def withdraw(function: str) -> Path_:
    def run(runtime: Runtime, practice: Practice, clock: Clock, sessions: Sequence[Encounter]) -> None:
        with session_scope(runtime.engine) as s:
            purge.withdraw(s, runtime.audit_key, runtime.policies, actor=practice.dr_ada, client_id=practice.maya.id or 0,
                           function=function, tools=media(runtime), now=clock())
    return run


def retention_run(runtime: Runtime, practice: Practice, clock: Clock, sessions: Sequence[Encounter]) -> None:
    clock.advance(days=10 * 365)
    with session_scope(runtime.engine) as s:
        retention.run(s, runtime.audit_key, runtime.policies, now=clock())


def sign_without_keep_audio(runtime: Runtime, practice: Practice, clock: Clock, sessions: Sequence[Encounter]) -> None:
    """Reproduced in the review: client on hold, keep_audio withdrawn, note signed: audio purged."""
    withdraw("keep_audio")(runtime, practice, clock, sessions)
    second = sessions[1]
    sign(runtime, practice.dr_ada, second, resolve_all(runtime, practice.dr_ada, second))


def primitives(runtime: Runtime, practice: Practice, clock: Clock, sessions: Sequence[Encounter]) -> None:
    with session_scope(runtime.engine) as s:
        for encounter in sessions:
            for artefact in ("audio", "transcript", "draft"):
                purge.purge_artefact(s, encounter.id or 0, artefact, clock())
            purge.purge_encounter_audio(s, client_id=practice.maya.id or 0, encounter_id=encounter.id or 0, rule="test",
                                        now=clock())
        for kind in ("audio", "transcript", "draft"):
            purge.shred_client_keys(s, practice.maya.id or 0, kind, clock())


def sweep(runtime: Runtime, practice: Practice, clock: Clock, sessions: Sequence[Encounter]) -> None:
    Worker(runtime).housekeeping(retention_due=True)


FUNCTIONS = ["record_audio", "transcribe", "ai_drafting", "keep_audio", "supervision_use", "egress",
             "part2_disclosure"]
PATHS: dict[str, Path_] = {**{f"withdraw {f}": withdraw(f) for f in FUNCTIONS}, "retention": retention_run,
         "sign with keep_audio withdrawn": sign_without_keep_audio, "purge primitives": primitives,
         "worker housekeeping": sweep}


def test_every_consent_function_has_a_withdrawal_path_here(policies: Policies) -> None:
    assert sorted(FUNCTIONS) == sorted(policies.consent.on_withdrawal)


@pytest.mark.parametrize("path", sorted(PATHS))
def test_no_path_deletes_under_a_legal_hold(runtime: Runtime, practice: Practice, wav: bytes, clock: Clock,
                                            path: str) -> None:
    sessions = held_practice(runtime, practice, wav)
    before = snapshot(runtime)
    assert before["recordings"] and before["files"] and before["transcripts"] and before["drafts"]
    PATHS[path](runtime, practice, clock, sessions)
    Worker(runtime).sweep()
    assert snapshot(runtime) == before


def test_every_path_in_turn_deletes_nothing_and_the_receipts_say_why(
    runtime: Runtime, practice: Practice, wav: bytes, clock: Clock
) -> None:
    sessions = held_practice(runtime, practice, wav)
    before = snapshot(runtime)
    for name in sorted(PATHS):
        if name != "sign with keep_audio withdrawn":
            PATHS[name](runtime, practice, clock, sessions)
    assert snapshot(runtime) == before
    with Session(runtime.engine) as s:
        receipts = s.exec(select(DeletionReceipt)).all()
    assert receipts and all("legal hold" in r.rule or not any("kept" not in i for i in r.items
                                                               if i.get("artefact") != "stopped")
                            for r in receipts)


def test_lifting_the_hold_lets_the_same_path_delete(runtime: Runtime, practice: Practice, wav: bytes, clock: Clock) -> None:
    """The guard is the hold, not a broken purge: once lifted, withdrawal removes the audio."""
    held_practice(runtime, practice, wav)
    with session_scope(runtime.engine) as s:
        retention.set_legal_hold(s, runtime.audit_key, actor=practice.root, client_id=practice.maya.id or 0, hold=False,
                                 reason="", now=clock())
    withdraw("record_audio")(runtime, practice, clock, [])
    Worker(runtime).sweep()
    assert snapshot(runtime)["recordings"] == [] and snapshot(runtime)["files"] == []
