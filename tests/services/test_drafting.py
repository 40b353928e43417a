"""Drafting outside the queue (`scribe draft`, the benchmarks) takes the pipeline's steps."""

from __future__ import annotations

from scribe.domain.evidence import FlagKind
from scribe.domain.transcript import parse_plain_transcript
from scribe.policies.loader import Policies
from scribe.services.drafting import draft_and_check
from tests.conftest import Fakes

SESSION = "CLIENT: I have been sleeping about five hours a night.\nCLINICIAN: Let's keep a sleep diary this week.\n"


def test_a_diagnosis_nobody_said_is_removed_and_the_rest_kept(fakes: Fakes, policies: Policies) -> None:
    fakes.drafter.extra_sentence = "The client meets criteria for major depressive disorder."
    drafted = draft_and_check(fakes.drafter, fakes.redactor, policies, policies.template("soap"),
                              parse_plain_transcript(SESSION))
    assert [c.text for c in drafted.checked.removed] == [fakes.drafter.extra_sentence]
    kept = " ".join(c.text for c in drafted.checked.sentences)
    assert "five hours a night" in kept and "major depressive" not in kept
    assert drafted.parts_noted == 0


def test_a_number_the_transcript_does_not_hold_is_flagged(fakes: Fakes, policies: Policies) -> None:
    fakes.drafter.extra_sentence = "The client has been sleeping about eight hours a night."
    drafted = draft_and_check(fakes.drafter, fakes.redactor, policies, policies.template("soap"),
                              parse_plain_transcript(SESSION))
    flagged = next(c for c in drafted.checked.sentences if "eight hours" in c.text)
    assert FlagKind.NUMBER_MISMATCH in {f.kind for f in flagged.flags}


def test_a_long_transcript_is_read_in_parts_with_the_policy_part_size(fakes: Fakes, policies: Policies) -> None:
    turns = "".join(f"CLIENT: On day {i} I walked to the park and sat by the pond for an hour.\n"
                    f"CLINICIAN: What did you notice while you sat there on day {i}?\n" for i in range(60))
    drafted = draft_and_check(fakes.drafter, fakes.redactor, policies, policies.template("soap"),
                              parse_plain_transcript(turns))
    assert drafted.parts_noted >= 2
    assert fakes.drafter.earlier[-1] and len(fakes.drafter.earlier[-1]) == drafted.parts_noted
    assert len(fakes.drafter.calls[-1][0].segments) < 120  # the sections were written from the rest, not all of it


def test_a_section_the_system_writes_is_not_given_to_the_model(fakes: Fakes, policies: Policies) -> None:
    template = policies.template(policies.supervision_note_type)
    system = {s.key for s in template.sections if s.source == "system"}
    assert system  # the supervision template has one (the cases reviewed)
    draft_and_check(fakes.drafter, fakes.redactor, policies, template, parse_plain_transcript(SESSION))
    asked = {s.key for s in fakes.drafter.calls[-1][2]}
    assert asked and not asked & system
