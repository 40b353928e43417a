import re
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
    assert {"soap", "dap", "birp", "girp", "narrative", "med_management", "supervision"} <= set(p.templates)
    # a prescriber's visit: what was examined and measured holds only what the clinician observed
    assert p.templates["med_management"].observed_sections == {"examination", "results"}
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
    from scribe.domain.redaction import ENTITY_TYPES

    redaction = load_policies(ROOT / "policies").redaction
    assert len(redaction.pattern_table.rules) >= 25
    assert redaction.pattern_table.entities <= set(redaction.entities) <= ENTITY_TYPES


def test_the_clinical_vocabulary_is_read_from_its_word_files() -> None:
    terms = load_policies(ROOT / "policies").redaction.clinical_terms
    assert {"sbp", "lasix", "sertraline", "foley"} <= terms
    assert "secreations" not in terms  # no corpus's typo is a word of the language
    assert {"hematuria", "echocardiogram"} <= terms  # seen in lowercase in two sources (bench/clinical_words.py)


def test_the_words_seen_in_clinical_text_hold_no_name_or_place() -> None:
    """clinical_seen.txt is written from other people's clinical text: a word listed there is never
    redacted, so none may be a known first name, surname or place."""
    from scribe.engines.presidio import build_lexicon

    policy = load_policies(ROOT / "policies").redaction
    lexicon = build_lexicon(policy.clinical_terms, policy.pattern_table, policy.grammar_words)
    seen = {w for line in (ROOT / "policies" / "vocabulary" / "clinical_seen.txt").read_text().splitlines()
            for w in line.split("#", 1)[0].split()}
    assert len(seen) > 100
    assert not seen & (lexicon.names | lexicon.places)


def test_a_practices_own_words_are_added(tmp_path: Path) -> None:
    d = copy_policies(tmp_path)
    (d / "vocabulary" / "local.txt").write_text("# our wards\nkernan quartermain  # step-down units\n")
    terms = load_policies(d).redaction.clinical_terms
    assert {"kernan", "quartermain", "sbp"} <= terms
    assert "#" not in "".join(terms)


SHIPPED = "[vocabulary/clinical.txt, vocabulary/clinical_seen.txt, vocabulary/local.txt]"


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


# Error injection on the pattern file: each planted fault is refused when the policies load,
# naming the file and the rule, so a broken or drifting rule never reaches a note.
PATTERN_FAULTS = [
    ("a rule stops finding its own example (a digit class narrowed)", r"\bNPI(?:", r"\bNPX(?:",
     r"patterns\[\d+\]\.finds\[0\]: expected to find '1234567893'"),
    ("a rule starts finding a counter-example", "'a 45 year old', ", "'a 95 year old', ",
     r"misses\[0\]: expected to find nothing in 'a 95 year old'"),
    ("a regular expression that does not compile", r"'(?<![\w''])''\d\d\b'", r"'(?<![\w''])''\d\d\b('",
     r"\.regex: does not compile"),
    ("a misspelt fragment", "<<NOT_STREET>>", "<<NOT_STRET>>", r"no fragment <<NOT_STRET>>"),
    ("an entity no pattern may emit", "  - entity: NPI\n", "  - entity: PERSON\n", r"'PERSON' is not an entity a pattern finds"),
    ("a group the expression lacks", "    group: 1\n", "    group: 3\n", r"\.group: the expression has groups 0\.\.1"),
    ("a word listed twice", "'street', 'st', ", "'street', 'st', 'street', ", r"STREET_SUFFIX\.any_of: 'street' is listed twice"),
    ("a rule with no counter-example", "    misses: ['NPI pending']\n", "", r"\.misses: give at least one text"),
]


def test_a_pattern_for_an_entity_the_policy_does_not_name_is_refused(tmp_path: Path) -> None:
    d = copy_policies(tmp_path)
    text = (d / "redaction.yaml").read_text().replace("  NPI: {threshold: 0.4}\n", "")
    (d / "redaction.yaml").write_text(text)
    with pytest.raises(PolicyError, match=r"NPI is not in redaction.yaml's entities: it would never be redacted"):
        load_policies(d)


def test_the_pattern_file_is_the_one_the_redactor_runs() -> None:
    """What the file says is what the composition finds: a rule's example, through the whole
    redaction composition (not only the regular expression)."""
    from scribe.domain.composition import Composition
    from scribe.domain.recognizers import view_of
    from scribe.domain.redaction import KnownMatcher
    from scribe.domain.vocabulary import Lexicon

    policy = load_policies(ROOT / "policies").redaction
    lexicon = Lexicon(names=frozenset(), places=frozenset(), common=frozenset({"call", "today"}),
                      clinical=policy.clinical_terms, patterns=policy.pattern_table,
                      grammar=policy.grammar_words)
    composition = Composition(dict.fromkeys(policy.entities, 0.0), specific_dates=True)
    text = "call +44 7700 921 916 today"
    found = [(text[s.start:s.end], s.entity) for s in composition.spans(view_of(text, lexicon), [], KnownMatcher.of([]))]
    assert found == [("+44 7700 921 916", "PHONE_NUMBER")]


