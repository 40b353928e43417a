"""Speaker turns: per-word labels from voice windows (pure parts on made-up embeddings), and the
real voice encoder on a real recording (slow)."""

from __future__ import annotations

import numpy as np
import pytest

from scribe.domain.transcript import Segment, Speaker, Word
from scribe.engines.protocols import Audio, VoiceHints
from scribe.engines.speakers import HOP, WINDOW, Windows, channel_voice, label_segments, smooth
from scribe.policies import Policies


def unit(v: np.ndarray) -> np.ndarray:
    out: np.ndarray = v / np.linalg.norm(v, axis=-1, keepdims=True)
    return out


VOICE = {k: unit(np.random.default_rng(k).standard_normal(256)) for k in range(4)}


def script(turns: list[tuple[int, int]]) -> tuple[Windows, tuple[Segment, ...]]:
    """Turns of (voice, words): one window per 0.8 s, one word per 0.4 s, and every turn
    inside one Whisper segment per two turns (so a segment holds two voices)."""
    rng = np.random.default_rng(7)
    centres: list[float] = []
    embeddings: list[np.ndarray] = []
    words: list[tuple[Word, int]] = []
    t = 0.0
    for voice, n in turns:
        end = t + n * 0.4
        for i in range(n):
            words.append((Word(t + i * 0.4, t + i * 0.4 + 0.35, f"w{len(words)}"), voice))
        c = t + WINDOW / 2
        while c < end - 1e-6:
            centres.append(c)
            embeddings.append(unit(VOICE[voice] + 0.02 * rng.standard_normal(256)))
            c += HOP
        t = end
    found = Windows(np.asarray(centres), np.asarray(embeddings, dtype=np.float32))
    segs: list[Segment] = []
    per = 2 * max(n for _, n in turns)
    for i in range(0, len(words), per):
        ws = tuple(w for w, _ in words[i:i + per])
        segs.append(Segment(len(segs), ws[0].start, ws[-1].end, " ".join(w.text for w in ws), words=ws))
    return found, tuple(segs)


def who_said(labelled: tuple[Segment, ...]) -> dict[str, Speaker]:
    return {w.text: s.speaker for s in labelled for w in s.words}


def test_every_word_takes_its_voice_and_segments_split_where_the_voice_changes() -> None:
    turns = [(0, 8), (1, 8), (0, 6), (1, 10)]
    found, segments = script(turns)
    labelled = label_segments(segments, found, VoiceHints(2))
    said = who_said(labelled)
    expected = [Speaker.CLINICIAN if v == 0 else Speaker.CLIENT for v, n in turns for _ in range(n)]
    assert [said[f"w{i}"] for i in range(len(expected))] == expected
    # Two Whisper segments held four turns: split where the voice changes, never one label per
    # segment (the third turn runs across the segment boundary, which stays).
    assert len(segments) == 2
    assert [s.speaker for s in labelled] == [Speaker.CLINICIAN, Speaker.CLIENT, Speaker.CLINICIAN, Speaker.CLINICIAN,
                                             Speaker.CLIENT]
    assert [s.index for s in labelled] == [0, 1, 2, 3, 4]
    assert labelled[1].text.startswith("w8") and labelled[1].start == pytest.approx(3.2)


def test_the_enrolled_voice_decides_who_is_the_clinician_not_who_spoke_first() -> None:
    found, segments = script([(1, 8), (0, 8), (1, 8), (0, 8)])  # the client speaks first
    by_rule = who_said(label_segments(segments, found, VoiceHints(2)))
    assert by_rule["w0"] == Speaker.CLINICIAN  # the rule's guess, wrong here
    enrolled = who_said(label_segments(segments, found, VoiceHints(2, clinician_voice=tuple(VOICE[0]))))
    assert enrolled["w0"] == Speaker.CLIENT and enrolled["w8"] == Speaker.CLINICIAN


def test_a_family_session_gets_as_many_voices_as_people_and_clients_by_talk_time() -> None:
    found, segments = script([(0, 6), (2, 5), (0, 4), (1, 12), (2, 4), (1, 10), (0, 5)])
    said = who_said(label_segments(segments, found, VoiceHints(3)))
    assert said["w0"] == Speaker.CLINICIAN
    assert said["w6"] == Speaker.CLIENT_2  # voice 2 talks less than voice 1
    assert said["w15"] == Speaker.CLIENT
    assert len({*said.values()}) == 3
    two = who_said(label_segments(segments, found, VoiceHints(2)))
    assert len({*two.values()}) == 2  # asked for two voices: never a third label


