"""Strict schemas for the files in ``policies/`` (extra fields are errors)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from scribe.domain.grammar import NO_GRAMMAR, Grammar
from scribe.domain.pattern_table import NO_PATTERNS, PatternTable
from scribe.domain.permissions import CLINICAL, CLINICAL_TEXT, PERMISSIONS


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TemplateSection(Strict):
    key: str = Field(pattern=r"^[a-z][a-z0-9_]*$", description="Stable id of the section")
    title: str = Field(description="Heading shown to the clinician and in the signed note")
    instruction: str = Field(description="What the model is asked to write in this section")
    max_sentences: int = Field(default=4, ge=1, le=12)
    source: Literal["model", "system"] = Field(
        default="model", description="model: drafted by the language model; system: filled in by scribe (e.g. duration)")
    holds: Literal["any", "observed"] = Field(
        default="any", description="observed: only what the clinician observed or measured (SOAP's Objective); "
        "a client's report drafted there is flagged as misplaced")


class NoteTemplate(Strict):
    version: Literal[1]
    key: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name: str
    kind: Literal["progress", "supervision"] = "progress"
    sections: list[TemplateSection] = Field(min_length=1)

    @property
    def observed_sections(self) -> frozenset[str]:
        return frozenset(s.key for s in self.sections if s.holds == "observed")


class UploadPolicy(Strict):
    max_bytes: int = Field(gt=0, description="Largest accepted upload, in bytes")
    max_seconds: float = Field(gt=0, description="Longest accepted recording, in seconds")
    min_seconds: float = Field(default=1.0, ge=0)
    formats: list[Literal["wav", "mp3", "m4a", "webm", "ogg"]]


class DecoderPolicy(Strict):
    memory_mb: int = Field(default=2048, ge=256, description="Address-space limit of the decoding child process")
    cpu_seconds: int = Field(default=900, ge=10, description="CPU-time limit of the decoding child process")
    wall_seconds: float = Field(default=1200, ge=10, description="The decoding child is killed after this long")


class TimeoutPolicy(Strict):
    transcribe_seconds: float = Field(default=600, gt=0, description="Transcription time limit: this base ...")
    transcribe_per_audio_second: float = Field(default=1.0, gt=0, description="... plus this much per second of audio")
    draft_seconds: float = Field(default=2400, gt=0, description="Drafting every section of one note")
    other_seconds: float = Field(default=600, gt=0, description="Pseudonymizing, evidence")


class PipelinePolicy(Strict):
    version: Literal[1]
    upload: UploadPolicy
    decoder: DecoderPolicy = DecoderPolicy()
    timeouts: TimeoutPolicy = TimeoutPolicy()
    max_attempts: int = Field(default=3, ge=1, le=10, description="Tries per stage for retryable errors")
    lease_seconds: int = Field(default=120, ge=10, description="A running job not heard from for this long is resumed elsewhere")
    clinician_is_first_speaker: bool = Field(default=True, description="Speaker-turn rule: who speaks first is the clinician")
    live_transcription: bool = Field(default=True, description="Transcribe a browser recording while it is made")
    digest_part_chars: int = Field(default=2000, description="A long session is read in parts of about this many "
                                   "characters, each noted as soon as it is transcribed; 0 reads it whole")

    medications: list[str] = Field(
        default=["vocabulary/medications.txt"], min_length=1,
        description="Word files (relative to the policies directory) of medicines by name: a draft sentence that "
                    "names one the transcript never names is flagged")
    _medicines: frozenset[str] = PrivateAttr(default=frozenset())

    @property
    def medicines(self) -> frozenset[str]:
        """The words of the ``medications`` files, read and checked by the loader."""
        return self._medicines

    def with_medicines(self, words: frozenset[str]) -> PipelinePolicy:
        policy = self.model_copy()
        policy._medicines = words
        return policy

    @field_validator("digest_part_chars")
    @classmethod
    def _part_size(cls, v: int) -> int:
        if v != 0 and not 1000 <= v <= 20000:
            raise ValueError("digest_part_chars is 0 (read the whole transcript) or between 1000 and 20000")
        return v


ConsentFunction = Literal[
    "record_audio", "transcribe", "ai_drafting", "keep_audio", "supervision_use", "egress", "part2_disclosure"
]


# The pipeline's stages, and the other places a consent is checked: keep_audio (the audio kept
# once the note is signed), supervision (a case discussed in a supervision meeting's draft),
# egress (anything sent to a destination outside this server), part2_disclosure (a Part 2
# record sent out or exported as disclosable).
ConsentStep = Literal["record", "upload", "transcribe", "pseudonymize", "draft", "evidence", "keep_audio",
                      "supervision", "egress", "part2_disclosure"]


class WithdrawalRule(Strict):
    purge: list[Literal["audio", "transcript", "draft"]] = Field(description="What is removed")
    sessions: Literal["all", "unsigned", "signed"] = Field(description="From which of the client's sessions")
    supervision: list[Literal["audio", "transcript", "draft"]] = Field(
        default_factory=list, description="What of the client's case is removed from the supervision meetings "
        "that discussed it")


class ConsentForm(Strict):
    version: str = Field(min_length=1, max_length=40, description="Recorded with every grant made on this form")
    text: str = Field(min_length=40, description="Exactly what the client is shown; recorded with every grant")


class ConsentPolicy(Strict):
    version: Literal[1]
    expiring_soon_days: int = Field(default=30, ge=1, le=365)
    functions: dict[ConsentFunction, str] = Field(description="Every consent function and its plain-language meaning")
    forms: dict[ConsentFunction, ConsentForm] = Field(description="The versioned form shown for each function")
    steps: dict[ConsentStep, list[ConsentFunction]] = Field(
        description="Which consents each step needs, checked when it runs; every function must be named by one")
    on_withdrawal: dict[ConsentFunction, WithdrawalRule] = Field(
        description="What withdrawing each consent purges; every function must have a rule")


class SigningPolicy(Strict):
    version: Literal[1]
    allow_zero_edit_signing: bool = Field(description="May a clinician sign a draft without editing any section?")
    require_service_code: bool = Field(default=True, description="A therapy session's service (time, place, code) "
                                       "must be confirmed before its note is signed")
    attestation: str = Field(description="What the signer attests when they edited the draft")
    attestation_unedited: str = Field(
        default="I reviewed this AI-assisted draft and changed nothing; it reflects the session I provided.",
        description="What the signer attests when they changed nothing (the wording follows what happened)")
    reauth_window_seconds: int = Field(default=0, ge=0, description="0: the password is re-entered at every signature")
    section_review: Literal["save", "edit_or_typed"] = Field(
        default="save", description="save: saving a section (changed or not) marks it reviewed; edit_or_typed: "
        "a section counts as reviewed only once edited, or confirmed unchanged by typing typed_confirmation")
    typed_confirmation: str = Field(default="reviewed", min_length=3, max_length=40,
                                    description="What a clinician types to confirm a section unchanged")


class RolePermissions(Strict):
    description: str
    can: list[str]


class RolesPolicy(Strict):
    version: Literal[1]
    roles: dict[Literal["clinician", "supervisor", "admin", "intake"], RolePermissions]

    @model_validator(mode="after")
    def _known_and_no_clinical_admin(self) -> RolesPolicy:
        for name, role in self.roles.items():
            unknown = sorted(set(role.can) - set(PERMISSIONS))
            if unknown:
                raise ValueError(f"role '{name}': unknown permission(s) {unknown}")
        admin = self.roles.get("admin")
        if admin is not None and set(admin.can) & CLINICAL:
            raise ValueError(f"admins never read clinical content: remove {sorted(set(admin.can) & CLINICAL)}")
        intake = self.roles.get("intake")
        if intake is not None and set(intake.can) & CLINICAL_TEXT:
            raise ValueError(f"intake staff never read clinical text: remove {sorted(set(intake.can) & CLINICAL_TEXT)}")
        return self


class SessionRules(Strict):
    idle_minutes: int = Field(ge=1, le=30, description="NIST 800-63B AAL2 allows at most 30")
    absolute_hours: int = Field(ge=1, le=12)
    warn_seconds: int = Field(ge=10, le=600)


class PasswordRules(Strict):
    min_length: int = Field(ge=12)
    min_strength: int = Field(ge=0, le=4)


class LoginRules(Strict):
    throttle_after: int = Field(ge=1)
    lockout_after: int = Field(ge=2, le=10)
    lockout_minutes: int = Field(default=30, ge=1, le=24 * 60,
                                 description="How long a lock lasts; it expires by itself (an admin may lift it sooner)")
    address_throttle_after: int = Field(default=20, ge=5,
                                        description="Failures from one client address before it waits")


class MfaRules(Strict):
    required_roles: list[Literal["clinician", "supervisor", "admin", "intake"]]
    issuer: str


class BreakGlassRules(Strict):
    max_minutes: int = Field(ge=5, le=24 * 60)
    max_per_day: int = Field(default=3, ge=1, le=20, description="Grants one user may take in any 24 hours")
    licensed_only: bool = Field(default=True, description="Only licensed clinicians may take a grant")
    new_account_days: int = Field(default=30, ge=0, le=365,
                                  description="Grants by accounts younger than this are flagged for review")


class InvitationRules(Strict):
    valid_hours: int = Field(default=72, ge=1, le=24 * 14, description="How long an invitation link works")


class BusinessHours(Strict):
    start_hour: int = Field(default=7, ge=0, le=23, description="Reads before this local hour count as out of hours")
    end_hour: int = Field(default=19, ge=1, le=24, description="... and from this local hour on")
    timezone: str = Field(default="UTC", description="The practice's time zone, e.g. America/Chicago")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, name: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {name!r}") from None
        return name


class SecurityPolicy(Strict):
    version: Literal[1]
    sessions: SessionRules
    passwords: PasswordRules
    login: LoginRules
    mfa: MfaRules
    break_glass: BreakGlassRules
    invitations: InvitationRules = InvitationRules()
    business_hours: BusinessHours = Field(default_factory=BusinessHours,
                                          description="The compliance overview counts reads of client information "
                                          "outside these hours")

    @model_validator(mode="after")
    def _phi_roles_need_mfa(self) -> SecurityPolicy:
        missing = {"clinician", "supervisor", "intake"} - set(self.mfa.required_roles)
        if missing:
            raise ValueError(f"roles that read clients' charts or clinical content need a second factor: "
                             f"{sorted(missing)}")
        if self.login.throttle_after >= self.login.lockout_after:
            raise ValueError("throttling must start before the lock-out")
        return self


class AfterSigning(Strict):
    audio_days: int = Field(ge=0)
    transcript_days: int = Field(ge=0)
    draft_days: int = Field(ge=0)


class RetentionMinimums(Strict):
    signed_notes_years: int = Field(ge=6)
    audit_years: int = Field(ge=6, description="HIPAA 164.316(b)(2)(i): six years at least")


class UnsignedRetention(Strict):
    days: int = Field(ge=1, description="A session never signed (voided, stopped, failed, left in review): its "
                      "audio, transcript and draft after this many days without a change")


class RetentionPolicy(Strict):
    version: Literal[1]
    after_signing: AfterSigning = Field(description="Therapy sessions, from when the note became a record "
                                        "(a supervisee's: when co-signed)")
    supervision_meetings: AfterSigning = Field(description="Supervision meetings, from when their note was signed")
    unsigned: UnsignedRetention
    abandoned_recording_hours: int = Field(ge=1, description="A browser recording left open this long: its "
                                           "pieces are purged and the session stopped")
    minimums: RetentionMinimums


class HoursTargets(Strict):
    direct_contact: float = Field(ge=0)
    individual_supervision: float = Field(ge=0)
    group_supervision: float = Field(ge=0)


class LicenceType(Strict):
    description: str
    targets: HoursTargets


class LicensurePolicy(Strict):
    version: Literal[1]
    default_type: str = Field(description="Licence type used when a supervisee's account names none")
    types: dict[str, LicenceType] = Field(min_length=1)


class EntityRule(Strict):
    threshold: float = Field(ge=0.0, le=1.0, description="Minimum recognizer score to remove it")


class RedactionPolicy(Strict):
    version: Literal[1]
    entities: dict[str, EntityRule] = Field(min_length=1, description="Entities removed after the chart's identifiers")
    dates: Literal["specific", "all"] = Field(default="specific")
    operator: Literal["surrogate"] = "surrogate"
    vocabulary: list[str] = Field(
        default=["vocabulary/clinical.txt"], min_length=1,
        description="Word files (relative to the policies directory) of clinical words that are no one's name")
    patterns: str = Field(
        default="vocabulary/patterns.yaml",
        description="The regular expressions for identifiers with a shape, each with the examples it must find")
    grammar: str = Field(
        default="vocabulary/grammar.yaml",
        description="The English word lists the rules read as grammar: words after a cue that are no name, and the like")
    notes_model: bool = Field(
        default=False,
        description="Also read clinical notes in capitals or shorthand with the NER trained on nursing notes "
                    "(models: notes-ner): more identifiers found there, and more words removed that were none")
    _clinical_terms: frozenset[str] = PrivateAttr(default=frozenset())
    _pattern_table: PatternTable = PrivateAttr(default=NO_PATTERNS)
    _grammar_words: Grammar = PrivateAttr(default=NO_GRAMMAR)

    @property
    def clinical_terms(self) -> frozenset[str]:
        """The words of the ``vocabulary`` files, read and checked by the loader."""
        return self._clinical_terms

    @property
    def pattern_table(self) -> PatternTable:
        """The ``patterns`` file, read and checked by the loader."""
        return self._pattern_table

    @property
    def grammar_words(self) -> Grammar:
        """The ``grammar`` file, read and checked by the loader."""
        return self._grammar_words

    def with_vocabulary(self, words: frozenset[str], patterns: PatternTable, grammar: Grammar) -> RedactionPolicy:
        policy = self.model_copy()
        policy._clinical_terms = words
        policy._pattern_table = patterns
        policy._grammar_words = grammar
        return policy

    @field_validator("entities")
    @classmethod
    def _known(cls, entities: dict[str, EntityRule]) -> dict[str, EntityRule]:
        from scribe.domain.redaction import ENTITY_TYPES

        unknown = sorted(set(entities) - ENTITY_TYPES)
        if unknown:
            raise ValueError(f"no recognizer finds {', '.join(unknown)} (a typo would switch an entity off); "
                             f"known: {', '.join(sorted(ENTITY_TYPES))}")
        return entities


class EgressDestination(Strict):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    url: str = Field(pattern=r"^https?://", description="Where the gateway POSTs: https://, or http:// to loopback")
    receives: list[Literal["redacted_text", "identified_record"]] = Field(
        min_length=1, description="Never audio. identified_record: signed notes with the client's identifiers "
        "(the practice's own EHR only)")
    part2: bool = Field(default=False, description="May it receive 42 CFR Part 2 material (with consent and notice)?")
    qsoa: bool = Field(default=False, description="A qualified service organization under a signed agreement "
                       "(42 CFR 2.12(c)(4)): Part 2 material without each client's consent (still with the notice)")


    @field_validator("url")
    @classmethod
    def _secure(cls, url: str) -> str:
        from scribe.domain.egress import check_destination_url

        check_destination_url(url)
        return url


class CodeRule(Strict):
    label: str = Field(description="What the code means, as shown to the clinician")
    service_types: list[Literal["individual", "couple", "family", "family_without_client", "group", "intake",
                                "crisis", "medication_management"]] = Field(min_length=1)
    min_minutes: int = Field(default=0, ge=0, description="The time rule: at least this many minutes of service ...")
    max_minutes: int | None = Field(default=None, ge=1, description="... and at most this many (none: no upper bound)")


class BillingPolicy(Strict):
    version: Literal[1]
    codes: dict[str, CodeRule] = Field(min_length=1, description="Service codes suggested from type and time")
    places_of_service: dict[str, str] = Field(min_length=1, description="Place-of-service codes and their names")
    recorded_place: str = Field(description="Default place of a session recorded in the browser (in the room)")
    uploaded_place: str = Field(description="Default place of an uploaded recording (telehealth)")

    @model_validator(mode="after")
    def _defaults_known_and_bands_apart(self) -> BillingPolicy:
        for place in (self.recorded_place, self.uploaded_place):
            if place not in self.places_of_service:
                raise ValueError(f"place of service '{place}' is not in places_of_service")
        for code, rule in self.codes.items():
            if rule.max_minutes is not None and rule.max_minutes < rule.min_minutes:
                raise ValueError(f"code {code}: max_minutes is below min_minutes")
        for a, ra in self.codes.items():  # one service and length must never fit two codes
            for b, rb in self.codes.items():
                if a < b and set(ra.service_types) & set(rb.service_types):
                    lo, hi = max(ra.min_minutes, rb.min_minutes), min(ra.max_minutes or 10**6, rb.max_minutes or 10**6)
                    if lo <= hi:
                        raise ValueError(f"codes {a} and {b} overlap for the same service type ({lo}-{hi} minutes)")
        return self


class EgressPolicy(Strict):
    version: int = Field(ge=1, description="Recorded in the egress ledger with every send")
    ca_bundle: str | None = Field(default=None, description="CA certificates that sign the destinations' TLS "
                                                            "certificates (default: the system's)")
    destinations: list[EgressDestination] = Field(default_factory=list, description="Empty: nothing leaves the host")
