"""Request bodies are counted per route whatever Content-Length says, and multipart file
parts never reach the disk in plaintext (issue 17 items 3 and 10)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import anyio
import pytest
import starlette.formparsers
from fastapi import FastAPI
from sqlalchemy.exc import IntegrityError, OperationalError

from scribe.app import create_app
from scribe.config import Settings
from scribe.runtime import Runtime
from scribe.web.bodies import RECORD, SealedSpool
from tests.conftest import Practice, wav_bytes
from tests.web.test_web import client_for, csrf


@pytest.fixture
def app(settings: Settings, runtime: Runtime) -> FastAPI:
    return create_app(settings, runtime=runtime, start_worker=False)


class Counted:
    """A chunked request body (no Content-Length), fed to the app message by message at the
    ASGI level, counting what the server pulled before it answered."""

    def __init__(self, total: int, piece: int = 64 << 10, pattern: bytes = b"a", first: bytes = b"") -> None:
        self.total, self.piece, self.pulled, self.first = total, piece, 0, first
        self.block = (pattern * (piece // len(pattern) + 1))[:piece]

    def post(self, app: FastAPI, path: str, content_type: str, cookie: str = "") -> int:
        status: list[int] = []

        async def receive() -> dict[str, Any]:
            if self.pulled >= self.total:
                return {"type": "http.request", "body": b"", "more_body": False}
            block = self.first + self.block[len(self.first):] if self.pulled == 0 else self.block
            self.pulled += self.piece
            return {"type": "http.request", "body": block, "more_body": True}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])

        headers = [(b"host", b"testserver"), (b"content-type", content_type.encode()),
                   (b"transfer-encoding", b"chunked")]
        if cookie:
            headers.append((b"cookie", cookie.encode()))
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
                 "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
                 "root_path": "", "headers": headers, "client": ("127.0.0.1", 1), "server": ("testserver", 80)}
        asgi: Any = app  # an ASGI callable; anyio.run's signature knows only plain coroutines
        anyio.run(asgi, scope, receive, send)
        return status[0]


def logged_in_cookie(app: FastAPI, username: str) -> str:
    web = client_for(app, username)
    return "; ".join(f"{k}={v}" for k, v in web.cookies.items())


def test_a_chunked_body_to_login_is_refused_at_the_route_limit_not_parsed_whole(app: FastAPI, practice: Practice) -> None:
    body = Counted(64 << 20, pattern=b"a=" + b"x" * 10_000 + b"&")
    assert body.post(app, "/login", "application/x-www-form-urlencoded") == 413
    assert body.pulled <= (256 << 10) + body.piece  # stopped at the 256 KiB form limit, not read to 64 MB


def test_a_chunked_multipart_upload_before_log_in_is_not_read_at_all(app: FastAPI, practice: Practice) -> None:
    body = Counted(32 << 20)
    assert body.post(app, "/sessions", "multipart/form-data; boundary=x") == 303  # to /login
    assert body.pulled == 0


def test_a_chunked_upload_past_the_policy_limit_is_413(app: FastAPI, runtime: Runtime, practice: Practice) -> None:
    limit = runtime.policies.pipeline.upload.max_bytes
    body = Counted(limit + (8 << 20), piece=1 << 20, pattern=b"--x\r\n")
    status = body.post(app, "/sessions", "multipart/form-data; boundary=x", logged_in_cookie(app, "dr_ada"))
    assert status in (400, 413)
    assert body.pulled <= limit + (1 << 20)


def test_a_chunked_file_part_past_the_limit_is_413(app: FastAPI, runtime: Runtime, practice: Practice) -> None:
    """A well-formed multipart body whose one file grows past the upload limit."""
    limit = runtime.policies.pipeline.upload.max_bytes
    head = (b'--x\r\nContent-Disposition: form-data; name="audio"; filename="a.wav"\r\n'
            b"Content-Type: audio/wav\r\n\r\n")
    body = Counted(limit + (8 << 20), piece=1 << 20, first=head)
    status = body.post(app, "/sessions", "multipart/form-data; boundary=x", logged_in_cookie(app, "dr_ada"))
    assert status == 413
    assert body.pulled <= limit + (1 << 20)


def test_a_body_on_a_route_that_takes_none_is_refused(app: FastAPI, practice: Practice) -> None:
    web = client_for(app, "dr_ada")
    assert web.request("GET", "/", content=b"x" * 10).status_code == 413


def test_an_ordinary_form_takes_no_file(app: FastAPI, practice: Practice) -> None:
    web = client_for(app, "dr_ada")
    r = web.post("/account/password", data={"csrf_token": csrf(web), "current": "a", "new": "b"},
                 files={"junk": ("a.bin", b"\0" * 100, "application/octet-stream")})
    assert r.status_code == 400


def test_a_large_upload_is_accepted_without_starlette_spooling_it(
    app: FastAPI, runtime: Runtime, practice: Practice, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past 1 MB Starlette's parser spills to the system temp dir in plaintext; ours must not use it."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("Starlette's plaintext spool was used")

    monkeypatch.setattr(starlette.formparsers, "SpooledTemporaryFile", refuse)
    audio = wav_bytes(seconds=40.0)
    assert len(audio) > 1 << 20
    web = client_for(app, "dr_ada")
    r = web.post("/sessions", data={"csrf_token": csrf(web), "client_id": practice.maya.id, "note_type": "soap"},
                 files={"audio": ("s.wav", audio, "audio/wav")}, follow_redirects=False)
    assert r.status_code == 303, r.text
    assert list(runtime.spool_dir.iterdir()) == []  # nothing named is left behind


def test_the_spool_holds_only_ciphertext_and_reads_back_exactly(tmp_path: Path) -> None:
    canary = b"CANARY-suicidal-ideation-denied "
    data = canary * ((3 * RECORD) // len(canary) + 7)
    spool = SealedSpool(tmp_path)
    for i in range(0, len(data), 1000):
        spool.write(data[i:i + 1000])
    spool.seek(0)
    os.lseek(spool._file.fileno(), 0, os.SEEK_SET)
    on_disk = os.read(spool._file.fileno(), 10 * len(data))
    assert len(on_disk) > len(data) and canary not in on_disk and b"CANARY" not in on_disk
    assert list(tmp_path.iterdir()) == []  # the file has no name
    spool.seek(0)
    assert spool.read(5) + spool.read(RECORD) + spool.read() == data
    spool.seek(0)
    assert spool.read() == data
    spool.close()


def test_a_tampered_spool_does_not_read_back(tmp_path: Path) -> None:
    spool = SealedSpool(tmp_path)
    spool.write(b"x" * 5000)
    spool.seek(0)
    fd = spool._file.fileno()
    os.pwrite(fd, b"\xff", 10)
    spool.seek(0)
    with pytest.raises(Exception, match=r"InvalidTag|^$"):
        spool.read()


@pytest.mark.parametrize(("error", "status"), [
    (IntegrityError("INSERT", {}, Exception("UNIQUE constraint failed: notes.encounter_id")), 409),
    (OperationalError("UPDATE", {}, Exception("database is locked")), 503),
    (OperationalError("SELECT", {}, Exception("no such table: drafts")), 500),
])
def test_a_race_the_database_settles_is_a_409_or_503_never_a_500(
    app: FastAPI, practice: Practice, monkeypatch: pytest.MonkeyPatch, error: Exception, status: int
) -> None:
    from scribe.services import review

    def raced(*args: object, **kwargs: object) -> None:
        raise error

    monkeypatch.setattr(review, "save_section", raced)
    web = client_for(app, "dr_ada", raise_server_exceptions=False)
    r = web.post("/sessions/1/sections/subjective", data={"csrf_token": csrf(web), "text": "t", "lock_version": 1})
    assert r.status_code == status
    assert "UNIQUE" not in r.text and "no such table" not in r.text
