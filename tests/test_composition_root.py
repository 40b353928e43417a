"""One composition root: one Runtime, passed everywhere; nothing process-global."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from scribe.config import ROOT, Settings
from scribe.engines.fakes import FakeDrafter, FakeRedactor, FakeTranscriber, FakeVoices
from scribe.engines.protocols import Engines
from scribe.policies import load_policies
from scribe.runtime import Runtime, build_runtime
from scribe.worker import Worker


def test_route_modules_pull_in_neither_migrations_nor_the_worker() -> None:
    code = ("import sys\n"
            "import scribe.web.routes.auth, scribe.web.routes.sessions, scribe.web.routes.consent\n"
            "import scribe.web.routes.recording, scribe.web.routes.oversight, scribe.web.routes.supervision\n"
            "print(','.join(m for m in ('alembic', 'scribe.worker', 'scribe.db.migrate', 'scribe.app')"
            " if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == ""


def test_building_the_app_changes_no_process_global(tmp_path: Path) -> None:
    from scribe.app import create_app

    before = tempfile.tempdir
    create_app(Settings(data_dir=tmp_path / "var", engines="fake", worker_in_process=False))
    assert tempfile.tempdir == before


def test_the_pipeline_runs_on_the_runtime_itself(runtime: Runtime) -> None:
    """No second context object: the worker takes the runtime, and refuses one without engines."""
    assert isinstance(runtime.engines, Engines)
    worker = Worker(runtime)
    assert worker.rt is runtime
    bare = Runtime(runtime.settings, runtime.policies, runtime.engine, runtime.audit_key, runtime.clock)
    with pytest.raises(RuntimeError, match="engines are not loaded"):
        Worker(bare)


def test_engines_are_configured_from_the_runtime_policies_not_reread_from_disk(tmp_path: Path,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """A policy held by the runtime reaches the engines even when the files on disk differ."""
    import scribe.engines.build as build

    policies = load_policies(ROOT / "policies")
    flipped = dataclasses.replace(policies, redaction=policies.redaction.model_copy())
    seen: dict[str, object] = {}
    monkeypatch.setattr(build, "check_models", lambda settings: None)
    monkeypatch.setattr(build, "build_redactor", lambda settings, policy: seen.setdefault("redaction", policy)
                        and FakeRedactor())
    monkeypatch.setattr(build, "build_drafter", lambda settings: FakeDrafter())
    monkeypatch.setattr(build, "build_transcriber", lambda settings: FakeTranscriber())
    monkeypatch.setattr(build, "build_voices", lambda settings: FakeVoices())
    settings = Settings(data_dir=tmp_path / "var", engines="real", policies_dir=tmp_path / "nowhere")
    rt = build_runtime(settings, policies=flipped)
    rt.load_engines()
    assert seen["redaction"] is flipped.redaction
