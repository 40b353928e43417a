"""The one place that names the real adapters; imports them lazily."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from scribe.config import Settings
from scribe.domain.errors import ModelMissing, PolicyError
from scribe.engines.offline import force_offline
from scribe.engines.protocols import Decoder, Drafter, Engines, Transcriber, Voices
from scribe.weights import INSTALL_HINT, profile_paths, verify

if TYPE_CHECKING:
    from scribe.domain.egress import EgressRecord
    from scribe.engines.presidio import PresidioRedactor
    from scribe.policies import Policies
    from scribe.policies.schema import EgressPolicy, RedactionPolicy


def check_models(settings: Settings) -> None:
    """Refuse to start when a model is missing or altered, naming the install command."""
    problems = verify(settings.models_dir, settings.model_profile)
    if problems:
        raise ModelMissing("; ".join(problems) + " — " + INSTALL_HINT.format(profile=settings.model_profile))


def build_engines(settings: Settings, policies: Policies, *,
                  egress_ledger: Callable[[EgressRecord], None] | None = None,
                  clock: Callable[[], datetime] | None = None) -> Engines:
    """The engines for these settings, configured by the policies the caller already holds
    (the runtime's), never re-read from disk."""
    if settings.engines == "fake":
        from scribe.engines.fakes import FakeDrafter, FakeRedactor, FakeTranscriber, FakeVoices

        cost = settings.fake_cost_seconds
        return Engines(FakeTranscriber(cost_seconds=cost), FakeRedactor(), FakeDrafter(cost_seconds=cost),
                       FakeVoices())
    force_offline()
    check_models(settings)
    redactor = build_redactor(settings, policies.redaction)
    if settings.drafter_remote:
        drafter: Drafter = build_remote_drafter(settings, policies.egress, redactor, egress_ledger, clock)
    else:
        drafter = build_drafter(settings)
    return Engines(transcriber=build_transcriber(settings), redactor=redactor, drafter=drafter,
                   voices=build_voices(settings))


def build_remote_drafter(settings: Settings, policy: EgressPolicy, redactor: Any,
                         ledger: Callable[[EgressRecord], None] | None,
                         clock: Callable[[], datetime] | None) -> Drafter:
    """The drafter that goes through the egress gateway to a destination in egress.yaml."""
    from scribe.domain.egress import Destination
    from scribe.engines.egress import EgressGateway
    from scribe.engines.remote import RemoteDrafter

    if ledger is None or clock is None:
        raise PolicyError("a remote drafter needs the egress ledger: start it through scribe serve/worker/demo")
    destinations = [Destination(d.name, d.url, tuple(d.receives), d.part2, d.qsoa) for d in policy.destinations]
    if settings.drafter_remote not in {d.name for d in destinations}:
        raise PolicyError(f"SCRIBE_DRAFTER_REMOTE={settings.drafter_remote!r} is not a destination in policies/egress.yaml")
    gateway = EgressGateway(destinations, redactor=redactor, ledger=ledger, clock=clock, policy_version=policy.version,
                            ca_bundle=policy.ca_bundle)
    return RemoteDrafter(gateway, settings.drafter_remote, settings.drafter_remote_model)


def build_record_gateway(policy: EgressPolicy, ledger: Callable[[EgressRecord], None],
                         clock: Callable[[], datetime]) -> Any:
    """The gateway for identified records (a signed note to the practice's EHR): it redacts
    nothing, so it loads no model; only destinations that receive identified_record take it."""
    from scribe.domain.egress import Destination
    from scribe.engines.egress import EgressGateway

    destinations = [Destination(d.name, d.url, tuple(d.receives), d.part2, d.qsoa) for d in policy.destinations]
    return EgressGateway(destinations, redactor=None, ledger=ledger, clock=clock, policy_version=policy.version,
                         ca_bundle=policy.ca_bundle)


def build_decoder(policies: Policies) -> Decoder:
    """The same sandboxed decoder for real and fake engines: it is a guard, not a model."""
    from scribe.engines.decoder import DecoderLimits, SandboxDecoder

    d = policies.pipeline.decoder
    return SandboxDecoder(DecoderLimits(d.memory_mb, d.cpu_seconds, d.wall_seconds))


def build_transcriber(settings: Settings) -> Transcriber:
    from scribe.engines.whisper import WhisperTranscriber

    paths = profile_paths(settings.models_dir, settings.model_profile)
    return WhisperTranscriber(paths.whisper, cpu_threads=settings.cpu_threads, device=settings.device)


def build_voices(settings: Settings) -> Voices:
    """Speaker turns: resemblyzer's voice encoder (the fakes keep their scripted labels)."""
    if settings.engines == "fake":
        from scribe.engines.fakes import FakeVoices

        return FakeVoices()
    from scribe.engines.speakers import VoiceTurns

    return VoiceTurns(threads=settings.cpu_threads)


def build_redactor(settings: Settings, policy: RedactionPolicy) -> PresidioRedactor:
    from scribe.engines.presidio import PresidioRedactor

    paths = profile_paths(settings.models_dir, settings.model_profile)
    if policy.notes_model and paths.notes_ner is None:
        raise ModelMissing(f"the redaction policy reads notes with the notes model, but profile "
                           f"{settings.model_profile!r} has none (models/manifest.yaml: notes-ner)")
    return PresidioRedactor(paths.spacy, policy, workers=settings.cpu_threads,
                            notes_model_dir=paths.notes_ner if policy.notes_model else None)


def build_drafter(settings: Settings) -> Drafter:
    from scribe.engines.llm import CT2Drafter, TransformersDrafter

    if settings.drafter_model_dir is not None:
        return TransformersDrafter(settings.drafter_model_dir, threads=settings.cpu_threads)
    paths = profile_paths(settings.models_dir, settings.model_profile)
    if settings.drafter_backend == "transformers":
        if paths.drafter_hf is None:
            raise ModelMissing(f"{paths.drafter_name} has no transformers directory; use SCRIBE_DRAFTER_BACKEND=ct2")
        return TransformersDrafter(paths.drafter_hf, threads=settings.cpu_threads)
    return CT2Drafter(paths.drafter_ct2, paths.drafter_tokenizer, threads=settings.cpu_threads, device=settings.device)
