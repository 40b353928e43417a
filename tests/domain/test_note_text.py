from scribe.domain.note_text import parse_note

HEADINGS = {"subjective": "subjective", "s": "subjective", "plan": "plan", "assessment": "assessment"}


def test_headings_as_lines_markdown_and_inline_mark_sections() -> None:
    text = ("Seen for follow-up.\nSubjective:\nSlept better. Less worry.\n## Plan\nMeet next week.\n"
            "Assessment: Improving.\nS: Said the week was calm.\nNot a heading: stays in its section.")
    assert parse_note(text, HEADINGS) == [
        ("", "Seen for follow-up."), ("subjective", "Slept better."), ("subjective", "Less worry."),
        ("plan", "Meet next week."), ("assessment", "Improving."), ("subjective", "Said the week was calm."),
        ("subjective", "Not a heading: stays in its section."),
    ]


def test_a_word_that_is_not_a_known_heading_is_text() -> None:
    assert parse_note("Mood\nLow this week.", HEADINGS) == [("", "Mood"), ("", "Low this week.")]
