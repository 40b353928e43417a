"""The audit chain as pure functions: each event's hash is an HMAC over its fields and
the previous hash, keyed with a secret kept outside the database. Recomputing a hash
needs the key, so an edit, deletion, insertion, reordering or truncation is detected."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime

from scribe.domain.notes import canonical_json

GENESIS = "0" * 64


@dataclass(frozen=True)
class AuditFields:
    at: datetime
    actor_id: int | None
    action: str
    object_type: str
    object_id: int | None
    reason: str
    content_sha256: str

    def canonical(self, prev_hash: str) -> str:
        return canonical_json({
            "at": self.at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "actor_id": self.actor_id,
            "action": self.action,
            "object_type": self.object_type,
            "object_id": self.object_id,
            "reason": self.reason,
            "content_sha256": self.content_sha256,
            "prev": prev_hash,
        })


def chain_hash(key: bytes, fields: AuditFields, prev_hash: str) -> str:
    return hmac.new(key, fields.canonical(prev_hash).encode("utf-8"), hashlib.sha256).hexdigest()


def verify_chain(key: bytes, events: list[tuple[int, AuditFields, str, str]]) -> list[str]:
    """``events`` are (id, fields, prev_hash, hash) in id order. Returns the problems found."""
    problems = []
    prev = GENESIS
    for event_id, fields, prev_hash, digest in events:
        if prev_hash != prev:
            problems.append(f"event {event_id}: chain broken (previous hash does not match)")
        if not hmac.compare_digest(chain_hash(key, fields, prev_hash), digest):
            problems.append(f"event {event_id}: content does not match its keyed hash")
        prev = digest
    return problems


@dataclass(frozen=True)
class Anchor:
    """The chain's head at one moment, written outside the database (and MAC'd), so that
    deleting or rewriting the tail of the table is detected even by someone holding it."""

    event_id: int
    event_hash: str
    at: str

    def mac(self, key: bytes) -> str:
        return hmac.new(key, f"anchor|{self.event_id}|{self.event_hash}|{self.at}".encode(), hashlib.sha256).hexdigest()


def verify_anchors(key: bytes, events: dict[int, str], anchors: list[tuple[Anchor, str]]) -> list[str]:
    """``events`` maps id -> hash of the rows now in the table; ``anchors`` are (anchor, mac)."""
    problems = []
    for anchor, mac in anchors:
        if not hmac.compare_digest(anchor.mac(key), mac):
            problems.append(f"anchor at event {anchor.event_id}: its MAC does not match (anchor file edited)")
        elif anchor.event_id not in events:
            problems.append(f"anchor at event {anchor.event_id}: the event is missing (deleted or truncated)")
        elif events[anchor.event_id] != anchor.event_hash:
            problems.append(f"anchor at event {anchor.event_id}: the event's hash differs (chain rewritten)")
    return problems
