"""Small helpers the tests share: upload through the service and run the worker."""

from __future__ import annotations

import functools
import io
import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scribe.db.engine import session_scope
from scribe.db.tables import Encounter, User
from scribe.domain.grammar import Grammar
from scribe.domain.pattern_table import PatternTable
from scribe.runtime import Runtime
from scribe.services.uploads import accept_upload
from scribe.worker import Worker

if TYPE_CHECKING:
    from scribe.services.scrub import MediaTools


def upload(runtime: Runtime, actor: User, client_id: int | None, data: bytes, *, note_type: str = "soap",
           transcript: str | None = None, confirm_service: bool = True) -> Encounter:
    """Upload as the clinician would, who then (unless told not to) sets the session's time
    of service to 45 minutes and confirms its code, as the session page asks before signing."""
    assert client_id is not None
    with session_scope(runtime.engine) as s:
        encounter = accept_upload(s, runtime.audit_key, runtime.policies, recordings_dir=runtime.settings.recordings_dir,
                                  decoder=runtime.decoder,
                                  actor=actor, client_id=client_id, note_type=note_type, filename="session.wav",
                                  stream=io.BytesIO(data), now=runtime.clock())
    if confirm_service:
        confirm(runtime, actor, encounter)
    if transcript is not None:
        from sqlmodel import select

        from scribe.db.tables import Recording

        with session_scope(runtime.engine) as s:
            rec = s.exec(select(Recording).where(Recording.encounter_id == encounter.id)).one()
        (runtime.settings.recordings_dir / (rec.path + ".txt")).write_text(transcript)
    return encounter


def confirm(runtime: Runtime, actor: User, encounter: Encounter, *, minutes: int = 45, code: str = "90834") -> None:
    from datetime import timedelta

    from scribe.services.encounters import set_service

    now = runtime.clock()
    with session_scope(runtime.engine) as s:
        set_service(s, runtime.audit_key, runtime.policies, actor=actor, encounter_id=encounter.id or 0,
                    start=now - timedelta(minutes=minutes), end=now, place="11", service_type="individual", code=code,
                    attendees=[], now=now)


def media(runtime: Runtime) -> MediaTools:
    """What a withdrawal needs to silence a supervision recording: the store and the decoder."""
    from scribe.services.scrub import MediaTools as Tools

    return Tools(runtime.recordings_dir, runtime.decoder)


def run_pipeline(runtime: Runtime) -> int:
    return Worker(runtime).run_until_idle()


def reload(runtime: Runtime, encounter: Encounter) -> Encounter:
    with session_scope(runtime.engine) as s:
        fresh = s.get(Encounter, encounter.id)
        assert fresh is not None
        return fresh


TRANSCRIPT = """CLINICIAN: Hi Maya, welcome back. How has your week been?
CLIENT: Hard. Work at Riverside Bakery was busy and I felt anxious most mornings.
CLINICIAN: How has your sleep been?
CLIENT: Better, about seven hours most nights since I started the evening routine.
CLINICIAN: Have you had any thoughts of hurting yourself or of suicide?
CLIENT: No, none at all. I feel safe.
CLINICIAN: How are things with your sister Laura? You can call her at 555-201-3344.
CLIENT: We talked on Sunday. My email is maya.t@example.org if you need it.
CLINICIAN: Let us keep the breathing exercise every morning and meet next Tuesday."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """Serve an ASGI app with uvicorn on a free loopback port, in a thread; stops on exit."""
    import uvicorn

    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="error", lifespan="on"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.time() + 20
    while not srv.started and time.time() < deadline:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{srv.config.port}"
    finally:
        srv.should_exit = True
        thread.join(timeout=10)


def must_search(pattern: str, text: str, flags: int = 0) -> re.Match[str]:
    """re.search that fails the test, saying what was not found, instead of returning None."""
    found = re.search(pattern, text, flags)
    assert found is not None, f"{pattern!r} not found"
    return found


@functools.cache
def shipped_clinical_terms() -> frozenset[str]:
    """The clinical vocabulary as shipped (policies/vocabulary), for Lexicons built in tests."""
    from scribe.policies import load_policies

    return load_policies(Path(__file__).resolve().parent.parent / "policies").redaction.clinical_terms


@functools.cache
def shipped_patterns() -> PatternTable:
    """The pattern table as shipped (policies/vocabulary/patterns.yaml), for Lexicons built in tests."""
    from scribe.policies import load_policies

    return load_policies(Path(__file__).resolve().parent.parent / "policies").redaction.pattern_table


@functools.cache
def shipped_grammar() -> Grammar:
    """The grammar word lists as shipped (policies/vocabulary/grammar.yaml), for Lexicons built in tests."""
    from scribe.policies import load_policies

    return load_policies(Path(__file__).resolve().parent.parent / "policies").redaction.grammar_words
