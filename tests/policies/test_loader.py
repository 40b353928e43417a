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
