"""The egress gateway's connection (issue 17 item 12): no redirect is followed, no proxy
from the environment is used, the answer is size-capped, and plain HTTP is refused except
to loopback."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from pydantic import ValidationError

from scribe.domain.egress import Destination
from scribe.domain.errors import EngineError
from scribe.domain.redaction import KnownIdentifier, Span
from scribe.engines.egress import MAX_RESPONSE_BYTES, EgressGateway
from scribe.policies.schema import EgressDestination

ANSWER = json.dumps({"choices": [{"message": {"content": "ok"}}]}).encode()


class Server:
    """A loopback server that counts the connections it serves and answers as told."""

    def __init__(self, status: int = 200, body: bytes = ANSWER, location: str = "") -> None:
        self.hits = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                outer.hits += 1
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                self.send_response(status)
                if location:
                    self.send_header("Location", location)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_POST = do_GET = do_CONNECT = _answer

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1/chat/completions"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class NoSpans:
    def find_spans(self, text: str, known: list[KnownIdentifier]) -> list[Span]:
        return []


def gateway(url: str) -> EgressGateway:
    return EgressGateway([Destination("llm", url, ("redacted_text",))], redactor=NoSpans(), ledger=lambda r: None,
                         clock=lambda: datetime.now(UTC), timeout=10)


def test_a_redirect_to_another_host_is_never_followed() -> None:
    elsewhere = Server()
    redirecting = Server(status=307, body=b"", location=elsewhere.url)
    try:
        with pytest.raises(EngineError, match="redirects are never followed"):
            gateway(redirecting.url).post_json("llm", {"messages": [{"content": "hello"}]})
        assert redirecting.hits == 1 and elsewhere.hits == 0
    finally:
        elsewhere.close()
        redirecting.close()


def test_a_proxy_in_the_environment_is_not_used(monkeypatch: pytest.MonkeyPatch) -> None:
    proxy, model = Server(), Server()
    try:
        for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy"):
            monkeypatch.setenv(name, proxy.url.rsplit("/v1", 1)[0])
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        assert gateway(model.url).post_json("llm", {"messages": [{"content": "hello"}]})["choices"]
        assert model.hits == 1 and proxy.hits == 0
    finally:
        proxy.close()
        model.close()


def test_an_answer_larger_than_any_completion_is_refused() -> None:
    huge = Server(body=b" " * (MAX_RESPONSE_BYTES + 10))
    try:
        with pytest.raises(EngineError, match="larger than any completion"):
            gateway(huge.url).post_json("llm", {"messages": [{"content": "hello"}]})
    finally:
        huge.close()


@pytest.mark.parametrize(("url", "ok"), [
    ("https://models.example.org/v1/chat/completions", True),
    ("http://127.0.0.1:8080/v1/chat/completions", True),
    ("http://localhost:8080/v1", True),
    ("http://[::1]:8080/v1", True),
    ("http://10.0.0.20:8080/v1/chat/completions", False),
    ("http://models.example.org/v1", False),
    ("http://127.0.0.1.example.org/v1", False),
])
def test_plain_http_is_allowed_to_loopback_only(url: str, ok: bool) -> None:
    if ok:
        EgressDestination(name="llm", url=url, receives=["redacted_text"])
        gateway(url)
    else:
        with pytest.raises(ValidationError, match="https"):
            EgressDestination(name="llm", url=url, receives=["redacted_text"])
        with pytest.raises(ValueError, match="https"):
            gateway(url)
