"""Claims a sentence makes that its evidence can contradict, beyond shared words:

- a quantity and the time it belongs to ("a five last week and an eight this week" against
  "about a five, last week it was closer to eight");
- a quality of the same thing turned into its opposite ("sleeping poorly" against "I slept
  well").

Pure functions over text: a clause is what lies between punctuation and conjunctions, a
quantity belongs to the time expression of its own clause. A contradiction needs the evidence
to state the other value explicitly; what the evidence leaves unsaid is the support check's
business, not this one's."""

from __future__ import annotations

import re
from dataclasses import dataclass

from scribe.domain.quantities import CARDINALS

_NUMBER_WORDS = CARDINALS
_NUMBER = re.compile(r"\b(\d+(?:\.\d+)?|" + "|".join(_NUMBER_WORDS) + r")\b", re.I)

# When: the present (this week, today, now), the past (last week, before, two weeks ago), the future.
_TIMES = [
    ("now", re.compile(r"\b(today|tonight|this (?:week|morning|evening|month|session|time|year)|now|currently"
                       r"|these days|at the moment|at present|so far this week)\b", re.I)),
    ("before", re.compile(r"\b(last (?:week|night|month|time|session|year|visit)|yesterday|before|earlier|previously"
                          r"|in the past|used to|(?:a|an|one|two|three|four|five|six|few|couple of|\d+) "
                          r"(?:days?|weeks?|months?|years?) ago|at (?:the|our) last (?:session|visit))\b", re.I)),
    ("next", re.compile(r"\b(next (?:week|month|time|session|visit)|tomorrow)\b", re.I)),
]
# Named days and periods: one the transcript never says is a time the note made up ("presents
# yesterday" of a visit that is today).
_NAMED_TIME = re.compile(r"\b(yesterday|tomorrow|tonight|last (?:night|week|month|year|weekend)"
                         r"|this (?:morning|afternoon|evening|weekend)|next (?:week|month|year))\b", re.I)
_CLAUSE = re.compile(r"[,;:.!?()]|\b(?:and|but|while|whereas|though|although|compared (?:to|with)|versus|vs)\b", re.I)

# Opposite qualities of one thing; each side's forms.
_OPPOSITES = [
    ({"well", "good", "great", "fine"}, {"poorly", "badly", "bad", "terrible", "awful"}),
    ({"better", "improved", "improving", "easier"}, {"worse", "worsened", "worsening", "harder"}),
    ({"more", "increased", "increasing", "higher", "up"}, {"less", "fewer", "decreased", "decreasing", "lower", "down"}),
    ({"able"}, {"unable"}),
]
_LEMMA = {"slept": "sleep", "sleeping": "sleep", "sleeps": "sleep", "felt": "feel", "feeling": "feel",
          "feels": "feel", "ate": "eat", "eating": "eat", "eats": "eat", "went": "go", "going": "go",
          "doing": "do", "did": "do", "does": "do"}
_HEADLESS = {"a", "an", "the", "i", "i'm", "i've", "you", "he", "she", "they", "it", "is", "was", "been", "be",
             "have", "has", "had", "and", "but", "very", "really", "so", "much", "quite", "pretty", "lot", "bit",
             "little", "being", "client", "patient", "reported", "reports", "said", "states", "stated",
             "that", "than", "as", "to", "of", "my", "his", "her", "their", "at", "in", "on", "not", "will",
             "would", "should", "could", "can", "may", "might", "must", "shall", "were", "are", "am", "get", "got",
             "getting", "still", "even", "now", "just", "also", "too", "all", "any", "some", "with", "for", "this",
             "what", "how", "there", "your", "our", "its", "these", "those", "then", "seem", "seems", "seemed",
             "look", "looks", "looked", "things", "thing"}


