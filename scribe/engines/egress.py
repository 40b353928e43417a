"""The egress gateway: the only code in scribe that opens an outbound connection (a test
greps for any other). Every send is checked against policies/egress.yaml, passes the
redactor once more, is refused if any identifier the pipeline replaced is still in it, and
is written to the egress ledger (destination, time, payload hash, counts) — sent or not."""

from __future__ import annotations

import hashlib
import json
import re
import ssl
import urllib.request
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, Protocol
from urllib.parse import urlsplit

from scribe.domain.egress import (
    PART2_NOTICE,
    Destination,
    EgressRecord,
    Payload,
    check_destination_url,
    leaked,
    may_send,
)
from scribe.domain.errors import EngineError
from scribe.domain.redaction import KnownIdentifier, Span

_SURROGATE = re.compile(r"\[[A-Z][A-Z_]*(?:_\d+)?\]")
MAX_RESPONSE_BYTES = 8 << 20  # a chat completion is kilobytes; anything near this is not one


def make_opener(ca_bundle: str | None = None) -> urllib.request.OpenerDirector:
    """An opener with the HTTP(S) handlers only: no proxy handler (HTTP(S)_PROXY in the
    environment is never honoured), no redirect handler (a 3xx is an answer, never followed
    to another host), certificates checked against the policy's CA bundle or the system's."""
    opener = urllib.request.OpenerDirector()
    opener.add_handler(urllib.request.HTTPHandler())
    opener.add_handler(urllib.request.HTTPSHandler(context=ssl.create_default_context(cafile=ca_bundle)))
    return opener


class EgressRefused(EngineError):
    """The gateway would not send this (not retryable: the same payload is refused again)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=False)


class SpanFinder(Protocol):
    """What the gateway needs of a redactor."""

    def find_spans(self, text: str, known: list[KnownIdentifier]) -> list[Span]: ...


def _strings(obj: Any) -> list[str]:
    if isinstance(obj, str):
        return [obj]
    if isinstance(obj, dict):
        return [s for v in obj.values() for s in _strings(v)]
    if isinstance(obj, (list, tuple)):
        return [s for v in obj for s in _strings(v)]
    return []


def _map_strings(obj: Any, fn: Callable[[str], str]) -> Any:
    if isinstance(obj, str):
        return fn(obj)
    if isinstance(obj, dict):
        return {k: _map_strings(v, fn) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_map_strings(v, fn) for v in obj]
    return obj


class EgressGateway:
    def __init__(self, destinations: Iterable[Destination], *, redactor: SpanFinder | None,
                 ledger: Callable[[EgressRecord], None],
                 clock: Callable[[], datetime], policy_version: int = 1, timeout: float = 120.0,
                 ca_bundle: str | None = None) -> None:
        self.destinations = tuple(destinations)
        for d in self.destinations:
            check_destination_url(d.url)
        self._opener = make_opener(ca_bundle)
        self.redactor = redactor
        self.ledger = ledger
        self.clock = clock
        self.policy_version = policy_version
        self.timeout = timeout

    def _redact(self, text: str) -> tuple[str, int]:
        if self.redactor is None:
            raise EgressRefused("this gateway sends identified records only: no redactor is loaded")
        spans = [s for s in self.redactor.find_spans(text, [])
                 if not any(m.start() <= s.start and s.end <= m.end() for m in _SURROGATE.finditer(text))]
        out, pos = [], 0
        for s in sorted(spans, key=lambda x: x.start):
            if s.start < pos:
                continue
            out += [text[pos:s.start], f"[{s.entity}]"]
            pos = s.end
        out.append(text[pos:])
        return "".join(out), len(spans)

    def post_record(self, destination: str, body: dict[str, Any], *, identifiers: int, part2: bool,
                    part2_consent: bool, content_type: str = "application/fhir+json") -> dict[str, Any]:
        """Send a signed record with the client's identifiers to a destination declared to take
        them (the practice's own EHR, ``receives: [identified_record]``); no other may. The
        ledger counts the chart identifiers the payload carries (``identifiers``)."""
        texts = _strings(body)
        data = json.dumps(body, ensure_ascii=False).encode("utf-8")
        dest = next((d for d in self.destinations if d.name == destination), None)
        decision = may_send(self.destinations, destination, Payload("identified_record", tuple(texts), part2),
                            part2_consent=part2_consent)
        record = EgressRecord(self.clock(), destination, urlsplit(dest.url).hostname or "" if dest else "",
                              hashlib.sha256(data).hexdigest(), len(data), 0, identifiers, self.policy_version,
                              decision.allowed, decision.reason)
        self.ledger(record)
        if not decision or dest is None:
            raise EgressRefused(f"egress refused: {decision.reason}")
        return self._send(dest, data, content_type)

    def post_json(self, destination: str, body: dict[str, Any], *, originals: Iterable[str] = (), part2: bool = False,
                  part2_consent: bool = False) -> dict[str, Any]:
        found = 0

        def redact(text: str) -> str:
            nonlocal found
            pieces = []
            for piece in text.split(PART2_NOTICE):  # the 2.32 notice is fixed text: never "redacted"
                clean, n = self._redact(piece) if piece.strip() else (piece, 0)
                found += n
                pieces.append(clean)
            return PART2_NOTICE.join(pieces)

        upstream = sum(len(_SURROGATE.findall(t)) for t in _strings(body))
        body = _map_strings(body, redact)
        texts = _strings(body)
        data = json.dumps(body, ensure_ascii=False).encode("utf-8")
        dest = next((d for d in self.destinations if d.name == destination), None)
        decision = may_send(self.destinations, destination, Payload("redacted_text", tuple(texts), part2),
                            part2_consent=part2_consent)
        still = leaked(texts, originals)
        if decision and still:
            decision = type(decision).deny(f"{len(still)} identifier(s) replaced upstream are still in the payload")
        record = EgressRecord(
            self.clock(),
            destination,
            urlsplit(dest.url).hostname or "" if dest else "",
            hashlib.sha256(data).hexdigest(),
            len(data),
            upstream,
            found,
            self.policy_version,
            decision.allowed,
            decision.reason,
        )
        self.ledger(record)
        if not decision or dest is None:
            raise EgressRefused(f"egress refused: {decision.reason}")
        return self._send(dest, data, "application/json")

    def _send(self, dest: Destination, data: bytes, content_type: str) -> dict[str, Any]:
        # the policy loader allows only http(s) destinations
        request = urllib.request.Request(dest.url, data=data, method="POST",  # noqa: S310
                                         headers={"Content-Type": content_type})
        try:
            # The URL comes from policies/egress.yaml: https, or http to loopback (check_destination_url).
            with self._opener.open(request, timeout=self.timeout) as response:  # nosec B310 - checked policy URL
                status = getattr(response, "status", 200)
                if status not in (200, 201, 202):
                    raise EngineError(f"'{dest.name}' answered {status}; redirects are never followed", retryable=False)
                raw = response.read(MAX_RESPONSE_BYTES + 1)
            if len(raw) > MAX_RESPONSE_BYTES:
                raise EngineError(f"the answer from '{dest.name}' is larger than any completion or record", retryable=False)
            return json.loads(raw.decode("utf-8")) if raw.strip() else {}
        except EngineError:
            raise
        except (OSError, ValueError) as exc:
            raise EngineError(f"'{dest.name}' did not answer ({exc.__class__.__name__})", retryable=True) from exc
