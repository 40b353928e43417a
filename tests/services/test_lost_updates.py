"""S12 interleavings: two people on one draft at once, on SQLite and PostgreSQL.

Before the version moved by a conditional UPDATE, two saves from pages at the same
version both succeeded and one text was lost; two concurrent signs answered 500 on a
unique constraint. Here every race ends with exactly one winner, the loser gets a
Conflict (409), no error of another kind, and the stored text is the winner's."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from sqlmodel import Session, select

from scribe.db.engine import session_scope
from scribe.db.tables import DraftChange, DraftSection, Encounter, Note, NoteVersion, User
from scribe.domain.errors import Conflict, PermissionDenied
from scribe.runtime import Runtime
from tests.conftest import PASSWORD, Clock, Practice, make_practice, wav_bytes
from tests.helpers import TRANSCRIPT, run_pipeline, upload
from tests.services.test_review import draft_lock, resolve_all

ROUNDS = 12


@pytest.fixture
def rt(either_db: Runtime) -> Runtime:
    return either_db


def race(*calls: Callable[[], object]) -> list[object]:
    """Run the calls at once (released together by a barrier); each one's result or error."""
    barrier = threading.Barrier(len(calls))
    out: list[object] = [None] * len(calls)

    def run(i: int) -> None:
        barrier.wait()
        try:
            out[i] = calls[i]()
        except Exception as exc:
            out[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def drafted(rt: Runtime, practice: Practice) -> Encounter:
    encounter = upload(rt, practice.dr_ada, practice.maya.id, wav_bytes(), transcript=TRANSCRIPT)
    run_pipeline(rt)
    return encounter


def signer(rt: Runtime, actor: User, encounter: Encounter, version: int) -> Callable[[], object]:
    from scribe.services import review

    def call() -> object:
        with session_scope(rt.engine) as s:
            return review.sign(s, rt.audit_key, rt.policies, actor=actor, encounter_id=encounter.id or 0,
                               password=PASSWORD, attested=True, lock_version=version, now=rt.clock())
    return call


def save(rt: Runtime, actor: User, encounter: Encounter, text: str, version: int) -> Callable[[], object]:
    from scribe.services import review

    def call() -> object:
        with session_scope(rt.engine) as s:
            return review.save_section(s, rt.audit_key, medicines=rt.policies.pipeline.medicines,
                                       actor=actor, encounter_id=encounter.id or 0,
                                       section_key="subjective", text=text, lock_version=version, now=rt.clock())
    return call


def test_two_saves_from_the_same_version_never_lose_one(rt: Runtime, clock: Clock) -> None:
    practice = make_practice(rt, clock)
    encounter = drafted(rt, practice)
    lost = 0
    for i in range(ROUNDS):
        version = draft_lock(rt, practice.dr_ada, encounter)
        texts = [f"Round {i}: text from the first page.", f"Round {i}: text from the second page."]
        results = race(save(rt, practice.dr_ada, encounter, texts[0], version),
                       save(rt, practice.dr_ada, encounter, texts[1], version))
        errors = [r for r in results if isinstance(r, Exception)]
        assert len(errors) == 1 and isinstance(errors[0], Conflict), results
        winner = texts[0] if not isinstance(results[0], Exception) else texts[1]
        with Session(rt.engine) as s:
            stored = s.exec(select(DraftSection).where(DraftSection.key == "subjective")).one().text
            changes = s.exec(select(DraftChange).where(DraftChange.version == version + 1)).all()
        lost += stored != winner
        assert len(changes) == 1
    assert lost == 0


def test_two_signs_at_once_make_one_record_and_one_409(rt: Runtime, clock: Clock) -> None:
    practice = make_practice(rt, clock)
    encounter = drafted(rt, practice)
    version = resolve_all(rt, practice.dr_ada, encounter)
    sign = signer(rt, practice.dr_ada, encounter, version)

    results = race(sign, sign)
    errors = [r for r in results if isinstance(r, Exception)]
    # Stale (read before the other committed): 409. Read after it: "already signed" (403).
    assert len(errors) == 1 and isinstance(errors[0], Conflict | PermissionDenied), results
    with Session(rt.engine) as s:
        assert len(s.exec(select(Note)).all()) == 1
        assert len(s.exec(select(NoteVersion)).all()) == 1


def test_a_save_racing_a_sign_is_either_before_it_or_refused(rt: Runtime, clock: Clock) -> None:
    practice = make_practice(rt, clock)
    encounter = drafted(rt, practice)
    version = resolve_all(rt, practice.dr_ada, encounter)
    sign = signer(rt, practice.dr_ada, encounter, version)

    results = race(sign, save(rt, practice.dr_ada, encounter, "A late edit.", version))
    errors = [r for r in results if isinstance(r, Exception)]
    assert len(errors) == 1 and isinstance(errors[0], Conflict), results
    with Session(rt.engine) as s:
        signed = s.exec(select(NoteVersion)).all()
    if isinstance(results[0], Exception):
        assert signed == []  # the edit won; the sign must be redone on the new version
    else:
        assert len(signed) == 1 and "A late edit." not in str(signed[0].content)  # the record is what was signed


def test_two_saves_adding_sentences_the_checks_flag_keep_only_the_winners_flags(rt: Runtime, clock: Clock) -> None:
    """Each page adds a sentence of its own that the draft checks flag (a risk the client denied,
    written as endorsed): the winner's flagged sentence is kept once, the loser's never appears,
    and the flagged sentences stay numbered without a gap or a repeat."""
    from scribe.db.tables import DraftSentence

    practice = make_practice(rt, clock)
    encounter = drafted(rt, practice)
    for i in range(ROUNDS // 2):
        version = draft_lock(rt, practice.dr_ada, encounter)
        with Session(rt.engine) as s:
            base = s.exec(select(DraftSection).where(DraftSection.key == "subjective")).one().text
        texts = [f"{base} Round {i}: on page {page} the client endorses suicidal ideation." for page in ("one", "two")]
        results = race(save(rt, practice.dr_ada, encounter, texts[0], version),
                       save(rt, practice.dr_ada, encounter, texts[1], version))
        errors = [r for r in results if isinstance(r, Exception)]
        assert len(errors) == 1 and isinstance(errors[0], Conflict), results
        winner, loser = ("one", "two") if not isinstance(results[0], Exception) else ("two", "one")
        with Session(rt.engine) as s:
            rows = s.exec(select(DraftSentence).where(DraftSentence.section_key == "subjective")).all()
            mine = [r for r in rows if f"Round {i}:" in r.text]
            assert [r.text for r in mine] == [f"Round {i}: on page {winner} the client endorses suicidal ideation."]
            assert mine[0].flags and not any(f"Round {i}: on page {loser}" in r.text for r in rows)
            idx = sorted(r.idx for r in rows)
            assert idx == list(range(idx[0], idx[0] + len(idx)))  # no gap, no repeat
