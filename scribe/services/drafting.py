"""A note drafted from a transcript outside the queue, the way the pipeline drafts it: the
transcript pseudonymized, a long one read in parts (notes on the earlier parts, then the rest),
the template's sections written, and every sentence checked against the pseudonymized
transcript. `scribe draft` and the benchmarks call this, so what they show is the real path."""

from __future__ import annotations

import dataclasses
import time

from scribe.domain.evidence import DraftCheck, check_draft, split_sentences
from scribe.domain.transcript import Segment
from scribe.engines.protocols import Drafter, DraftResult, PseudonymizedTranscript, Redactor, SectionRequest
from scribe.policies.loader import Policies
from scribe.policies.schema import NoteTemplate
from scribe.services.digests import read


@dataclasses.dataclass(frozen=True)
class StandaloneDraft:
    pseudo: PseudonymizedTranscript
    result: DraftResult
    checked: DraftCheck
    parts_noted: int
    seconds: float  # pseudonymizing, reading, drafting and checking


def draft_and_check(drafter: Drafter, redactor: Redactor, policies: Policies, template: NoteTemplate,
                    segments: tuple[Segment, ...]) -> StandaloneDraft:
    started = time.perf_counter()
    pseudo = redactor.pseudonymize(segments, [])
    # A long transcript is read as the pipeline reads it: notes on its parts, then the rest.
    part_chars = policies.pipeline.digest_part_chars if drafter.digests and not drafter.leaves_host else 0
    reading = read(drafter, pseudo, (), part_chars=part_chars, deadline=None) if part_chars else None
    source, earlier = (reading.rest, reading.earlier) if reading is not None and reading.earlier else (pseudo, ())
    # As the pipeline does: the model writes only the sections the template gives it.
    sections = [SectionRequest(s.key, s.title, s.instruction, s.max_sentences) for s in template.sections
                if s.source == "model"]
    result = drafter.draft(source, template.name, sections, None, earlier)
    pairs = [(s.key, x) for s in template.sections for x in split_sentences(result.sections.get(s.key, ""))]
    checked = check_draft(pairs, pseudo.segments, observed=template.observed_sections,
                          medicines=policies.pipeline.medicines)
    return StandaloneDraft(pseudo, result, checked, len(earlier), time.perf_counter() - started)
