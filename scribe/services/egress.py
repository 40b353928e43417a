"""The egress ledger: written by the gateway through ``SqlLedger`` (its own transaction, so
a refusal is on record even when the job that asked fails), read and exported by admins."""

from __future__ import annotations

import csv
import io
from datetime import datetime

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from scribe.db.tables import EgressEvent, User
from scribe.domain.egress import EgressRecord
from scribe.domain.errors import PermissionDenied
from scribe.domain.notes import Role
from scribe.services import audit


class SqlLedger:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def __call__(self, record: EgressRecord) -> None:
        with Session(self.engine) as s:
            s.add(EgressEvent(at=record.at, destination=record.destination, host=record.host,
                              payload_sha256=record.payload_sha256, payload_bytes=record.payload_bytes,
                              surrogates=record.surrogates, gateway_found=record.gateway_found,
                              policy_version=record.policy_version, allowed=record.allowed, reason=record.reason))
            s.commit()


def ledger(s: Session, key: bytes, *, actor: User, now: datetime, limit: int = 1000) -> list[EgressEvent]:
    if actor.role != Role.ADMIN:
        raise PermissionDenied("the egress ledger is for admins")
    rows = list(s.exec(select(EgressEvent).order_by(col(EgressEvent.id).desc()).limit(limit)))
    audit.record(s, key, now=now, actor_id=actor.id, action="egress.ledger.read", object_type="egress_events",
                 reason=f"{len(rows)} row(s)")
    return rows


COLUMNS = ["at_utc", "destination", "host", "allowed", "reason", "payload_sha256", "payload_bytes",
           "surrogates_in_payload", "found_by_gateway", "policy_version"]


def ledger_csv(rows: list[EgressEvent]) -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(COLUMNS)
    for r in rows:
        w.writerow([r.at.strftime("%Y-%m-%dT%H:%M:%SZ"), r.destination, r.host, "yes" if r.allowed else "no", r.reason,
                    r.payload_sha256, r.payload_bytes, r.surrogates, r.gateway_found, r.policy_version])
    return out.getvalue()