def test_a_stereo_recording_is_labelled_by_its_sides_where_one_is_clearly_louder() -> None:
    found, segments = script([(0, 10), (1, 10)])
    rate = 16000
    n = int(segments[-1].end * rate) + rate
    channels = np.zeros((2, n), dtype=np.float32)
    rng = np.random.default_rng(1)
    # The sides disagree with the voices on purpose: the second half is on the left side.
    channels[1, : int(4.0 * rate)] = 0.1 * rng.standard_normal(int(4.0 * rate))
    channels[0, int(4.0 * rate):] = 0.1 * rng.standard_normal(n - int(4.0 * rate))
    hints = VoiceHints(2, clinician_first=True)
    said = who_said(label_segments(segments, found, hints, channels=channels))
    assert said["w0"] == Speaker.CLINICIAN and said["w12"] == Speaker.CLIENT
    assert channel_voice(channels, 0.0, 1.0) == 1 and channel_voice(channels, 5.0, 6.0) == 0
    both = np.vstack([channels[0] + channels[1]] * 2)  # the same on both sides: no side decides
    assert channel_voice(both, 0.0, 1.0) is None


def test_live_windows_keep_each_voice_s_label_from_one_window_to_the_next() -> None:
    from scribe.engines.speakers import label_window

    first_found, first = script([(0, 8), (1, 8)])
    labelled, state = label_window(first, first_found, VoiceHints(2), {})
    assert [s.speaker for s in labelled] == [Speaker.CLINICIAN, Speaker.CLIENT]
    # The next window begins with the client talking: window-local clustering with the
    # first-speaker rule would call them the clinician; the running voices do not.
    later_found, later = script([(1, 8), (0, 8)])
    relabelled, state = label_window(later, later_found, VoiceHints(2), state)
    assert [s.speaker for s in relabelled] == [Speaker.CLIENT, Speaker.CLINICIAN]
    assert {v["speaker"] for v in state["voices"]} == {"clinician", "client"}
    assert all(v["n"] >= 4 for v in state["voices"])


def test_a_lone_window_in_a_turn_is_smoothed_away() -> None:
    assert smooth(np.array([0, 0, 1, 0, 0, 1, 1, 1])).tolist() == [0, 0, 0, 0, 0, 1, 1, 1]


@pytest.mark.slow
def test_real_voices_on_a_real_recording_and_an_enrolled_clinician(policies: Policies) -> None:
    """resemblyzer on the bundled sample session (two voices), transcribed by Whisper tiny.en:
    words on the right speaker against its script. Then the recording cut to start on the
    client's turn: the first-speaker rule gets it backwards, the clinician's enrolled voice
    does not. (bench/speakers.py measures the same on the Fareez interviews.)"""
    from bench.common import normalise, speaker_accuracy
    from scribe.config import ROOT, Settings
    from scribe.engines.build import build_decoder, build_transcriber
    from scribe.engines.speakers import VoiceTurns
    from scribe.services.demo import SAMPLE_AUDIO, SAMPLE_SCRIPT

    samples = build_decoder(policies).pcm(SAMPLE_AUDIO.read_bytes(), max_seconds=3600).samples
    transcriber = build_transcriber(Settings(model_profile="test", models_dir=ROOT / "models"))
    transcript = transcriber.transcribe(_audio(samples))
    voices = VoiceTurns()
    reference = [(w, "clinician" if who.strip().upper() == "CLINICIAN" else "client")
                 for who, _, line in (x.partition(":") for x in SAMPLE_SCRIPT.read_text().splitlines() if x.strip())
                 for w in normalise(line)]
    labelled = voices.label(samples, transcript.segments, VoiceHints(2))
    right, aligned = speaker_accuracy([(w.text, s.speaker.value) for s in labelled for w in s.words], reference)
    assert aligned > 120 and right / aligned >= 0.95
    # The clinician's voice, enrolled from their turns in the second half only.
    theirs = [s for s in labelled if s.speaker == Speaker.CLINICIAN and s.start > 40]
    enrolled = voices.enrol(np.concatenate([samples[int(s.start * 16000):int(s.end * 16000)] for s in theirs]))
    first_client = next(s for s in labelled if s.speaker == Speaker.CLIENT)
    cut = samples[int(first_client.start * 16000):]
    cut_transcript = transcriber.transcribe(_audio(cut))
    guessed = voices.label(cut, cut_transcript.segments, VoiceHints(2))
    known = voices.label(cut, cut_transcript.segments, VoiceHints(2, clinician_voice=enrolled))
    g_right, g_n = speaker_accuracy([(w.text, s.speaker.value) for s in guessed for w in s.words], reference)
    k_right, k_n = speaker_accuracy([(w.text, s.speaker.value) for s in known for w in s.words], reference)
    assert g_right / g_n < 0.5 < 0.95 <= k_right / k_n


def _audio(samples: np.ndarray) -> Audio:
    return Audio(samples, len(samples) / 16000)
