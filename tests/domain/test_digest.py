"""How a long transcript is read in parts: parts close at a size, notes are reused only for the
exact words they were made from, a short transcript is read whole."""

from __future__ import annotations

import dataclasses

from scribe.domain.digest import Digest, Part, fingerprint, plan
from scribe.domain.transcript import Segment, Speaker


def talk(n: int, chars: int = 100) -> tuple[Segment, ...]:
    """``n`` segments of ``chars`` characters, four seconds each."""
    return tuple(Segment(i, 4.0 * i, 4.0 * i + 3.5, f"{i:04d} " + "x" * (chars - 5),
                         Speaker.CLIENT if i % 2 else Speaker.CLINICIAN) for i in range(n))


def noted(segments: tuple[Segment, ...], part: Part, text: str = "- noted") -> Digest:
    piece = segments[part.first:part.last + 1]
    return Digest(piece[0].start, piece[-1].end, fingerprint(piece), text, "m")


def test_a_short_transcript_is_read_whole() -> None:
    assert plan(talk(19), (), part_chars=1000) == plan(talk(19), ()) == plan(talk(19), (), part_chars=1000)
    assert plan(talk(19), (), part_chars=1000).parts == ()
    assert plan(talk(19), (), part_chars=1000).tail == 0


def test_parts_close_at_their_size_and_the_rest_is_the_tail() -> None:
    p = plan(talk(35), (), part_chars=1000)
    assert [(x.first, x.last) for x in p.parts] == [(0, 9), (10, 19), (20, 29)]
    assert p.tail == 30 and all(x.digest is None for x in p.parts)


def test_parts_are_the_same_as_the_transcript_grows() -> None:
    """The live job and the draft stage cut the same parts: more talk never moves a closed part."""
    early = plan(talk(25), (), part_chars=1000).parts
    later = plan(talk(60), (), part_chars=1000).parts
    assert later[:len(early)] == early


def test_notes_are_reused_only_for_the_words_they_were_made_from() -> None:
    segments = talk(35)
    first = plan(segments, (), part_chars=1000).parts
    notes = tuple(noted(segments, x, f"- part {i}") for i, x in enumerate(first))
    again = plan(segments, notes, part_chars=1000)
    assert [x.digest for x in again.parts] == list(notes)
    changed = list(segments)
    changed[12] = dataclasses.replace(changed[12], text=changed[12].text.replace("x", "y", 1))  # one word differs
    redone = plan(tuple(changed), notes, part_chars=1000)
    assert [x.digest is None for x in redone.parts] == [False, True, False]


def test_a_part_whose_words_changed_is_noted_again_over_the_same_span() -> None:
    """Longer words in the first part must not move the parts after it (their notes stay)."""
    segments = talk(45)
    notes = tuple(noted(segments, x) for x in plan(segments, (), part_chars=1000).parts)
    changed = list(segments)
    changed[1] = dataclasses.replace(changed[1], text=changed[1].text + " and much more was said here" * 8)
    again = plan(tuple(changed), notes, part_chars=1000)
    assert [(x.first, x.last) for x in again.parts] == [(0, 9), (10, 19), (20, 29), (30, 39)]
    assert [x.digest for x in again.parts] == [None, *notes[1:]]


def test_new_speaker_labels_and_split_turns_keep_the_notes() -> None:
    """The whole-recording labelling at the end relabels and splits segments; the words stay."""
    segments = talk(35)
    notes = tuple(noted(segments, x) for x in plan(segments, (), part_chars=1000).parts)
    relabelled: list[Segment] = []
    for x in segments:
        words = x.text.split(" ")
        mid = (x.start + x.end) / 2
        relabelled += [Segment(0, x.start, mid, words[0], Speaker.CLIENT), Segment(0, mid, x.end, " ".join(words[1:]),
                                                                                  Speaker.CLINICIAN)]
    again = plan(tuple(relabelled), notes, part_chars=1000)
    assert [x.digest for x in again.parts][:3] == list(notes)


def test_notes_on_other_times_are_not_used() -> None:
    segments = talk(35)
    notes = tuple(noted(segments, x) for x in plan(segments, (), part_chars=1000).parts)
    shifted = tuple(dataclasses.replace(x, start=x.start + 1, end=x.end + 1) for x in segments)
    assert all(x.digest is None for x in plan(shifted, notes, part_chars=1000).parts)


def test_a_digest_round_trips_through_json() -> None:
    d = Digest(1.5, 200.25, "ab" * 32, "- The client said: [CLIENT] slept well", "fake")
    assert Digest.from_json(d.to_json()) == d