@pytest.mark.parametrize(("setting", "content", "message"), [
    ("vocabulary/gone.yaml", None, r"field 'patterns': vocabulary/gone\.yaml is missing"),
    ("vocabulary/broken.yaml", "version: [1\n", r"broken\.yaml: not valid YAML"),
    ("../elsewhere.yaml", "version: 1\n", r"field 'patterns': \.\./elsewhere\.yaml is outside the policies directory"),
], ids=["missing", "not YAML", "outside"])
def test_the_pattern_file_itself_must_be_there_and_readable(tmp_path: Path, setting: str, content: str | None,
                                                            message: str) -> None:
    d = copy_policies(tmp_path)
    if content is not None:
        (d / setting).resolve().write_text(content)
    text = (d / "redaction.yaml").read_text().replace("patterns: vocabulary/patterns.yaml", f"patterns: {setting}")
    (d / "redaction.yaml").write_text(text)
    with pytest.raises(PolicyError, match=message):
        load_policies(d)


# Error injection on the grammar word lists: each planted fault is refused when the policies load.
GRAMMAR_FAULTS = [
    ("a word in capitals", "not_names: >-\n  a about", "not_names: >-\n  a About", r"not_names: 'About' is not a lowercase word"),
    ("a word listed twice", "not_places: >-\n  aa", "not_places: >-\n  bed aa", r"not_places: 'bed' is listed twice"),
    ("a misspelt list", "after_title: >-", "after_titel: >-", r"unknown lists: after_titel"),
    ("an empty list", "name_connectors: >-\n  am an ben da de del der di do dos du la le on sur upon\n",
     "name_connectors: ''\n", r"name_connectors: expected words separated by spaces"),
    ("a list renamed", "function_words: >-", "# function_words: >-\nunused: >-", r"unknown lists: unused"),
]


DATA_FAULTS = [("patterns.yaml", *f) for f in PATTERN_FAULTS] + [("grammar.yaml", *f) for f in GRAMMAR_FAULTS]


@pytest.mark.parametrize(("file", "what", "old", "new", "message"), DATA_FAULTS,
                         ids=[f"{f[0]}: {f[1]}" for f in DATA_FAULTS])
def test_a_broken_data_file_is_refused_naming_the_rule_or_list(tmp_path: Path, file: str, what: str, old: str,
                                                               new: str, message: str) -> None:
    d = copy_policies(tmp_path)
    path = d / "vocabulary" / file
    text = path.read_text(encoding="utf-8")
    assert old in text, what
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(PolicyError, match=rf"vocabulary/{re.escape(file)}: .*" + message):
        load_policies(d)


def test_a_grammar_file_missing_a_list_is_refused(tmp_path: Path) -> None:
    d = copy_policies(tmp_path)
    path = d / "vocabulary" / "grammar.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text[: text.index("function_words: >-")], encoding="utf-8")  # the last list, cut off
    with pytest.raises(PolicyError, match=r"vocabulary/grammar\.yaml: missing lists: function_words"):
        load_policies(d)


def test_the_grammar_file_is_what_the_rules_read(tmp_path: Path) -> None:
    """A word added to the file's not_names ends a cued name there, through the whole
    composition: the lists are the data the rules run on, not a copy of them."""
    from scribe.domain.composition import Composition
    from scribe.domain.recognizers import view_of
    from scribe.domain.redaction import KnownMatcher
    from scribe.domain.vocabulary import Lexicon

    def names(policies_dir: Path) -> list[str]:
        policy = load_policies(policies_dir).redaction
        lexicon = Lexicon(names=frozenset({"laura"}), places=frozenset(), common=frozenset({"my", "came"}),
                          clinical=policy.clinical_terms, patterns=policy.pattern_table, grammar=policy.grammar_words)
        text = "my sister laura came over"
        composition = Composition(dict.fromkeys(policy.entities, 0.0), specific_dates=True)
        return [text[s.start:s.end] for s in composition.spans(view_of(text, lexicon), [], KnownMatcher.of([]))
                if s.entity == "PERSON"]

    assert names(ROOT / "policies") == ["laura"]
    d = copy_policies(tmp_path)
    path = d / "vocabulary" / "grammar.yaml"
    path.write_text(path.read_text().replace("not_names: >-\n  a about", "not_names: >-\n  laura a about", 1))
    assert names(d) == []


def test_the_medicines_list_is_read_and_checked_like_any_word_file(tmp_path: Path) -> None:
    medicines = load_policies(ROOT / "policies").pipeline.medicines
    assert {"sertraline", "zoloft", "lisinopril", "lithium"} <= medicines
    d = copy_policies(tmp_path)
    (d / "vocabulary" / "our_medicines.txt").write_text("compounded-cream\n")
    text = (d / "pipeline.yaml").read_text().replace(
        "medications: [vocabulary/medications.txt]", "medications: [vocabulary/medications.txt, vocabulary/our_medicines.txt]")
    (d / "pipeline.yaml").write_text(text)
    assert "compounded-cream" in load_policies(d).pipeline.medicines
    (d / "vocabulary" / "our_medicines.txt").write_text("Zoloft\n")
    with pytest.raises(PolicyError, match=r"our_medicines.txt:1: 'Zoloft' is not a lowercase word"):
        load_policies(d)
    (d / "vocabulary" / "our_medicines.txt").write_text("zoloft\n")
    with pytest.raises(PolicyError, match=r"'zoloft' is listed already \(vocabulary/medications.txt:\d+\)"):
        load_policies(d)