@dataclass(frozen=True)
class Quantity:
    value: str
    when: str | None  # "now", "before", "next", or None (the clause says no time)
    words: frozenset[str]  # the clause's other content words: what the quantity belongs to


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z]+(?:'[a-z]+)?", text.lower())


def quantities(text: str) -> list[Quantity]:
    """Each number with the time of its clause (a number inside the time expression itself,
    "two weeks ago", is part of the time, not a quantity)."""
    out = []
    for clause in _CLAUSE.split(text):
        when, spans = None, []
        for name, pattern in _TIMES:
            for m in pattern.finditer(clause):
                spans.append((m.start(), m.end()))
                when = when or name
        rest = "".join(" " if any(a <= i < b for a, b in spans) else ch for i, ch in enumerate(clause))
        words = frozenset(w for w in _words(rest) if w not in _HEADLESS and w not in _NUMBER_WORDS and len(w) > 2)
        for m in _NUMBER.finditer(clause):
            if any(a <= m.start() < b for a, b in spans):
                continue
            raw = m.group(1).lower()
            out.append(Quantity(_NUMBER_WORDS.get(raw, raw), when, words))
    return out


def unsaid_times(sentence: str, transcript: str) -> list[str]:
    """The named days and periods of ``sentence`` that ``transcript`` (lowercased) never says."""
    return list(dict.fromkeys(m.group(1).lower() for m in _NAMED_TIME.finditer(sentence)
                              if m.group(1).lower() not in transcript))


def _opposite(word: str) -> set[str] | None:
    if word.startswith("not "):
        return _side(word[4:]) or None
    for one, other in _OPPOSITES:
        if word in one:
            return other
        if word in other:
            return one
    return None


def _qualities(text: str) -> list[tuple[frozenset[str], str]]:
    """(things, quality) for each quality word: the things are the nearest content word before
    it and the nearest after it, lemmatized ("sleeping poorly" -> ({sleep}, poorly), "good days"
    -> ({days}, good), "I slept well" -> ({sleep}, well))."""
    tokens = _words(text)
    pairs = []
    for i, tok in enumerate(tokens):
        if _opposite(tok) is None:
            continue
        before = [tokens[j] for j in range(i - 1, max(i - 4, -1), -1)]
        after = tokens[i + 1 : i + 3]
        heads = {next((w for w in side if w not in _HEADLESS and _opposite(w) is None and len(w) > 2), "")
                 for side in (before, after)} - {""}
        if heads:
            # "not doing well" says what "doing poorly" says: the quality is "not well"
            negated = any(w in ("not", "never") or w.endswith("n't") for w in tokens[max(i - 3, 0):i])
            pairs.append((frozenset(_LEMMA.get(h, h) for h in heads), f"not {tok}" if negated else tok))
    return pairs


def _side(quality: str) -> set[str]:
    if quality.startswith("not "):
        return _opposite(quality[4:]) or set()
    for one, other in _OPPOSITES:
        if quality in one:
            return one
        if quality in other:
            return other
    return set()


def contradictions(sentence: str, evidence: list[str]) -> list[str]:
    """Why the evidence contradicts the sentence (empty when it does not)."""
    reasons: list[str] = []
    said = [q for text in evidence for q in quantities(text)]
    for q in quantities(sentence):
        if q.when is None:
            continue
        same_value = [e for e in said if e.value == q.value]
        if same_value and all(e.when not in (None, q.when) for e in same_value):
            reasons.append(f"{q.value} is tied to '{q.when}' in the note but to '{same_value[0].when}' in the transcript")
    told = [pair for text in evidence for pair in _qualities(text)]
    claimed = _qualities(sentence)
    for things, quality in claimed:
        same, opposite = _side(quality), _opposite(quality) or set()  # "not well" is on the side of "poorly"
        if any(things & t and _side(q) == opposite for t, q in claimed):
            continue  # the sentence itself says both ("good days and bad days")
        if any(things & t and _side(q) == same for t, q in told):
            continue  # the transcript says it this way too
        clash = next(((t, q) for t, q in told if things & t and _side(q) == opposite), None)
        if clash:
            thing = sorted(things & clash[0])[0]
            reasons.append(f"the note says '{thing} … {quality}', the transcript '{thing} … {clash[1]}'")
    return reasons
