"""Service codes are suggested from the type and time of service by the practice's time rules,
never chosen by a model; the bands of one service type never overlap."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scribe.domain.billing import check_service_time, minutes_of, suggest_code
from scribe.domain.clients import name_tokens, normal_mrn
from scribe.domain.errors import InvalidInput, PolicyError
from scribe.policies import Policies


@pytest.mark.parametrize(("service", "minutes", "code"), [
    ("individual", 15, None), ("individual", 16, "90832"), ("individual", 37, "90832"), ("individual", 38, "90834"),
    ("individual", 52, "90834"), ("individual", 53, "90837"), ("individual", 180, "90837"),
    ("family", 25, None), ("family", 26, "90847"), ("couple", 50, "90847"), ("family_without_client", 50, "90846"),
    ("group", 5, "90853"), ("intake", 70, "90791"), ("crisis", 29, None), ("crisis", 60, "90839"),
    ("medication_management", 9, None), ("medication_management", 10, "99212"), ("medication_management", 19, "99212"),
    ("medication_management", 20, "99213"), ("medication_management", 30, "99214"),
    ("medication_management", 39, "99214"), ("medication_management", 40, "99215"),
    ("medication_management", 90, "99215"),
])
def test_it_suggests_the_code_the_time_rules_give(policies: Policies, service: str, minutes: int, code: str) -> None:
    suggestion = suggest_code(policies.billing.codes, service, minutes)
    assert suggestion.code == code
    assert str(minutes) in suggestion.reason


@given(st.sampled_from(["individual", "family", "couple", "group", "intake", "crisis", "family_without_client",
                        "medication_management"]),
       st.integers(0, 600))
def test_no_length_of_service_fits_two_codes(service: str, minutes: int) -> None:
    from scribe.config import ROOT
    from scribe.policies import load_policies

    codes = load_policies(ROOT / "policies").billing.codes
    fitting = [c for c, r in codes.items() if service in r.service_types and r.min_minutes <= minutes
               and (r.max_minutes is None or minutes <= r.max_minutes)]
    assert len(fitting) <= 1
    assert suggest_code(codes, service, minutes).code == (fitting[0] if fitting else None)


def test_the_policy_refuses_overlapping_bands(tmp_path: Path) -> None:
    import shutil

    from scribe.config import ROOT
    from scribe.policies import load_policies

    shutil.copytree(ROOT / "policies", tmp_path / "policies")
    path = tmp_path / "policies" / "billing.yaml"
    path.write_text(path.read_text().replace("min_minutes: 38, max_minutes: 52", "min_minutes: 30, max_minutes: 52"))
    with pytest.raises(PolicyError, match="90832 and 90834 overlap"):
        load_policies(tmp_path / "policies")


def test_the_time_of_service_must_be_plausible() -> None:
    now = datetime(2026, 11, 2, 15, 0, tzinfo=UTC)
    check_service_time(now - timedelta(minutes=50), now, now=now)
    assert minutes_of(now - timedelta(minutes=50, seconds=59), now) == 50  # whole minutes, rounded down
    for start, end in ((now, now), (now, now - timedelta(minutes=1)), (now - timedelta(hours=9), now),
                       (now + timedelta(minutes=5), now + timedelta(minutes=50))):
        with pytest.raises(InvalidInput):
            check_service_time(start, end, now=now)


def test_the_blind_index_forms_ignore_case_accents_and_punctuation() -> None:
    assert name_tokens("José", "O'Brien-Smith") == ["jose", "o", "brien", "smith"]
    assert name_tokens("MAYA  thompson") == ["maya", "thompson"]
    assert normal_mrn("mrn-0044 17") == normal_mrn("MRN004417") == "MRN004417"
    assert normal_mrn("--") == ""
