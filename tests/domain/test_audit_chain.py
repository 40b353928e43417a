import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from scribe.domain.audit import GENESIS, AuditFields, chain_hash, verify_chain

KEY = b"k" * 32


def build(n: int = 20) -> list[tuple[int, AuditFields, str, str]]:
    events, prev = [], GENESIS
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for i in range(n):
        f = AuditFields(start + timedelta(seconds=i), i % 3, "encounter.read", "encounter", i, "own session", "")
        h = chain_hash(KEY, f, prev)
        events.append((i + 1, f, prev, h))
        prev = h
    return events


def test_an_intact_chain_verifies() -> None:
    assert verify_chain(KEY, build()) == []


def test_every_kind_of_tampering_is_detected() -> None:
    rng = random.Random(7)
    for _ in range(300):
        events = build()
        i = rng.randrange(1, len(events) - 1)
        attack = rng.choice(["edit", "delete", "insert", "swap", "rehash_unkeyed"])
        if attack == "edit":
            eid, f, p, h = events[i]
            events[i] = (eid, replace(f, actor_id=99), p, h)
        elif attack == "delete":
            del events[i]
        elif attack == "insert":
            f = AuditFields(datetime(2026, 1, 1, tzinfo=UTC), 5, "note.sign", "note", 1, "", "")
            events.insert(i, (999, f, events[i - 1][3], chain_hash(b"wrong key" * 4, f, events[i - 1][3])))
        elif attack == "swap":
            events[i], events[i + 1] = events[i + 1], events[i]
        else:
            import hashlib

            eid, f, p, _ = events[i]
            events[i] = (eid, replace(f, reason="edited"), p, hashlib.sha256(f.canonical(p).encode()).hexdigest())
        assert verify_chain(KEY, events), attack
