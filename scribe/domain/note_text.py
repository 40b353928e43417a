"""A note as plain text, as a clinician or another tool wrote it, split into (section, sentence)
pairs so that the same checks the pipeline runs on a draft can run on it (`scribe check`)."""

from __future__ import annotations

import re
from collections.abc import Mapping

from scribe.domain.evidence import split_sentences

_HEADING = re.compile(r"^\s*(?:#+\s*)?(?P<name>[A-Za-z][A-Za-z /&()-]{0,60}?)\s*:?\s*$")
_INLINE = re.compile(r"^\s*(?:#+\s*)?(?P<name>[A-Za-z][A-Za-z /&()-]{0,60}?)\s*:\s+(?P<rest>\S.*)$")


def parse_note(text: str, sections: Mapping[str, str]) -> list[tuple[str, str]]:
    """(section key, sentence) for every sentence. ``sections`` maps a heading as written,
    lowercased (a template's section titles and keys: "subjective", "s", "assessment"), to its
    key. A line that is only a known heading ("Subjective", "## Plan", "A:") starts a section;
    so does a known heading followed by a colon and text ("Plan: meet next week"). Sentences
    before any heading belong to section ""."""
    current = ""
    out: list[tuple[str, str]] = []
    for line in text.splitlines():
        heading = _HEADING.match(line)
        if heading and heading.group("name").strip().lower() in sections and (
                line.rstrip().endswith(":") or line.lstrip().startswith("#") or
                heading.group("name").strip().lower() == line.strip().lower()):
            current = sections[heading.group("name").strip().lower()]
            continue
        inline = _INLINE.match(line)
        if inline and inline.group("name").strip().lower() in sections:
            current = sections[inline.group("name").strip().lower()]
            line = inline.group("rest")
        out.extend((current, sentence) for sentence in split_sentences(line))
    return out
