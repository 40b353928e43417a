"""The command line: demo summary, policy check, draft/transcribe JSON on the real test models."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from scribe.config import ROOT
from scribe.services.demo import SAMPLE_AUDIO


def run(args: list[str], env: dict[str, str] | None = None, timeout: int = 600) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run([sys.executable, "-m", "scribe.cli", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=timeout, cwd=ROOT)


def test_demo_runs_the_sample_end_to_end_and_reports_each_stage(tmp_path: Path) -> None:
    done = run(["demo", "--no-serve"], {"SCRIBE_DATA_DIR": str(tmp_path), "SCRIBE_ENGINES": "fake"})
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads(done.stdout)
    assert summary["status"] == "in_review"
    assert set(summary["stage_seconds"]) == {"transcribe", "pseudonymize", "draft", "evidence"}
    assert {x["username"] for x in summary["logins"]} == {"admin", "dr_ada", "dr_cole", "dr_ben", "sam"}
    assert (tmp_path / "demo-logins.json").stat().st_mode & 0o077 == 0
    for x in summary["logins"]:  # passwords go to stdout and the mode-600 file, never to the logs
        assert x["password"] not in done.stderr


def test_policies_check_passes_and_names_a_broken_file(tmp_path: Path) -> None:
    assert run(["policies", "check"]).returncode == 0
    import shutil

    shutil.copytree(ROOT / "policies", tmp_path / "p")
    (tmp_path / "p" / "pipeline.yaml").write_text("version: 2\n")
    bad = run(["policies", "check"], {"SCRIBE_POLICIES_DIR": str(tmp_path / "p")})
    assert bad.returncode == 1 and "pipeline.yaml" in bad.stderr


@pytest.mark.slow
def test_transcribe_prints_timed_segments_with_speakers() -> None:
    done = run(["transcribe", str(SAMPLE_AUDIO), "--profile", "test"])
    assert done.returncode == 0, done.stderr[-2000:]
    segments = json.loads(done.stdout)["segments"]
    assert segments and {"start", "end", "speaker", "text"} <= set(segments[0])
    assert {s["speaker"] for s in segments} == {"clinician", "client"}


@pytest.mark.slow
def test_draft_prints_sections_sentences_evidence_and_flags(tmp_path: Path) -> None:
    transcript = tmp_path / "t.txt"
    transcript.write_text((ROOT / "scribe" / "demo" / "session_script.txt").read_text())
    done = run(["draft", str(transcript), "--note-type", "dap", "--profile", "test"])
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout)
    assert [s["key"] for s in out["sections"]] == ["data", "assessment", "plan"]
    assert all(s["evidence"] or s["flags"] for s in out["sentences"])
    assert out["parts_noted"] == 0  # a short session is read whole


def test_draft_reads_a_long_transcript_in_parts_as_the_pipeline_does(tmp_path: Path) -> None:
    transcript = tmp_path / "t.txt"
    transcript.write_text("\n".join([(ROOT / "scribe" / "demo" / "session_script.txt").read_text()] * 4))
    done = run(["draft", str(transcript), "--note-type", "soap", "--profile", "test"])
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout)
    assert out["parts_noted"] >= 1 and out["sentences"]
    assert "Maya" not in done.stderr and "Riverside" not in done.stderr  # nothing clinical in the log


def test_serve_refuses_to_listen_beyond_loopback_without_tls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Property 6: no plaintext listener except loopback."""
    from scribe.cli import _check_listen, main

    monkeypatch.setenv("SCRIBE_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("SCRIBE_HOST", "0.0.0.0")
    with pytest.raises(SystemExit, match="refusing to listen beyond loopback"):
        main(["serve"])
    _check_listen("127.0.0.1", None)  # loopback without TLS is fine (behind the reverse proxy)
    _check_listen("0.0.0.0", "/etc/scribe/cert.pem")  # beyond loopback with a certificate is fine


def test_check_runs_the_pipelines_checks_on_a_note_anyone_wrote(tmp_path: Path) -> None:
    """`scribe check TRANSCRIPT NOTE`: sections from the note's headings, each sentence's
    evidence and flags, the note-level flags; unreadable input is a clear error."""
    transcript, note = tmp_path / "session.txt", tmp_path / "note.txt"
    transcript.write_text("CLINICIAN: How has your anxiety been this week?\n"
                          "CLIENT: About a five, last week it was closer to eight.\n"
                          "CLINICIAN: Any thoughts of not wanting to be here?\n"
                          "CLIENT: Some nights I wish I could go to sleep and not wake up.\n")
    note.write_text("Subjective:\nThe client rated their anxiety as about a five this week.\n"
                    "The client denied suicidal ideation.\n"
                    "Assessment: Meets criteria for generalized anxiety disorder.\nPlan: Recommend starting EMDR.\n")
    out = run(["check", str(transcript), str(note)], timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    report = json.loads(out.stdout)
    rows = {s["index"]: s for s in report["sentences"]}
    assert [rows[i]["section"] for i in range(4)] == ["subjective", "subjective", "assessment", "plan"]
    assert rows[0]["evidence"] and not rows[0]["flags"]
    assert "risk_polarity" in {f["kind"] for f in rows[1]["flags"]}
    assert rows[2]["removed"] and rows[3]["removed"]  # a diagnosis and a treatment nobody said
    assert [(f["kind"], f["polarity"]) for f in report["flags"]] == [("risk_not_addressed", "endorsed"),
                                                                    ("risk_no_plan", "endorsed")]
    missing = run(["check", str(tmp_path / "none.txt"), str(note)], timeout=120)
    assert missing.returncode != 0 and "cannot read" in missing.stderr and "Traceback" not in missing.stderr
