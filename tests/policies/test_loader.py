import shutil
from pathlib import Path

import pytest

from scribe.config import ROOT
from scribe.domain.errors import PolicyError
from scribe.policies import load_policies


def copy_policies(tmp_path: Path) -> Path:
    target = tmp_path / "policies"
    shutil.copytree(ROOT / "policies", target)
    return target


def test_the_shipped_policies_load() -> None:
    p = load_policies(ROOT / "policies")
    assert {"soap", "dap", "birp", "girp", "narrative", "supervision"} <= set(p.templates)
    assert p.templates["supervision"].kind == "supervision"


def test_an_unknown_field_names_the_file_and_field(tmp_path: Path) -> None:
    d = copy_policies(tmp_path)
    (d / "signing.yaml").write_text((d / "signing.yaml").read_text() + "sign_anything: true\n")
    with pytest.raises(PolicyError, match=r"signing.yaml: field 'sign_anything'"):
        load_policies(d)


def test_a_consent_step_naming_an_undefined_function_is_refused(tmp_path: Path) -> None:
    d = copy_policies(tmp_path)
    text = (d / "consent.yaml").read_text().replace("draft: [ai_drafting]", "draft: [mind_reading]")
    (d / "consent.yaml").write_text(text)
    with pytest.raises(PolicyError, match=r"consent.yaml"):
        load_policies(d)


def test_a_consent_function_that_no_step_checks_is_refused(tmp_path: Path) -> None:
    """A consent on the form that nothing enforces is a promise nothing keeps."""
    d = copy_policies(tmp_path)
    text = (d / "consent.yaml").read_text().replace("  egress: [egress]", "  egress: []")
    (d / "consent.yaml").write_text(text)
    with pytest.raises(PolicyError, match=r"consent.yaml: field 'steps': no step checks \['egress'\]"):
        load_policies(d)


def test_a_template_whose_key_differs_from_its_file_is_refused(tmp_path: Path) -> None:
    d = copy_policies(tmp_path)
    (d / "note_templates" / "soap.yaml").rename(d / "note_templates" / "soap2.yaml")
    with pytest.raises(PolicyError, match=r"soap2.yaml"):
        load_policies(d)


def test_a_practice_can_add_its_own_template_without_code(tmp_path: Path) -> None:
    d = copy_policies(tmp_path)
    (d / "note_templates" / "intake.yaml").write_text(
        "version: 1\nkey: intake\nname: Intake note\nsections:\n"
        "  - {key: history, title: History, instruction: What the client said about their history.}\n")
    assert load_policies(d).template("intake").sections[0].title == "History"


def test_broken_yaml_is_reported(tmp_path: Path) -> None:
    d = copy_policies(tmp_path)
    (d / "pipeline.yaml").write_text("version: [1\n")
    with pytest.raises(PolicyError, match="not valid YAML"):
        load_policies(d)


def test_a_misspelt_redaction_entity_is_refused_not_silently_dropped(tmp_path: Path) -> None:
    d = copy_policies(tmp_path)
    text = (d / "redaction.yaml").read_text().replace("  PERSON: {threshold: 0.35}", "  PERSN: {threshold: 0.35}")
    (d / "redaction.yaml").write_text(text)
    with pytest.raises(PolicyError, match=r"redaction.yaml.*PERSN"):
        load_policies(d)


def test_every_entity_a_rule_emits_is_one_a_policy_can_name() -> None:
    from scribe.domain.patterns import RECOGNIZERS
    from scribe.domain.redaction import ENTITY_TYPES

    assert {entity for entity, _, _ in RECOGNIZERS} <= ENTITY_TYPES
    assert set(load_policies(ROOT / "policies").redaction.entities) <= ENTITY_TYPES


def test_the_clinical_vocabulary_is_read_from_its_word_files() -> None:
    terms = load_policies(ROOT / "policies").redaction.clinical_terms
    assert {"sbp", "lasix", "sertraline", "foley"} <= terms
    assert "secreations" not in terms  # no corpus's typo is a word of the language


def test_a_practices_own_words_are_added(tmp_path: Path) -> None:
    d = copy_policies(tmp_path)
    (d / "vocabulary" / "local.txt").write_text("# our wards\nkernan quartermain  # step-down units\n")
    terms = load_policies(d).redaction.clinical_terms
    assert {"kernan", "quartermain", "sbp"} <= terms
    assert "#" not in "".join(terms)


SHIPPED = "[vocabulary/clinical.txt, vocabulary/local.txt]"


@pytest.mark.parametrize(("files", "local", "message"), [
    (SHIPPED, "Kernan\n", r"local.txt:1: 'Kernan' is not a lowercase word"),
    (SHIPPED, "\n\nsbp\n", r"local.txt:3: 'sbp' is listed already \(vocabulary/clinical.txt:\d+\)"),
    (SHIPPED, "ward4 ward4\n", r"local.txt:1: 'ward4' is listed already \(vocabulary/local.txt:1\)"),
    (SHIPPED, "georgia\n", r"local.txt:1: 'georgia' is a place's name"),
    (SHIPPED, "lasix;\n", r"'lasix;' is not a lowercase word"),
    ("[vocabulary/clinical.txt, vocabulary/ours.txt]", "", r"vocabulary/ours.txt is missing"),
    ("[../outside.txt]", "", r"outside the policies directory"),
    ("[vocabulary/local.txt]", "# nothing yet\n", r"the word files hold no word"),
    ("[]", "", r"field 'vocabulary'"),
])
def test_a_bad_vocabulary_is_refused_naming_file_and_line(tmp_path: Path, files: str, local: str, message: str) -> None:
    d = copy_policies(tmp_path)
    (tmp_path / "outside.txt").write_text("sbp\n")
    (d / "vocabulary" / "local.txt").write_text(local)
    text = (d / "redaction.yaml").read_text().replace(f"vocabulary: {SHIPPED}", f"vocabulary: {files}")
    (d / "redaction.yaml").write_text(text)
    with pytest.raises(PolicyError, match=message):
        load_policies(d)


def test_a_word_of_a_countrys_name_is_refused_too(tmp_path: Path) -> None:
    d = copy_policies(tmp_path)
    (d / "vocabulary" / "local.txt").write_text("zealand\n")
    with pytest.raises(PolicyError, match="'zealand' is a place's name"):
        load_policies(d)
