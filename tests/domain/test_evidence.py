from scribe.domain.attribution import unsaid_medicines
from scribe.domain.evidence import (
    CheckedSentence,
    FlagKind,
    align,
    check_draft,
    find_risk_mentions,
    is_negated,
    split_sentences,
)
from scribe.domain.transcript import Speaker, parse_plain_transcript

SESSION = parse_plain_transcript("""CLINICIAN: How have you been sleeping?
CLIENT: Better, about seven hours a night since I started the evening routine.
CLINICIAN: Have you had any thoughts of hurting yourself or suicide?
CLIENT: No, none at all.
CLINICIAN: Let's keep the breathing exercise every morning and meet next week.""")


def kinds(sentence: CheckedSentence) -> set[str]:
    return {f.kind for f in sentence.flags}


def test_a_supported_sentence_links_to_its_segment() -> None:
    [s] = align([("data", "The client reports sleeping about seven hours a night.")], SESSION)
    assert s.evidence == (0, 1)  # the question ("sleeping") and the answer ("seven hours a night")
    assert not s.flags


def test_an_invented_sentence_is_flagged_unsupported() -> None:
    [s] = align([("data", "The client travelled to Paris with her brother.")], SESSION)
    assert FlagKind.UNSUPPORTED in kinds(s)
    assert s.evidence == ()


def test_a_number_not_in_the_evidence_is_flagged() -> None:
    [s] = align([("data", "The client sleeps about ten hours a night.")], SESSION)
    assert FlagKind.NUMBER_MISMATCH in kinds(s)


def test_a_denial_after_a_screening_question_counts_as_denied() -> None:
    mentions = find_risk_mentions(SESSION)
    assert any(m.negated and m.speaker == Speaker.CLIENT for m in mentions if m.category == "suicidal ideation")


def test_a_flipped_risk_statement_is_flagged() -> None:
    result = check_draft([("data", "The client had some thoughts of harming herself and of suicide.")], SESSION)
    assert FlagKind.RISK_POLARITY in kinds(result.sentences[0])


def test_a_faithful_denial_is_not_flagged() -> None:
    result = check_draft([("data", "The client denied thoughts of suicide or of hurting herself.")], SESSION)
    assert FlagKind.RISK_POLARITY not in kinds(result.sentences[0])
    assert not result.draft_flags


def test_a_risk_screening_missing_from_the_draft_is_itself_a_flag() -> None:
    result = check_draft([("data", "The client reports sleeping about seven hours a night.")], SESSION)
    assert {f.kind for f in result.draft_flags} == {FlagKind.RISK_NOT_ADDRESSED}


def test_an_unstated_diagnosis_is_removed_from_the_draft() -> None:
    result = check_draft([("assessment", "The client meets criteria for major depressive disorder.")], SESSION)
    assert not result.sentences
    assert result.removed and FlagKind.CLINICAL_DECISION in kinds(result.removed[0])


def test_agreeing_with_the_recommended_plan_is_not_a_decision_but_a_recommendation_is() -> None:
    plan = check_draft([("plan", "The client understands and agrees with the recommended treatment plan.")], SESSION)
    assert plan.removed == [] and len(plan.sentences) == 1
    emdr = check_draft([("plan", "The clinician recommended a referral for a medication evaluation.")], SESSION)
    assert emdr.removed and FlagKind.CLINICAL_DECISION in kinds(emdr.removed[0])


def test_a_diagnosis_the_clinician_stated_stays() -> None:
    session = parse_plain_transcript("CLINICIAN: Your generalized anxiety disorder symptoms are easing.\nCLIENT: Yes.")
    result = check_draft([("assessment", "The clinician noted generalized anxiety disorder symptoms are easing.")], session)
    assert len(result.sentences) == 1 and not result.removed


def test_a_client_naming_a_medication_is_not_the_clinician_deciding() -> None:
    session = parse_plain_transcript("CLIENT: I want to increase my sertraline dose.\nCLINICIAN: Let's talk about that.")
    result = check_draft([("plan", "Increase sertraline dose.")], session)
    assert result.removed


def test_negation_does_not_cross_a_clause_break() -> None:
    text = "No problems at work, but I have thought about suicide"
    assert not is_negated(text, text.index("suicide"))
    assert is_negated("She denies suicidal thoughts", len("She denies "))


def test_sentences_split_on_lines_bullets_and_stops() -> None:
    assert split_sentences("- First point here.\n2) Second one. Third one!") == ["First point here.", "Second one.", "Third one!"]


def test_a_negated_list_of_risks_stays_negated() -> None:
    text = "The client did not have any thoughts of hurting himself or suicide."
    assert is_negated(text, text.index("suicide"))


OBSERVED = parse_plain_transcript("""CLINICIAN: You seem more rested today, and you're making good eye contact.
CLIENT: I feel calmer. My anxiety was about a five this week.
CLINICIAN: That's good to hear.""")


def test_a_clients_report_in_the_objective_section_is_flagged_misplaced() -> None:
    """Issue 15: Objective holds what the clinician observed; a report (said as a report, or
    restated as an observation of what only the client said) is flagged; an observation is not."""
    sentences = [("objective", "The client reported anxiety at about a five this week."),
                 ("objective", "The clinician observed the client felt calmer."),
                 ("objective", "The client appeared more rested, with good eye contact."),
                 ("subjective", "The client reported feeling calmer, with anxiety about a five this week.")]
    result = check_draft(sentences, OBSERVED, observed=frozenset({"objective"}))
    misplaced = [FlagKind.MISPLACED in kinds(s) for s in result.sentences]
    assert misplaced == [True, True, False, False]
    assert not any(FlagKind.MISPLACED in kinds(s) for s in check_draft(sentences, OBSERVED).sentences)


MEDICINES = frozenset({"sertraline", "zoloft", "trazodone", "lisinopril"})


def test_a_medicine_the_transcript_never_names_is_flagged() -> None:
    said = parse_plain_transcript("CLIENT: the zoloft helps , and i take my lisinoprill in the morning")
    checked = check_draft([("subjective", "She takes trazodone and lisinopril in the morning.")], said,
                          medicines=MEDICINES)
    assert [(f.kind, f.reason) for s in checked.sentences for f in s.flags if f.kind == FlagKind.NOT_SAID] == [
        (FlagKind.NOT_SAID, "names trazodone, which the transcript never names")]
    # named in the session (a misspelt long name, a brand split in two by the recognizer): no flag
    assert unsaid_medicines("Continues Zoloft and lisinopril.", frozenset({"zoloft", "lisinoprill"}), MEDICINES) == []
    heard = parse_plain_transcript("CLIENT: the tra zodone knocks me out")
    assert not [f for s in check_draft([("s", "Trazodone helps her sleep.")], heard, medicines=MEDICINES).sentences
                for f in s.flags if f.kind == FlagKind.NOT_SAID]


def test_a_clinical_decision_the_clinician_said_in_another_form_stays() -> None:
    """The clinician said "milligrams" and "I'd recommend": the draft's "mg" and "recommended"
    are what was said, not the model's decision; "medication" is not "medical"."""
    said = parse_plain_transcript("CLINICIAN: I'd recommend we keep the sertraline at fifty milligrams.\n"
                                  "CLINICIAN: Your medical history is unchanged.")
    kept = check_draft([("plan", "The clinician recommended continuing sertraline 50 mg.")], said)
    assert kept.removed == [] and len(kept.sentences) == 1
    gone = check_draft([("plan", "A medication change was discussed.")], said)
    assert FlagKind.CLINICAL_DECISION in [f.kind for s in gone.removed for f in s.flags]
