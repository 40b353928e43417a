"""Strict section-by-section prompts, shared by every drafter.

The transcript (or, for a long session, the notes taken on its parts and its last stretch)
comes first and identically for every section, so an executor can read it once and reuse that
state (CTranslate2's static prompt cache)."""

from __future__ import annotations

import re

from scribe.engines.protocols import SectionRequest

# Small models echo transcript lines ("[S3 00:17] CLIENT: ...", "CLINICIAN: ...").
_ECHO = re.compile(r"^\s*(?:\[S\d+[^\]]*\]\s*)?(?:CLINICIAN|CLIENT|SPEAKER|THERAPIST|PATIENT|[A-Z]{4,12})\s*:\s*")

NOT_DISCUSSED = "Not discussed in session."

SYSTEM = (
    "You draft one section of a behavioral-health clinician's note from a session transcript. "
    "Rules: use only facts stated in the transcript; never invent events, symptoms, numbers or names. "
    "Never add a diagnosis, diagnostic code, medication change, risk level or treatment decision "
    "unless the clinician said it in the transcript. If the client denied something (for example "
    "thoughts of self-harm), write that the client denied it. Keep placeholders such as [CLIENT] or "
    "[PERSON_1] exactly as written. Write plain sentences: no headings, no lists, no quotes. "
    f"If the transcript has nothing for this section, write exactly: {NOT_DISCUSSED}"
)


DIGEST_SYSTEM = (
    "You take notes on one part of a behavioral-health session transcript; the clinician's note is "
    "written from your notes later. List the facts stated in this part, one per line starting with "
    "'- ', each saying who said it (the client or the clinician): what the client reported "
    "(symptoms, feelings, sleep, ratings with what was rated and when, medications and doses, "
    "events, people), what the clinician observed, asked, suggested or planned, and every mention "
    "of suicide, self-harm, harm to others or abuse, with whether it was affirmed or denied. Use "
    "only what is said in this part: no interpretation, diagnosis or advice. Keep placeholders such "
    "as [CLIENT] or [PERSON_1] exactly as written."
)
DIGEST_LINES = 12
_BULLET = re.compile(r"^\s*(?:[-*\u2022]|\d{1,2}[.)])\s+")
# Markdown a small model writes despite the prompt: a bold label opens a new line ("**Symptoms:** chest
# pain" -> "Symptoms: chest pain"), other emphasis and heading marks are dropped
_BOLD_LABEL = re.compile(r"\*\*\s*([^*\n]{1,40}?)\s*:\s*\*\*\s*")
_MARKUP = re.compile(r"\*\*|__|(?<![\w*])\*(?=\w)|(?<=\w)\*(?![\w*])|^[ \t]*#+[ \t]*", re.M)
TOKENS_PER_SENTENCE = 32  # a section's token budget follows its sentence budget (a floor: the drafter's own)


def source_block(transcript_text: str, earlier: tuple[str, ...] = ()) -> str:
    """What every section is written from: the transcript, or the notes on a long session's
    earlier parts followed by its last stretch."""
    if not earlier:
        return f"Session transcript (identifiers replaced by placeholders):\n{transcript_text}\n\n"
    notes = "\n".join(earlier)
    return (f"Notes taken on the earlier parts of the session, in order (facts from its transcript):\n{notes}\n\n"
            f"Session transcript, the last part (identifiers replaced by placeholders):\n{transcript_text}\n\n")


def digest_messages(part_text: str) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": DIGEST_SYSTEM},
        {"role": "user", "content": f"Transcript part:\n{part_text}\n\nWrite at most {DIGEST_LINES} lines."},
    ]


def clean_digest(text: str) -> str:
    """One fact per line, as '- ...'; echoed transcript lines and repeats dropped."""
    seen: set[str] = set()
    kept: list[str] = []
    for raw in text.strip().splitlines():
        line = _ECHO.sub("", _BULLET.sub("", raw)).strip()
        if not line or line.endswith(":") or line.lower() in seen:
            continue
        seen.add(line.lower())
        kept.append(f"- {line}")
    return "\n".join(kept[:DIGEST_LINES])


def section_block(note_name: str, section: SectionRequest) -> str:
    return (
        f"Write the \"{section.title}\" section of a {note_name}. {section.instruction} "
        f"Write at most {section.max_sentences} short sentences."
    )


def chat_messages(source: str, note_name: str, section: SectionRequest) -> list[dict[str, str]]:
    """``source``: a ``source_block``."""
    return [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": source + section_block(note_name, section)},
    ]


def _plain_lines(text: str, title: str | None) -> list[str]:
    """The answer as plain lines: markdown removed, each bold label on its own line, the
    section's own title where the model echoed it dropped, a line without an end stop given one."""
    text = _MARKUP.sub("", _BOLD_LABEL.sub(lambda m: f"\n{m.group(1)}: ", text))
    # the title alone on its line or before a colon ("Plan: ..."), not a sentence that opens with
    # its word ("Plan to meet weekly.")
    echo = re.compile(rf"^\s*{re.escape(title)}\s*(?:[:.-]\s*|$)", re.I) if title else None
    lines = []
    for raw in text.strip().splitlines():
        line = _ECHO.sub("", echo.sub("", raw) if echo else raw).strip()
        if not line or line.endswith(":"):
            continue
        lines.append(line if line[-1] in ".!?\"')]" else line + ".")
    return lines


def clean_output(text: str, max_sentences: int, written: set[str] | None = None, title: str | None = None) -> str:
    """Trim a model's answer to the asked number of sentences and drop echoed headings and
    markdown (``title``: the section's, where the model repeats it). ``written``: the
    sentences of the note's earlier sections (lowercased); one the model repeats from there
    is left out, and a section that only repeats them says it had nothing."""
    from scribe.domain.evidence import split_sentences

    lines = _plain_lines(text, title)
    sentences = split_sentences("\n".join(lines))
    seen: set[str] = set()
    kept = []
    for s in sentences:
        key = s.lower()
        if key in seen:  # small models loop: a repeated sentence ends the section
            break
        seen.add(key)
        if written is not None and key in written:
            continue
        kept.append(s)
    kept = kept[:max_sentences]
    if written is not None:
        if not kept and sentences:
            return NOT_DISCUSSED
        written.update(s.lower() for s in kept)
    return " ".join(kept)
