"""Who said it, and what the session named: a client's report is not the clinician's
observation, and a medicine no one named is not in the session. Pure functions over the
transcript's segments."""

from __future__ import annotations

import itertools
import re

from scribe.domain.transcript import Segment
from scribe.domain.vocabulary import one_slip
from scribe.domain.words import content_words

_REPORTED = re.compile(
    r"\b(?:client|patient|she|he|they)\b[^.;]{0,40}?\b(?:report(?:s|ed)?|stat(?:es|ed)|sa(?:ys|id)|describ(?:es|ed)"
    r"|shar(?:es|ed)|endors(?:es|ed)|expressed|indicated|complain(?:s|ed)|told)\b", re.I)


def observation_problem(text: str, evidence: tuple[int, ...], by_index: dict[int, Segment]) -> str | None:
    """Why a sentence does not belong in a section of the clinician's observations (Objective):
    it reports what the client said, or its best evidence is the client's own words (a report
    restated as "the clinician observed"). None when it is an observation."""
    if _REPORTED.search(text):
        return "the client's report in a section for what the clinician observed or measured: it belongs in Subjective"
    found = [by_index[i] for i in evidence if i in by_index]
    if not found:
        return None
    words = set(content_words(text))
    best = max(found, key=lambda s: (len(words & set(content_words(s.text))), not s.speaker.is_client))
    if best.speaker.is_client:
        return (f"only the client said this (segment {best.index}): a section for what the clinician observed "
                "or measured holds the clinician's observations, not the client's report")
    return None


# A sentence that gives its content to the clinician: what the clinician saw ("the clinician
# observed", "on exam"), or what the clinician said ("the therapist explained").
_CLINICIAN = r"(?:the |this )?(?:clinician|therapist|counsel+or|doctor|physician|provider|writer|examiner|i|we)"
_SEEN_BY_CLINICIAN = re.compile(
    rf"\b{_CLINICIAN} (?:also )?(?:observed|noticed|saw|found|witnessed|examined)\b|\b(?:was|were|is|are) "
    r"(?:observed|noted|seen) (?:by the \w+ )?(?:to|as|during)\b|\bon (?:exam|examination|observation)\b", re.I)
_SAID_BY_CLINICIAN = re.compile(
    rf"\b{_CLINICIAN} (?:also )?(?:stated|said|explained|told|advised|noted|reported|pointed out|mentioned"
    r"|reminded|reflected|suggested|shared)\b", re.I)


def attribution_problem(text: str, evidence: tuple[int, ...], by_index: dict[int, Segment]) -> str | None:
    """Why a sentence gives to the clinician what only the client said: "the clinician observed
    that he runs five miles a day" when the client said it (a report is not an observation,
    whatever the section). For what the clinician saw, a client's words that match as well as
    the clinician's settle it (the clinician repeating a report back did not observe it); for
    what the clinician said, only the client's words may match (a clinician's advice often
    takes up the client's own words)."""
    seen = bool(_SEEN_BY_CLINICIAN.search(text))
    if not seen and not _SAID_BY_CLINICIAN.search(text):
        return None
    found = [by_index[i] for i in evidence if i in by_index]
    if not found:
        return None
    words = set(content_words(_SEEN_BY_CLINICIAN.sub(" ", _SAID_BY_CLINICIAN.sub(" ", text))))

    def overlap(seg: Segment) -> int:
        return len(words & set(content_words(seg.text)))

    client = max((overlap(x) for x in found if x.speaker.is_client), default=0)
    # What the clinician saw is said as a statement, not asked or handed back ("does it keep you
    # from walking?", "I know you've had the transplant"): those are the client's report.
    own = [x for x in found if not x.speaker.is_client and not (seen and _ASKED_OR_HANDED_BACK.search(x.text))]
    clinician = max((overlap(x) for x in own), default=0)
    if seen and not clinician and not client:
        return ("the note says the clinician observed this; in the transcript the clinician only asked about it or "
                "repeated the client's report")
    if client and (client >= clinician if seen else not clinician):
        who = "observed" if seen else "said"
        best = next(x for x in found if x.speaker.is_client and overlap(x) == client)
        return (f"the note says the clinician {who} this; in the transcript the client said it (segment {best.index})")
    return None


_ASKED_OR_HANDED_BACK = re.compile(
    r"\?|\b(?:you (?:said|told|mentioned|reported|were|did)|you've (?:been|had)|i know (?:that )?you"
    r"|(?:glad|sorry) to hear|sounds like|i hear (?:that )?you|heard that)\b", re.I)


_NAME = re.compile(r"[a-z][a-z-]*[a-z]")


def words_said(segments: tuple[Segment, ...]) -> frozenset[str]:
    """Every word of the transcript, and every two neighbours run together ("zo loft")."""
    words: set[str] = set()
    for seg in segments:
        found = _NAME.findall(seg.text.lower())
        words.update(found)
        words.update(a + b for a, b in itertools.pairwise(found))
    return frozenset(words)


def unsaid_medicines(text: str, said: frozenset[str], medicines: frozenset[str]) -> list[str]:
    """The medicines a sentence names that the transcript never names (a long name one slip
    away counts as named: speech recognition misspells drug names)."""
    out: list[str] = []
    for name in dict.fromkeys(w for w in _NAME.findall(text.lower()) if w in medicines):
        if name in said or (len(name) >= 7 and any(abs(len(w) - len(name)) <= 1 and one_slip(name, w) for w in said)):
            continue
        out.append(name)
    return out


# Where a sentence joins a second statement to its first ("..., after a car accident").
_JOINS = re.compile(r"[,;:()]|\b(?:after|since|following|because|due to|when|while|and then|which|who)\b", re.I)


def unsaid_parts(text: str, said: frozenset[str]) -> list[str]:
    """The parts of a sentence (what lies between its commas and joining words) that say at
    least two things and share no word with the transcript: an event added to a supported
    sentence ("he runs daily, after a car accident") leaves the sentence's support high, and
    is found here. ``said``: the transcript's content words."""
    out = []
    for part in _JOINS.split(text):
        words = set(content_words(part))
        if len(words) >= 2 and not words & said and not any(w.startswith("[") for w in words):
            out.append(part.strip(" .,;:!?"))
    return out
