"""Load and cross-check every policy file; a bad file stops start-up naming file and field."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from scribe.domain.errors import PolicyError
from scribe.domain.grammar import Grammar, GrammarDataError, parse_grammar
from scribe.domain.pattern_table import PatternDataError, PatternTable, parse_pattern_table
from scribe.domain.places import COUNTRIES, US_STATES, place_words
from scribe.policies.schema import (
    BillingPolicy,
    ConsentPolicy,
    EgressPolicy,
    LicenceType,
    LicensurePolicy,
    NoteTemplate,
    PipelinePolicy,
    RedactionPolicy,
    RetentionPolicy,
    RolesPolicy,
    SecurityPolicy,
    SigningPolicy,
)

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class Policies:
    directory: Path
    pipeline: PipelinePolicy
    consent: ConsentPolicy
    signing: SigningPolicy
    roles: RolesPolicy
    templates: dict[str, NoteTemplate]
    licensure: LicensurePolicy
    redaction: RedactionPolicy
    egress: EgressPolicy
    security: SecurityPolicy
    retention: RetentionPolicy
    billing: BillingPolicy

    def licence_type(self, name: str) -> tuple[str, LicenceType]:
        key = name if name in self.licensure.types else self.licensure.default_type
        return key, self.licensure.types[key]

    @property
    def supervision_note_type(self) -> str:
        return next(k for k, t in self.templates.items() if t.kind == "supervision")

    def template(self, key: str) -> NoteTemplate:
        try:
            return self.templates[key]
        except KeyError:
            from scribe.domain.errors import InvalidInput

            raise InvalidInput(f"unknown note type (known: {', '.join(sorted(self.templates))})") from None

    @property
    def progress_note_types(self) -> list[str]:
        order = ["soap", "dap", "birp", "girp", "narrative"]
        keys = [k for k, t in self.templates.items() if t.kind == "progress"]
        return sorted(keys, key=lambda k: (order.index(k) if k in order else len(order), k))


def _read_yaml(path: Path, missing: str) -> object:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PolicyError(missing) from None
    except yaml.YAMLError as exc:
        raise PolicyError(f"{path}: not valid YAML ({exc.__class__.__name__})") from None


def _load(path: Path, model: type[M]) -> M:
    data = _read_yaml(path, f"{path}: file is missing")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise PolicyError(f"{path}: field '{where}': {first['msg']} ({exc.error_count()} error(s))") from None


_WORDS = re.compile(r"[a-z0-9][a-z0-9'&/.+-]*")


def _read_words(directory: Path, path: Path, field: str, names: list[str],
                refuse: frozenset[str] = frozenset()) -> frozenset[str]:
    """The words of the word files ``names`` (relative to the policies directory): each word
    lowercase, none twice, none in ``refuse`` (what the caller must never see listed)."""
    where: dict[str, str] = {}
    for name in names:
        words_path = (directory / name).resolve()
        if not words_path.is_relative_to(directory.resolve()):
            raise PolicyError(f"{path}: field '{field}': {name} is outside the policies directory")
        try:
            text = words_path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise PolicyError(f"{path}: field '{field}': {name} is missing") from None
        for number, line in enumerate(text.splitlines(), start=1):
            for word in line.split("#", 1)[0].split():
                here = f"{name}:{number}"
                if not _WORDS.fullmatch(word):
                    raise PolicyError(f"{here}: '{word}' is not a lowercase word")
                if word in where:
                    raise PolicyError(f"{here}: '{word}' is listed already ({where[word]})")
                if word in refuse:
                    raise PolicyError(f"{here}: '{word}' is a place's name: listed here it would never be redacted")
                where[word] = here
    if not where:
        raise PolicyError(f"{path}: field '{field}': the word files hold no word")
    return frozenset(where)


def _load_redaction(directory: Path) -> RedactionPolicy:
    """The redaction policy with its vocabulary read: every word file it names, each word
    lowercase, none twice, none a country's or a US state's name nor a word of one ('zealand'):
    a place the redactor would then never see as one."""
    path = directory / "redaction.yaml"
    policy = _load(path, RedactionPolicy)
    places = COUNTRIES | US_STATES | place_words()  # the same place words the redactor's lexicon holds
    words = _read_words(directory, path, "vocabulary", policy.vocabulary, frozenset(places))
    return policy.with_vocabulary(words, _load_patterns(directory, path, policy), _load_grammar(directory, path, policy))


def _load_pipeline(directory: Path) -> PipelinePolicy:
    """The pipeline policy with its medicines list read (the same checks as any word file)."""
    path = directory / "pipeline.yaml"
    policy = _load(path, PipelinePolicy)
    return policy.with_medicines(_read_words(directory, path, "medications", policy.medications))


def _read_data_file(directory: Path, path: Path, field: str, name: str) -> object:
    """The YAML data file a policy names in ``field`` (relative to the policies directory)."""
    data_path = (directory / name).resolve()
    if not data_path.is_relative_to(directory.resolve()):
        raise PolicyError(f"{path}: field '{field}': {name} is outside the policies directory")
    return _read_yaml(data_path, f"{path}: field '{field}': {name} is missing")


def _load_patterns(directory: Path, path: Path, policy: RedactionPolicy) -> PatternTable:
    """The regular expressions for identifiers with a shape, each checked against its own
    examples (pattern_table.parse_pattern_table says what is checked)."""
    data = _read_data_file(directory, path, "patterns", policy.patterns)
    try:
        return parse_pattern_table(data, frozenset(policy.entities))
    except PatternDataError as exc:
        raise PolicyError(f"{policy.patterns}: {exc}") from None


def _load_grammar(directory: Path, path: Path, policy: RedactionPolicy) -> Grammar:
    """The English word lists the rules read as grammar (grammar.parse_grammar says what is checked)."""
    data = _read_data_file(directory, path, "grammar", policy.grammar)
    try:
        return parse_grammar(data)
    except GrammarDataError as exc:
        raise PolicyError(f"{policy.grammar}: {exc}") from None


def load_policies(directory: Path) -> Policies:
    directory = Path(directory)
    templates: dict[str, NoteTemplate] = {}
    tdir = directory / "note_templates"
    for path in sorted(tdir.glob("*.yaml")):
        template = _load(path, NoteTemplate)
        if template.key != path.stem:
            raise PolicyError(f"{path}: field 'key': '{template.key}' must match the file name '{path.stem}'")
        keys = [s.key for s in template.sections]
        if len(set(keys)) != len(keys):
            raise PolicyError(f"{path}: field 'sections': duplicate section keys")
        templates[template.key] = template
    if not templates:
        raise PolicyError(f"{tdir}: no note templates found")
    consent = _load(directory / "consent.yaml", ConsentPolicy)
    no_form = [f for f in consent.functions if f not in consent.forms]
    if no_form:
        raise PolicyError(f"{directory / 'consent.yaml'}: field 'forms': no form for {no_form}")
    no_rule = [f for f in consent.functions if f not in consent.on_withdrawal]
    if no_rule:
        raise PolicyError(f"{directory / 'consent.yaml'}: field 'on_withdrawal': no rule for {no_rule}")
    for step, needed in consent.steps.items():
        unknown = [f for f in needed if f not in consent.functions]
        if unknown:
            raise PolicyError(f"{directory / 'consent.yaml'}: field 'steps.{step}': undefined function(s) {unknown}")
    unnamed = [f for f in consent.functions if not any(f in needed for needed in consent.steps.values())]
    if unnamed:  # a consent no step checks would be a promise nothing keeps
        raise PolicyError(f"{directory / 'consent.yaml'}: field 'steps': no step checks {unnamed}")
    if not any(t.kind == "supervision" for t in templates.values()):
        raise PolicyError(f"{tdir}: no template of kind 'supervision'")
    licensure = _load(directory / "licensure.yaml", LicensurePolicy)
    if licensure.default_type not in licensure.types:
        raise PolicyError(f"{directory / 'licensure.yaml'}: field 'default_type': '{licensure.default_type}' is not "
                          "one of the types")
    return Policies(
        directory=directory,
        pipeline=_load_pipeline(directory),
        consent=consent,
        signing=_load(directory / "signing.yaml", SigningPolicy),
        roles=_load(directory / "roles.yaml", RolesPolicy),
        templates=templates,
        licensure=licensure,
        redaction=_load_redaction(directory),
        egress=_load(directory / "egress.yaml", EgressPolicy),
        security=_load(directory / "security.yaml", SecurityPolicy),
        retention=_load(directory / "retention.yaml", RetentionPolicy),
        billing=_load(directory / "billing.yaml", BillingPolicy),
    )
