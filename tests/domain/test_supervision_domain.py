"""Pure supervision and lifecycle rules: co-signing, corrections, status from versions,
diffs and quality figures, hours, and how a supervision draft is re-identified."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from scribe.domain.chart import ChartFacts, supervision_identifiers, supervision_reverse
from scribe.domain.notes import (
    CosignOutcome,
    EncounterStatus,
    LicenceStatus,
    Role,
    SignerFacts,
    VersionState,
    can_correct,
    can_cosign,
    status_from_versions,
    version_state,
)
from scribe.domain.redaction import (
    SurrogateMap,
    apply_surrogates,
    find_known,
    merge_spans,
    reidentify,
)
from scribe.domain.supervision import (
    HoursCategory,
    edit_distance,
    progress,
    share_kept,
    supervision_category,
    word_diff,
)

BEN = SignerFacts(3, Role.SUPERVISOR, LicenceStatus.LICENSED, True)


def test_a_version_is_a_record_only_when_licensed_or_cosigned() -> None:
    assert version_state(False, None) == VersionState.RECORD
    assert version_state(True, None) == VersionState.PENDING_COSIGN
    assert version_state(True, CosignOutcome.COSIGNED) == VersionState.RECORD
    assert version_state(True, CosignOutcome.RETURNED) == VersionState.RETURNED


def test_status_follows_from_versions() -> None:
    assert status_from_versions([]) == EncounterStatus.IN_REVIEW
    assert status_from_versions([("original", VersionState.RETURNED)]) == EncounterStatus.RETURNED
    assert status_from_versions([("original", VersionState.RETURNED),
                                 ("revision", VersionState.PENDING_COSIGN)]) == EncounterStatus.PENDING_COSIGN
    assert status_from_versions([("original", VersionState.RECORD),
                                 ("addendum", VersionState.RETURNED)]) == EncounterStatus.SIGNED


def test_cosign_refusals() -> None:
    ok = can_cosign(supervisor=BEN, author_supervisor_id=3, state=VersionState.PENDING_COSIGN, is_latest=True)
    assert ok.allowed
    cases = [
        (SignerFacts(3, Role.SUPERVISOR, LicenceStatus.LICENSED, False), 3, VersionState.PENDING_COSIGN, True, "disabled"),
        (SignerFacts(4, Role.CLINICIAN, LicenceStatus.LICENSED, True), 4, VersionState.PENDING_COSIGN, True, "supervisor"),
        (SignerFacts(3, Role.SUPERVISOR, LicenceStatus.PRE_LICENSURE, True), 3, VersionState.PENDING_COSIGN, True, "licensed"),
        (BEN, 9, VersionState.PENDING_COSIGN, True, "own supervisor"),
        (BEN, 3, VersionState.RECORD, True, "not awaiting"),
        (BEN, 3, VersionState.RETURNED, True, "not awaiting"),
        (BEN, 3, VersionState.PENDING_COSIGN, False, "newer version"),
    ]
    for who, sup, state, latest, reason in cases:
        d = can_cosign(supervisor=who, author_supervisor_id=sup, state=state, is_latest=latest)
        assert not d.allowed and reason in d.reason


def test_correction_refusals() -> None:
    sam = SignerFacts(4, Role.CLINICIAN, LicenceStatus.PRE_LICENSURE, True)
    assert can_correct(signer=sam, author_id=4, has_record=True, pending=False).allowed
    assert "only the note's author" in can_correct(signer=sam, author_id=5, has_record=True, pending=False).reason
    assert "not a record yet" in can_correct(signer=sam, author_id=4, has_record=False, pending=False).reason
    assert "still awaiting" in can_correct(signer=sam, author_id=4, has_record=True, pending=True).reason


def test_word_diff_shows_deletions_and_insertions() -> None:
    runs = word_diff("The client slept seven hours.", "The client slept six hours.")
    assert ("delete", "seven") in runs and ("insert", "six") in runs
    assert "".join(t for op, t in runs if op != "insert") == "The client slept seven hours."


@given(st.text(max_size=60), st.text(max_size=60))
def test_diff_rebuilds_both_texts_and_distance_is_zero_only_when_equal(a: str, b: str) -> None:
    runs = word_diff(a, b)
    assert "".join(t for op, t in runs if op != "insert") == a
    assert "".join(t for op, t in runs if op != "delete") == b
    assert (edit_distance(a, b) == 0) == (a == b)
    assert 0.0 <= share_kept(a, b) <= 1.0


def test_hours_categories_and_progress() -> None:
    assert supervision_category(1) == HoursCategory.INDIVIDUAL_SUPERVISION
    assert supervision_category(3) == HoursCategory.GROUP_SUPERVISION
    rows = progress({"direct_contact": 50.0}, {"direct_contact": 100, "individual_supervision": 0,
                                                "group_supervision": 10})
    assert [(r.category, r.percent) for r in rows] == [
        (HoursCategory.DIRECT_CONTACT, 50), (HoursCategory.INDIVIDUAL_SUPERVISION, 100),
        (HoursCategory.GROUP_SUPERVISION, 0)]


def test_a_supervision_draft_cites_cases_by_reference_and_withholds_the_rest() -> None:
    priya = ChartFacts(given_name="Priya", family_name="Castellano", phone="555-201-9000")
    known = supervision_identifiers([(12, priya)], ["Sam Tester", "Dr Ben Tester"], "Fairview")
    text = "Sam asked about Priya Castellano, phone 555-201-9000, seen at Fairview with Dr Ben Tester."
    surrogates = SurrogateMap()
    pseudo = apply_surrogates(text, merge_spans(find_known(text, known)), surrogates)
    assert "Priya" not in pseudo and "555" not in pseudo and "[CASE_1]" in pseudo
    shown = reidentify(pseudo, supervision_reverse(surrogates))
    assert shown == "Sam asked about case C-0012, phone [withheld], seen at Fairview with Dr Ben Tester."
