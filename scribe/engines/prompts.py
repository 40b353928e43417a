"""Strict section-by-section prompts, shared by every drafter.

The transcript comes first and identically for every section, so an executor can
read it once and reuse that state (CTranslate2's static prompt cache)."""

from __future__ import annotations

import re

from scribe.engines.protocols import SectionRequest

# Small models echo transcript lines ("[S3 00:17] CLIENT: ...", "CLINICIAN: ...").
_ECHO = re.compile(r"^\s*(?:\[S\d+[^\]]*\]\s*)?(?:CLINICIAN|CLIENT|SPEAKER|THERAPIST|PATIENT|[A-Z]{4,12})\s*:\s*")

SYSTEM = (
    "You draft one section of a behavioral-health clinician's note from a session transcript. "
    "Rules: use only facts stated in the transcript; never invent events, symptoms, numbers or names. "
    "Never add a diagnosis, diagnostic code, medication change, risk level or treatment decision "
    "unless the clinician said it in the transcript. If the client denied something (for example "
    "thoughts of self-harm), write that the client denied it. Keep placeholders such as [CLIENT] or "
    "[PERSON_1] exactly as written. Write plain sentences: no headings, no lists, no quotes. "
    "If the transcript has nothing for this section, write exactly: Not discussed in session."
)


def transcript_block(transcript_text: str) -> str:
    return f"Session transcript (identifiers replaced by placeholders):\n{transcript_text}\n\n"


def section_block(note_name: str, section: SectionRequest) -> str:
    return (
        f"Write the \"{section.title}\" section of a {note_name}. {section.instruction} "
        f"Write at most {section.max_sentences} short sentences."
    )


def chat_messages(transcript_text: str, note_name: str, section: SectionRequest) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": transcript_block(transcript_text) + section_block(note_name, section)},
    ]


def clean_output(text: str, max_sentences: int) -> str:
    """Trim a model's answer to the asked number of sentences and drop echoed headings."""
    from scribe.domain.evidence import split_sentences

    lines = [_ECHO.sub("", ln) for ln in text.strip().splitlines() if not ln.strip().endswith(":")]
    sentences = split_sentences("\n".join(lines))
    seen: set[str] = set()
    kept = []
    for s in sentences:
        key = s.lower()
        if key in seen:  # small models loop: a repeated sentence ends the section
            break
        seen.add(key)
        kept.append(s)
    return " ".join(kept[:max_sentences])
