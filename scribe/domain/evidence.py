"""Evidence for every draft sentence, and the checks that do not trust the model.

No entailment model works offline here (MODELS.md), so support comes from evidence
alignment (content-word overlap weighted by rarity, numbers and placeholders must
match) plus NegEx-style polarity rules for risk statements.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum

from scribe.domain.attribution import (
    attribution_problem,
    observation_problem,
    unsaid_medicines,
    unsaid_parts,
    words_said,
)
from scribe.domain.claims import contradictions, unsaid_times
from scribe.domain.polarity import ANSWER_NO, ANSWER_YES, polarity_clashes, said_in
from scribe.domain.quantities import count_mismatches, numbers, unit_of
from scribe.domain.transcript import Segment, Speaker
from scribe.domain.words import content_words
from scribe.domain.words import split_sentences as split_sentences  # the draft checks split sentences this way


class FlagKind(StrEnum):
    UNSUPPORTED = "unsupported"
    NUMBER_MISMATCH = "number_mismatch"
    RISK_POLARITY = "risk_polarity"
    RISK_UNSTATED = "risk_unstated"
    RISK_NOT_ADDRESSED = "risk_not_addressed"
    CLINICAL_DECISION = "clinical_decision"
    CASE_LEFT_OUT = "case_left_out"
    RISK_NO_PLAN = "risk_no_plan"  # a risk the client endorsed, and no safety plan or follow-up in the note
    CONTRADICTION = "contradiction"  # the evidence states the opposite (a quantity's time, a quality)
    MISPLACED = "misplaced"  # a client's report in a section that holds the clinician's observations
    NOT_SAID = "not_said"  # names a medicine the session never named


@dataclass(frozen=True)
class Flag:
    kind: FlagKind
    reason: str
    category: str = ""  # for risk flags: which risk ("suicidal ideation", ...)
    polarity: str = ""  # for a risk the note must address: "endorsed" or "denied" (empty: both were said)

    def to_json(self) -> dict[str, str]:
        out = {"kind": self.kind.value, "reason": self.reason}
        if self.category:
            out["category"] = self.category
        if self.polarity:
            out["polarity"] = self.polarity
        return out


@dataclass(frozen=True)
class CheckedSentence:
    section: str
    index: int
    text: str
    evidence: tuple[int, ...]
    score: float
    flags: tuple[Flag, ...] = ()


@dataclass(frozen=True)
class RiskMention:
    segment_index: int
    start: float
    category: str
    negated: bool
    speaker: Speaker


@dataclass
class DraftCheck:
    sentences: list[CheckedSentence] = field(default_factory=list)
    removed: list[CheckedSentence] = field(default_factory=list)
    risk_mentions: list[RiskMention] = field(default_factory=list)
    draft_flags: list[Flag] = field(default_factory=list)


def align(
    sentences: list[tuple[str, str]],
    segments: tuple[Segment, ...],
    *,
    min_support: float = 0.34,
    max_evidence: int = 3,
) -> list[CheckedSentence]:
    """Link each (section, sentence) to the transcript segments that support it.

    The score is the idf-weighted share of the sentence's content words found in
    the best segment plus its neighbours; below ``min_support`` the sentence is
    flagged unsupported. Numbers in a sentence must appear in its evidence.
    """
    seg_words = [set(content_words(s.text)) for s in segments]
    df: Counter[str] = Counter(w for ws in seg_words for w in ws)
    n = max(len(segments), 1)

    def idf(w: str) -> float:
        return math.log(1 + n / (1 + df.get(w, 0))) + 0.5

    out: list[CheckedSentence] = []
    counters: Counter[str] = Counter()
    for section, text in sentences:
        words = set(content_words(text))
        idx = counters[section]
        counters[section] += 1
        if not words:
            out.append(CheckedSentence(section, idx, text, (), 0.0,
                                       (Flag(FlagKind.UNSUPPORTED, "no content to check against the transcript"),)))
            continue
        total = sum(idf(w) for w in words)
        scored = []
        for i, ws in enumerate(seg_words):
            hit = sum(idf(w) for w in words & ws)
            if hit:
                scored.append((hit / total, i))
        scored.sort(reverse=True)
        evidence: list[int] = []
        covered: set[str] = set()
        for score, i in scored:
            if len(evidence) >= max_evidence or score < 0.15:
                break
            gain = (words & seg_words[i]) - covered
            if not evidence or gain:
                evidence.append(i)
                covered |= words & seg_words[i]
        support = sum(idf(w) for w in covered) / total if covered else 0.0
        flags: list[Flag] = []
        if support < min_support:
            flags.append(Flag(FlagKind.UNSUPPORTED, "no transcript segment supports this sentence"))
            evidence_out: tuple[int, ...] = tuple(evidence[:1]) if support >= 0.15 else ()
        else:
            evidence_out = tuple(sorted(evidence))
        nums = numbers(text)
        if nums:
            ev_nums: set[str] = set()
            for i in evidence_out or tuple(range(len(segments))):
                ev_nums |= numbers(segments[i].text)
            missing = nums - ev_nums
            if missing:
                flags.append(Flag(FlagKind.NUMBER_MISMATCH,
                                  f"number(s) {', '.join(sorted(missing))} not found in the evidence"))
            else:  # each number found, but does the evidence count the same thing with another?
                flags.extend(Flag(FlagKind.NUMBER_MISMATCH, reason) for reason in
                             count_mismatches(text, [segments[i].text for i in evidence_out])[:1])
        out.append(CheckedSentence(section, idx, text, tuple(segments[i].index for i in evidence_out),
                                   round(support, 3), tuple(flags)))
    return out


# --- risk mentions (NegEx-style) -------------------------------------------------

# The lexicon follows the items of the published screening instruments, phrased as people say
# them, not one corpus's sentences: the C-SSRS ideation items (wish to be dead, non-specific
# active thoughts, method, intent, plan) and behaviour items (preparatory acts, attempts), harm to
# others, and abuse and neglect (physical, sexual, emotional). A mention's polarity comes from
# the negation rules below; a screening question's answer from the client's reply.
_SELF = r"(?:my|your|her|him|them|our)sel(?:f|ves)"
_PILLS = r"(?:pills|meds|medications?|tablets|sleeping pills|painkillers)"
RISK_PATTERNS: dict[str, re.Pattern[str]] = {
    "suicidal ideation": re.compile(
        r"\b(suicid\w*"
        rf"|kill(?:ing|ed)? {_SELF}|end(?:ing|ed)? (?:my|her|his|their|your) (?:own )?life"
        r"|take (?:my|her|his|their|your) (?:own )?life|end(?:ing)? it all|end(?:ing)? things"
        # C-SSRS 1, the wish to be dead: passive phrasings
        r"|better off dead|(?:want|wanted|wanting|wish|wished|wishing) (?:to die|(?:I|that I) (?:was|were) dead"
        r"|to be dead|to disappear (?:for ever|forever|for good))"
        r"|(?:don't|do not|didn't|did not) want to (?:be (?:here|alive|around)|live|exist|wake up)"
        r"(?: anymore| any more)?"
        r"|(?:go to sleep|fall asleep) and (?:never|not) wake up|not (?:to )?wake up"
        r"|no (?:point|reason) (?:in |to )?(?:living|live|going on|go on|being alive)"
        r"|(?:can't|cannot|can not) go on"
        r"|(?:everyone|everybody|they|people) (?:would be|are|'d be) better off without me"
        # C-SSRS 3-5 and behaviour: method, intent, plan, preparatory acts
        rf"|(?:take|taking|took|swallow\w*) (?:all|a bunch|a handful|the rest) of {_PILLS}"
        rf"|(?:take|taking|took|swallow\w*) all (?:my|the|those|of my|of the) {_PILLS}"
        rf"|(?:stockpil|sav|hoard)\w* (?:up )?(?:my |the )?{_PILLS}"
        rf"|hang(?:ing)? {_SELF}|jump(?:ing)? (?:off|in front of)|shoot(?:ing)? {_SELF}"
        r"|wrote (?:a|my) (?:suicide |goodbye )?(?:note|letter)"
        r"|giv(?:e|ing|en) away (?:my|all my) (?:things|stuff|belongings)"
        r")\b", re.I),
    "self-harm": re.compile(
        rf"\b(self[- ]?harm\w*|hurt(?:ing)? {_SELF}|harm(?:ing)? {_SELF}"
        r"|cutting|cut (?:my|your|her|him)sel(?:f|ves)|burn(?:ing|ed)? (?:my|your|her|him)sel(?:f|ves)|overdos\w*"
        rf"|(?:scratch|hit|punch|bang)(?:ing|ed)? {_SELF}"
        r"|(?:scratch|hit|punch|bang)(?:ing|ed)? my head"
        r")\b", re.I),
    "homicidal ideation": re.compile(
        r"\b(homicid\w*|kill (?:him|her|them|someone|somebody|my \w+)"
        r"|hurt(?:ing)? (?:someone|somebody|others|other people)"
        r"|(?:want|wanted|going) to (?:hurt|kill|shoot|stab|strangle) (?:him|her|them|my \w+|someone|somebody)"
        r"|get (?:back at|even with) (?:him|her|them) (?:with|using) a (?:gun|knife)"
        r")\b", re.I),
    "abuse or neglect": re.compile(
        r"\b(abus\w*|neglect\w*|molest\w*|assault\w*|rap(?:e|ed|ing)|groom(?:ed|ing)"
        # physical: what is done to "me" (or to the children)
        # (not "it hit me that...", "that touched me deeply": a thing or a thought as the subject)
        r"|(?<!\bit )(?<!\bthat )(?<!\bthis )(?<!\breally )"
        r"(?:hits?|hitting|slap(?:s|ped|ping)?|punch(?:es|ed|ing)?|kick(?:s|ed|ing)?|chok(?:es|ed|ing)"
        r"|shov(?:es|ed|ing)|beats?|beating|burn(?:s|ed)|whip(?:s|ped)?|throws? things at)"
        r" (?:me|us|the kids|my (?:son|daughter|kids|children))"
        # sexual: touching by someone, "touches me", "made me touch"
        r"|(?<!\bit )(?<!\bthat )(?<!\bthis )(?<!\breally )(?:touch(?:es|ed|ing)?|fondl\w*|grop\w*) me"
        r"(?! (?:deeply|so much|a lot|greatly|to hear))"
        r"|made me touch|(?:sexual(?:ly)?) (?:abuse\w*|assault\w*|touch\w*)"
        # the screening question (HITS: does anyone hurt, insult, threaten or scream at you?)
        r"|(?:anyone|anybody|someone|somebody|your (?:partner|husband|wife|boyfriend|girlfriend|parents?|mom|dad"
        r"|mother|father|stepdad|stepmom|stepfather|stepmother))\b[^.?]{0,25}?\b(?:hit|hurt|threaten|insult|slap"
        r"|kick|push|shove|choke|beat|touch|scream at)\w* you"
        # emotional and neglect
        r"|(?:threatens?|threatened) to (?:kill|hurt|take the kids)|lock(?:s|ed)? (?:me|us|the kids) (?:in|out)"
        r"|won't let me (?:leave|eat|see)"
        r"|left (?:me|us|alone) (?:alone )?for days|(?:no|not enough) food in the house"
        r")\b", re.I),
}

_NEGATION = re.compile(
    r"\b(no|not|never|denies|denied|deny|denying|without|none|don't|do not|didn't|did not|doesn't|"
    r"does not|haven't|have not|hasn't|has not|isn't|wasn't|negative for|free of|nor)\b", re.I)
_NEG_BREAK = re.compile(r"\b(but|however|although|though|except|yet)\b|[.;!?]", re.I)


def is_negated(text: str, match_start: int) -> bool:
    """A negation cue within the eight words before the mention ("did not have any thoughts
    of hurting himself or suicide"), not across a clause break."""
    before = text[:match_start]
    parts = _NEG_BREAK.split(before)
    clause = parts[-1] if parts else before
    window = " ".join(clause.split()[-8:])
    return bool(_NEGATION.search(window))




def find_risk_mentions(segments: tuple[Segment, ...]) -> list[RiskMention]:
    """Risk mentions with polarity. A clinician's screening question followed by the
    client's "no" is recorded as the client's denial (and "yes" as endorsement)."""
    mentions = []
    for pos, seg in enumerate(segments):
        for category, pattern in RISK_PATTERNS.items():
            found = list(pattern.finditer(seg.text))
            if not found:
                continue
            for m in found:  # every mention: "not suicidal before, but now I want to end it all"
                mentions.append(RiskMention(seg.index, seg.start, category, is_negated(seg.text, m.start()),
                                            seg.speaker))
            m = found[0]
            if seg.speaker == Speaker.CLINICIAN and "?" in seg.text[m.start():]:
                answer = next((s for s in segments[pos + 1 : pos + 3] if s.speaker != Speaker.CLINICIAN), None)
                if answer is not None and not pattern.search(answer.text):
                    if ANSWER_NO.search(answer.text):
                        mentions.append(RiskMention(answer.index, answer.start, category, True, answer.speaker))
                    elif ANSWER_YES.search(answer.text):
                        mentions.append(RiskMention(answer.index, answer.start, category, False, answer.speaker))
    return mentions


def risk_in_sentence(text: str) -> list[tuple[str, bool]]:
    """Every risk mention in the text, with its polarity (negated or not), in order."""
    found = []
    for category, pattern in RISK_PATTERNS.items():
        for m in pattern.finditer(text):
            found.append((category, is_negated(text, m.start())))
    return found


def _client_polarity(mentions: list[RiskMention], category: str) -> set[bool]:
    """Polarity of what was said: a clinician's question is not a statement, so a client's
    answer ("no") to a question about the category counts as a denial."""
    return {m.negated for m in mentions if m.category == category and m.speaker != Speaker.CLINICIAN} or {
        m.negated for m in mentions if m.category == category
    }


def polarity_said(mentions: list[RiskMention], category: str) -> str:
    """"denied" or "endorsed" as the client said it; empty when both were said."""
    said = _client_polarity(mentions, category)
    return "" if len(said) != 1 else ("denied" if True in said else "endorsed")


def addresses(note_text: str, category: str, polarity: str) -> bool:
    """The note mentions the risk with the polarity the client gave it: a denial written as
    an endorsement (or the reverse) does not address it."""
    found = [negated for c, negated in risk_in_sentence(note_text) if c == category]
    if not polarity:
        return bool(found)
    return any(negated == (polarity == "denied") for negated in found)


# --- clinical decisions the clinician must have stated ---------------------------

CLINICAL_DECISION_PATTERNS: dict[str, re.Pattern[str]] = {
    "diagnosis": re.compile(
        r"\b(diagnos\w*|disorder|major depressive|generalized anxiety|gad|ptsd|bipolar|adhd|schizophreni\w*|"
        r"borderline personality|ocd|dsm|icd|[FZ]\d{2}(?:\.\d+)?)\b", re.I),
    "medication change": re.compile(
        r"\b(prescrib\w*|medication|dose|dosage|mg|milligrams?|sertraline|zoloft|fluoxetine|prozac|lexapro|"
        r"escitalopram|bupropion|wellbutrin|lithium|quetiapine|seroquel|benzodiazepine\w*|xanax|ssri\w*)\b", re.I),
    "risk level": re.compile(r"\b(low|moderate|high|imminent|elevated) risk\b", re.I),
    # "agrees with the recommended treatment plan" names the plan as a whole, not a decision of its own
    "treatment decision": re.compile(
        r"\b(refer\w*|hospitali[sz]\w*|inpatient|involuntary|safety plan|discharg\w*|terminat\w*|"
        r"increase (?:the )?frequency|level of care|recommend(?!ed\s+(?:\w+\s+){0,2}plan\b)\w*|emdr|"
        r"(?:start|begin|initiat)\w* (?:\w+ )?(?:therapy|treatment|cbt|dbt|exposure|medication))\b", re.I),
}


def clinical_decisions(text: str) -> list[tuple[str, str]]:
    """Every matching term of every kind (not only the first): each must have been said."""
    return [(kind, m.group(0)) for kind, p in CLINICAL_DECISION_PATTERNS.items() for m in p.finditer(text)]


def stated_by_clinician(term: str, segments: tuple[Segment, ...]) -> bool:
    """The clinician said the term, in any of its forms ("recommended" for "I recommend",
    "referral" for "refer", "mg" for "milligrams")."""
    needle = term.lower()
    stems = {_term_stem(w) for w in re.findall(r"[a-z]+", needle)}
    for seg in segments:
        if seg.speaker.is_client:
            continue
        text = seg.text.lower()
        if needle in text or (stems and stems <= {_term_stem(w) for w in re.findall(r"[a-z]+", text)}):
            return True
    return False


def _term_stem(word: str) -> str:
    word = "milligram" if unit_of(word) == "mg" else word
    for suffix in ("ations", "ation", "als", "al", "ing", "ed", "is", "es", "e", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 4 and not word.endswith("ical"):
            word = word[: -len(suffix)]
            break
    return word[:-1] if len(word) > 4 and word[-1] == word[-2] else word


def check_draft(sentences: list[tuple[str, str]], segments: tuple[Segment, ...], *,
                observed: frozenset[str] = frozenset(), medicines: frozenset[str] = frozenset()) -> DraftCheck:
    """Align evidence, drop unstated diagnoses/treatment decisions, check risk statements, and
    (in the ``observed`` sections, e.g. Objective) flag what the client reported rather than
    what the clinician observed."""
    result = DraftCheck()
    result.risk_mentions = find_risk_mentions(segments)
    by_index = {s.index: s for s in segments}
    position = {s.index: at for at, s in enumerate(segments)}
    spoken = words_said(segments) if medicines else frozenset()
    heard_words = frozenset(w for seg in segments for w in content_words(seg.text))
    heard_text = " ".join(" ".join(seg.text.lower().split()) for seg in segments)
    for checked in align(sentences, segments):
        decisions = [(k, t) for k, t in clinical_decisions(checked.text) if not stated_by_clinician(t, segments)]
        if decisions:
            kind, term = decisions[0]
            result.removed.append(_with_flag(checked, Flag(
                FlagKind.CLINICAL_DECISION,
                f"removed: {kind} ('{term}') the clinician did not state in the session")))
            continue
        flags = list(checked.flags)
        flags.extend(Flag(FlagKind.NOT_SAID, f"names {name}, which the transcript never names")
                     for name in unsaid_medicines(checked.text, spoken, medicines))
        # Named even in a sentence unsupported as a whole: the reviewer sees which part is unsaid.
        flags.extend(Flag(FlagKind.UNSUPPORTED, f"nothing in the transcript says '{part}'")
                     for part in unsaid_parts(checked.text, heard_words)[:2])
        flags.extend(Flag(FlagKind.UNSUPPORTED, f"the transcript never says '{when}'")
                     for when in unsaid_times(checked.text, heard_text))
        if checked.evidence:
            said = [by_index[i].text for i in checked.evidence if i in by_index]
            flags.extend(Flag(FlagKind.CONTRADICTION, reason) for reason in contradictions(checked.text, said))
            flags.extend(Flag(FlagKind.CONTRADICTION, reason) for reason in
                         polarity_clashes(checked.text, said_in(list(checked.evidence), segments, position))[:1])
            wrong_speaker = attribution_problem(checked.text, checked.evidence, by_index)
            if wrong_speaker:
                flags.append(Flag(FlagKind.CONTRADICTION, wrong_speaker))
        if checked.section in observed and checked.evidence:
            problem = observation_problem(checked.text, checked.evidence, by_index)
            if problem:
                flags.append(Flag(FlagKind.MISPLACED, problem))
        for category, negated in dict.fromkeys(risk_in_sentence(checked.text)):  # each once
            heard = _client_polarity(result.risk_mentions, category)
            if not heard:
                flags.append(Flag(FlagKind.RISK_UNSTATED, f"{category} is not mentioned in the transcript"))
            elif negated not in heard:
                want = "denied" if True in heard else "endorsed"
                flags.append(Flag(FlagKind.RISK_POLARITY,
                                  f"{category}: the transcript has it {want}; the draft says the opposite"))
        result.sentences.append(CheckedSentence(checked.section, checked.index, checked.text,
                                                checked.evidence, checked.score, tuple(flags)))
    for category in sorted({m.category for m in result.risk_mentions}):
        polarity = polarity_said(result.risk_mentions, category)
        if not addresses(" ".join(s.text for s in result.sentences), category, polarity):
            first = next(m for m in result.risk_mentions if m.category == category)
            minute = int(first.start) // 60
            result.draft_flags.append(Flag(
                FlagKind.RISK_NOT_ADDRESSED,
                f"{category} is discussed in the transcript at {minute:02d}:{int(first.start) % 60:02d} "
                "(segment %d) but the note does not address it" % first.segment_index, category, polarity))
    endorsed = sorted({m.category for m in result.risk_mentions if m.category in NEEDS_A_PLAN
                       and polarity_said(result.risk_mentions, m.category) != "denied"
                       and any(not x.negated for x in result.risk_mentions if x.category == m.category)})
    if endorsed and not has_safety_plan(" ".join(s.text for s in result.sentences)):
        result.draft_flags.append(Flag(
            FlagKind.RISK_NO_PLAN, f"{', '.join(endorsed)} endorsed in the session, and the note records no safety "
            "plan or follow-up", endorsed[0], "endorsed"))
    return result


# A risk the client endorses needs a plan in the note: a safety plan, crisis resources, means
# restriction, or a follow-up with its time.
NEEDS_A_PLAN = ("suicidal ideation", "self-harm", "homicidal ideation")
_SAFETY_PLAN = re.compile(
    r"\b(safety plan\w*|crisis (?:line|plan|number|resources?|team)|988|hotline|means restriction|restrict\w* access"
    r"|remov\w* (?:the )?(?:firearms?|guns?|weapons?|pills|medications?)|lock\w* (?:up|away)"
    r"|emergency (?:contact|room|department|services)|follow[- ]up|check[- ]in|call (?:me|the clinic|us) (?:if|before)"
    r"|next (?:session|appointment|visit)|see (?:her|him|them|the client) again|return (?:in|on|next))\b", re.I)


def has_safety_plan(note_text: str) -> bool:
    return bool(_SAFETY_PLAN.search(note_text))


def _with_flag(s: CheckedSentence, flag: Flag) -> CheckedSentence:
    return CheckedSentence(s.section, s.index, s.text, s.evidence, s.score, (*s.flags, flag))
