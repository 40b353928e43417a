"""The rules for anything leaving the host, as pure functions: where it may go, what it may
carry, and what the ledger records. The gateway (engines/egress.py) applies them."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from scribe.domain.decision import Decision

PART2_NOTICE = (
    "42 CFR part 2 prohibits unauthorized use or disclosure of these records."  # the short form of 2.32(a)(1)
)

# Containers and codecs of audio, by their first bytes (and as base64 text): never sent.
_AUDIO_MAGIC = (b"RIFF", b"ID3", b"OggS", b"fLaC", b"\x1aE\xdf\xa3", b"\xff\xfb", b"\xff\xf3")
_AUDIO_B64 = re.compile(r"(UklGR|SUQz|T2dnU|ZkxhQ|GkXfo|//s|//M)[A-Za-z0-9+/]{200,}")


@dataclass(frozen=True)
class EgressRecord:
    """One line of the egress ledger: ids, hashes and counts, never content."""

    at: datetime
    destination: str
    host: str
    payload_sha256: str
    payload_bytes: int
    surrogates: int  # identifiers the pipeline's redactor had already replaced
    gateway_found: int  # identifiers the gateway's own pass found (and replaced) before sending
    policy_version: int
    allowed: bool
    reason: str


@dataclass(frozen=True)
class Destination:
    name: str
    url: str
    receives: tuple[str, ...]
    part2: bool = False
    qsoa: bool = False  # a qualified service organization: Part 2 under its agreement, not each consent


@dataclass(frozen=True)
class Payload:
    kind: str  # "redacted_text" is the only kind any destination may receive today
    texts: tuple[str, ...]  # every string that will be sent
    part2: bool = False


def looks_like_audio(data: bytes | str) -> bool:
    if isinstance(data, bytes):
        return any(data.startswith(m) for m in _AUDIO_MAGIC)
    return bool(_AUDIO_B64.search(data))


def may_send(destinations: Iterable[Destination], name: str, payload: Payload, *, part2_consent: bool) -> Decision:
    dest = next((d for d in destinations if d.name == name), None)
    if dest is None:
        return Decision.deny(f"destination '{name}' is not in policies/egress.yaml (deny by default)")
    if payload.kind == "audio" or any(looks_like_audio(t) for t in payload.texts):
        return Decision.deny("audio never leaves the host")
    if payload.kind not in dest.receives:
        return Decision.deny(f"'{name}' may not receive {payload.kind}")
    if payload.part2:
        if not dest.part2:
            return Decision.deny(f"'{name}' may not receive 42 CFR Part 2 material")
        if not part2_consent and not dest.qsoa:
            return Decision.deny("the client has not consented to disclosing Part 2 material to this recipient")
        if not any(PART2_NOTICE in t for t in payload.texts):
            return Decision.deny("Part 2 material must carry the redisclosure notice")
    return Decision.allow(f"'{name}' may receive {payload.kind}")


def leaked(texts: Iterable[str], originals: Iterable[str]) -> list[str]:
    """Which of the identifiers the redactor replaced still appear in what would be sent
    (case-insensitive, any spacing). A last check before anything leaves."""
    joined = "\n".join(texts).lower()
    squashed = re.sub(r"\s+", " ", joined)
    out = []
    for original in {o.strip() for o in originals if o and len(o.strip()) >= 3}:
        needle = re.sub(r"\s+", " ", original.lower())
        if re.search(rf"(?<!\w){re.escape(needle)}(?!\w)", squashed):
            out.append(original)
    return out


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_destination_url(url: str) -> None:
    """HTTPS, or plain HTTP to this host's own loopback only (an on-host model server):
    clinical text never crosses a network in the clear."""
    parts = urlsplit(url)
    if parts.scheme == "https" or (parts.scheme == "http" and is_loopback(parts.hostname)):
        return
    raise ValueError(f"egress destinations must use https:// (http:// only to loopback), not "
                     f"{parts.scheme}://{parts.hostname}")
