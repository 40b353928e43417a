"""S8: the tamper suite. A keyed, chained audit log with anchors kept outside the database
detects every edit, deletion, insertion, reordering, truncation and unkeyed recomputation:
1,200 random mutations, each detected."""

from __future__ import annotations

import hashlib
import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from scribe.domain.audit import GENESIS, Anchor, AuditFields, chain_hash, verify_anchors, verify_chain

KEY = b"k" * 32
Events = list[tuple[int, AuditFields, str, str]]
ACTIONS = ("login", "encounter.read", "note.sign", "note.export", "consent.grant", "breakglass.grant")


def build(n: int, rng: random.Random) -> list[tuple[int, AuditFields, str, str]]:
    events, prev = [], GENESIS
    t0 = datetime(2026, 11, 1, tzinfo=UTC)
    for i in range(1, n + 1):
        f = AuditFields(t0 + timedelta(seconds=i), rng.randint(1, 9), rng.choice(ACTIONS), "encounter",
                        rng.randint(1, 50), "own session", hashlib.sha256(str(i).encode()).hexdigest())
        h = chain_hash(KEY, f, prev)
        events.append((i, f, prev, h))
        prev = h
    return events


def anchors_for(events: Events, every: int) -> list[tuple[Anchor, str]]:
    marks = [e for e in events if e[0] % every == 0] + [events[-1]]
    out = []
    for event_id, _, _, h in marks:
        a = Anchor(event_id, h, "2026-11-01T00:00:00.000000Z")
        out.append((a, a.mac(KEY)))
    return out


def problems(events: Events, anchors: list[tuple[Anchor, str]]) -> list[str]:
    return verify_chain(KEY, events) + verify_anchors(KEY, {e[0]: e[3] for e in events}, anchors)


def unkeyed(fields: AuditFields, prev: str) -> str:
    return hashlib.sha256(fields.canonical(prev).encode()).hexdigest()


def mutate(events: Events, rng: random.Random, kind: str) -> Events:
    ev = list(events)
    i = rng.randrange(len(ev))
    if kind == "edit":
        eid, f, prev, h = ev[i]
        field = rng.choice(["actor_id", "action", "object_id", "reason", "content_sha256", "at"])
        value: Any = {"actor_id": (f.actor_id or 0) + 1, "action": f.action + "x", "object_id": (f.object_id or 0) + 7,
                 "reason": f.reason + " (edited)", "content_sha256": "0" * 64, "at": f.at + timedelta(seconds=1)}[field]
        ev[i] = (eid, replace(f, **{field: value}), prev, h)
    elif kind == "delete":
        del ev[i]
    elif kind == "insert":
        eid, f, prev, _ = ev[i]
        forged = replace(f, action="note.export", reason="forged")
        ev.insert(i, (eid, forged, prev, chain_hash(b"wrong key" * 4, forged, prev)))
    elif kind == "reorder":
        j = rng.randrange(len(ev))
        while j == i:
            j = rng.randrange(len(ev))
        ev[i], ev[j] = ev[j], ev[i]
    elif kind == "truncate":
        del ev[max(1, i):]
    elif kind == "recompute":  # edit a row, then recompute every later hash with plain SHA-256 (no key)
        eid, f, prev, _ = ev[i]
        ev[i] = (eid, replace(f, reason="rewritten"), prev, "")
        for k in range(i, len(ev)):
            eid, f, _, _ = ev[k]
            p = ev[k - 1][3] if k else GENESIS
            ev[k] = (eid, f, p, unkeyed(f, p))
    elif kind == "recompute_keyless_tail":  # delete the last rows and re-anchor nothing: the anchor notices
        del ev[-rng.randint(1, 3):]
    return ev


def test_an_untouched_chain_verifies() -> None:
    events = build(60, random.Random(1))
    assert problems(events, anchors_for(events, 10)) == []


def test_every_mutation_is_detected() -> None:
    rng = random.Random(20261122)
    kinds = ("edit", "delete", "insert", "reorder", "truncate", "recompute", "recompute_keyless_tail")
    missed, total = [], 0
    for trial in range(1200):
        events = build(rng.randint(8, 40), rng)
        anchors = anchors_for(events, rng.randint(3, 10))
        kind = kinds[trial % len(kinds)]
        tampered = mutate(events, rng, kind)
        total += 1
        if not problems(tampered, anchors):
            missed.append((trial, kind))
    assert total == 1200 and missed == []


def test_an_edited_anchor_file_is_detected() -> None:
    events = build(20, random.Random(3))
    anchors = anchors_for(events, 5)
    (a, mac) = anchors[-1]
    assert problems(events, [*anchors[:-1], (replace(a, event_id=a.event_id - 1), mac)])
