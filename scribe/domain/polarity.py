"""Polarity: whether a statement is affirmed or denied, in the note and in the transcript.

"He denies shortness of breath" against "any shortness of breath? / no" agrees; "He endorses
shortness of breath" against the same does not, nor does "has had incidents" against "I haven't
had any incidents". A clause's polarity is the presence of a negation cue (NegEx's idea, not its
full rule set); a clinician's question takes its polarity from the client's yes or no. A
contradiction needs every matching clause of the evidence to say the other polarity: what the
evidence leaves unsaid, or says both ways, is not this check's to judge. Pure functions."""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

from scribe.domain.transcript import Segment
from scribe.domain.words import content_words

NEGATION_CUE = re.compile(
    r"\b(?:no|not|never|none|nor|nothing|neither|without|deny|denies|denied|denying|negative for|free of"
    r"|absence of|cannot|unable to)\b|n't\b", re.I)
ANSWER_NO = re.compile(r"^\W*(no|nope|nah|never|not really|not at all|none|i don't|i haven't|i have not)\b", re.I)
ANSWER_YES = re.compile(r"^\W*(yes|yeah|yep|sometimes|i have|i do|i did|a little|kind of)\b", re.I)

_CLAUSE = re.compile(r"[;.!?]\s|\b(?:but|however|although|though|whereas|except|until|unless)\b", re.I)
# Words that carry who said it or its polarity, not what it is about.
_NOT_CONTENT = frozenset([*content_words(
    "endorses endorsed endorsing denies denied deny denying reports reported states stated notes noted admits "
    "admitted describes described experiencing experience experiences having has had any patient client he she "
    "they his her their also still currently recently no not never none nothing without negative positive free "
    "absence history past need needs needed time times today get got want wanted going doing thing things okay"
    " alright"),
    "deni", "endors", "admit", "hi"])
_SCOPE = 4  # a negation cue reaches this many words ahead ("denies any weight loss")
# A verb's own negation ("has not been", "isn't", "never") denies the clause, its subject
# included: the note's "his blood sugar has not been running high" denies 'blood sugar'.
_VERB_NEGATION = re.compile(
    r"\b(?:am|is|are|was|were|be|been|has|have|had|do|does|did|will|would|can|could|should|may|might|must)"
    r"\s+(?:not|never)\b|\b[a-z]+n't\b|\bnever\b", re.I)
_SUBJECT = 5  # the words a subject may run ahead of its verb's negation
_NEAR = 10  # the words a claim shares with a clause of speech lie this close together


@dataclass(frozen=True)
class Said:
    """A clause of the evidence; ``answer`` is a question's polarity from the client's reply
    (True: denied), None for a statement (its polarity is read where the claim's words are)."""
    text: str
    answer: bool | None = None


def _key(clause: str) -> set[str]:
    return {w for w in content_words(clause) if w not in _NOT_CONTENT and not w.isdigit()}


def _clauses(text: str) -> list[str]:
    return [c for c in _CLAUSE.split(text) if c and c.strip()]


# A question as people ask it, with or without its question mark ("okay and have you had any
# injuries to that ankle before").
_ASKS = re.compile(r"^\W*(?:(?:and|so|okay|ok|now|alright|all right|um|uh|then|well)\W+)*"
                   r"(?:have|has|do|does|did|are|is|was|were|can|could|would|will|any|anything)\b", re.I)


# A statement ending in a tag that only checks the listener follows ("..., okay?", "..., right?").
_TAG = re.compile(r"(?<=\w)\W*,\s*(?:(?:um|uh)\W+)?(?:okay|ok|alright|all right|right|correct|you know|yeah|does that "
                  r"sound good|sound good|is that okay)\s*\?\s*$", re.I)


def said_in(evidence: list[int], segments: tuple[Segment, ...], position: dict[int, int]) -> list[Said]:
    """The evidence's clauses. A clinician's question is not a statement: it takes the polarity
    of the client's answer ("any chest pain?" / "no" is a denial), and is left out when the
    answer is neither yes nor no."""
    out: list[Said] = []
    for index in evidence:
        at = position.get(index)
        if at is None:
            continue
        seg = segments[at]
        answer = None if seg.speaker.is_client else next(
            (s for s in segments[at + 1 : at + 3] if s.speaker.is_client), None)
        for piece in re.findall(r"[^.?!]*[.?!]?", seg.text):
            piece = _TAG.sub(".", piece)  # "some decreased range of motion, okay?" states, it does not ask
            asked = piece.rstrip().endswith("?") or (not seg.speaker.is_client and bool(_ASKS.search(piece)))
            if not asked:
                out.extend(Said(c) for c in _clauses(piece))
            elif answer is not None and ANSWER_NO.search(answer.text):
                out.append(Said(piece, True))
            elif answer is not None and ANSWER_YES.search(answer.text):
                out.append(Said(piece, False))
    return out


def _negated(clause: str, key: set[str], *, verb: bool = False) -> bool | None:
    """Whether a negation cue reaches the first word of ``key`` in the clause, or (``verb``)
    the verb that word is the subject of is negated (None: no word of it is there). The verb
    reading is the note's: it is written in whole sentences. In speech a negated verb after a
    word is as often about something else ("acne vulgaris that isn't going away")."""
    for m in re.finditer(r"[A-Za-z0-9']+", clause):
        if set(content_words(m.group(0))) & key:
            window = " ".join(clause[: m.start()].split()[-_SCOPE:])
            after = " ".join(clause[m.start():].split()[: _SUBJECT + 2])
            return bool(NEGATION_CUE.search(window) or (verb and _VERB_NEGATION.search(after)))
    return None


def polarity_clashes(sentence: str, said: list[Said]) -> list[str]:
    """Why the evidence says the sentence's claim with the other polarity (empty when it does
    not): each clause of the sentence against the evidence's clauses about the same thing."""
    reasons: list[str] = []
    # A note's "Label: text" is read as the text; "Illicit drug use: never" as a denial of the label.
    label = re.match(r"^\s*([\w /'-]{2,40}):\s*(.*)$", sentence)
    if label and re.fullmatch(r"\W*(?:never|none|no|denies|denied|negative)\W*", label.group(2), re.I):
        sentence = f"No {label.group(1)}."
    elif label and len(_key(label.group(2))) >= 2:
        sentence = label.group(2)
    for clause in _clauses(sentence):
        key = _key(clause)
        if not key:
            continue
        about = []
        for s in said:
            shared = key & _key(s.text)
            asked = _asked_about(s, shared)
            if len(key) < 2 and not asked:
                continue  # a bare word says too little to have a polarity, but for a question about just it
            if asked or (_matches(key, shared) and _close(s.text, shared)):
                theirs = s.answer if s.answer is not None else _negated(s.text, shared)
                about.append((shared, _negated(clause, shared, verb=True), theirs))
        if about and all(ours is not None and theirs is not None and ours != theirs for _, ours, theirs in about):
            shared, ours, _ = about[0]
            reasons.append(f"the note {'denies' if ours else 'affirms'} '{' '.join(sorted(shared)[:3])}'; the "
                           f"transcript {'affirms' if ours else 'denies'} it")
    return reasons


def _asked_about(said: Said, shared: set[str]) -> bool:
    """A short question answered yes or no about one thing the sentence names (``shared``: the
    words they share): "any blood?" / "no" against "denies blood in her stool"."""
    if said.answer is None or not shared:
        return False
    theirs = _key(said.text)
    return theirs == shared and len(theirs) <= 2


def _close(text: str, shared: set[str]) -> bool:
    """Two of the shared words within a few words of each other: in a long stretch of speech
    without punctuation, words far apart belong to different statements."""
    at = [i for i, w in enumerate(re.findall(r"[A-Za-z0-9']+", text)) if set(content_words(w)) & shared]
    return any(b - a <= _NEAR for a, b in itertools.pairwise(at))


def _matches(key: set[str], shared: set[str]) -> bool:
    return len(shared) >= 2 and len(shared) / len(key) >= 0.4
