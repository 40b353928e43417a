"""The breach-investigation access report: every audited event that touched a client's
information, attributed to that client whatever object it names (the client, a session, a
draft, a signed version, a consent, an emergency grant, a deletion receipt, a supervision
meeting that discussed the case), with the actor, their role, the access basis (the
permission decision's reason) and the time; a date range; no row cap (the CSV streams).
And the compliance overview: consent status, access patterns (emergency access, reads out
of hours), retention. Ids, names and actions only, never clinical text."""

from __future__ import annotations

import csv
import io
from collections import Counter, defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from scribe.db.clients import find_by_mrn
from scribe.db.tables import (
    AuditEvent,
    BreakGlassGrant,
    Client,
    Consent,
    DeletionReceipt,
    Draft,
    Encounter,
    Note,
    NoteVersion,
    Pseudonymization,
    User,
)
from scribe.domain.audit_actions import touches_client
from scribe.domain.chart import cases_found
from scribe.domain.consent import ConsentEntry, ConsentState, state_of
from scribe.domain.errors import NotFound, PermissionDenied
from scribe.domain.notes import Role
from scribe.domain.redaction import SurrogateMap
from scribe.policies import Policies
from scribe.services import audit


@dataclass(frozen=True)
class AccessRow:
    at: datetime
    user: str
    role: str
    action: str
    client: str
    object: str
    basis: str  # why access was allowed (or refused): the decision's reason, as audited


def _require_admin(actor: User) -> None:
    if actor.role != Role.ADMIN:
        raise PermissionDenied("only an administrator reads the audit report")


class Attribution:
    """Which clients an audited object concerns: built once per report from ids alone."""

    def __init__(self, s: Session, clinic_id: int) -> None:
        self.clients = {c.id: c for c in s.exec(select(Client).where(Client.clinic_id == clinic_id))}
        encounters = list(s.exec(select(Encounter).where(Encounter.clinic_id == clinic_id)))
        self.encounter: dict[int, set[int]] = {e.id or 0: {e.client_id} if e.client_id else set() for e in encounters}
        for p in s.exec(select(Pseudonymization).where(col(Pseudonymization.encounter_id).in_(
                [e.id for e in encounters if e.client_id is None]))):
            self.encounter[p.encounter_id] = cases_found(SurrogateMap.from_json(p.surrogates))  # a meeting's cases
        self.version = dict(
            s.exec(select(NoteVersion.id, Note.encounter_id).join(Note, col(Note.id) == NoteVersion.note_id)).all()
        )
        self.draft = dict(s.exec(select(Draft.id, Draft.encounter_id)).all())
        self.consent = dict(s.exec(select(Consent.id, Consent.client_id)).all())
        self.grant = dict(s.exec(select(BreakGlassGrant.id, BreakGlassGrant.client_id)).all())
        self.receipt = dict(s.exec(select(DeletionReceipt.id, DeletionReceipt.client_id)).all())

    def of(self, event: AuditEvent) -> set[int]:
        oid = event.object_id
        if oid is None or not touches_client(event.action):
            return set()
        kind = event.object_type
        if kind == "client":
            found = {oid}
        elif kind == "encounter":
            found = self.encounter.get(oid, set())
        elif kind == "note_version":
            found = self.encounter.get(self.version.get(oid, -1), set())
        elif kind == "draft":
            found = self.encounter.get(self.draft.get(oid, -1), set())
        elif kind == "consent":
            found = {self.consent[oid]} if oid in self.consent else set()
        elif kind == "break_glass_grant":
            found = {self.grant[oid]} if oid in self.grant else set()
        elif kind == "deletion_receipt":
            client = self.receipt.get(oid)
            found = {client} if client else set()
        else:
            found = set()
        return {c for c in found if c in self.clients}


@dataclass
class ReportQuery:
    client: Client
    since: datetime | None
    until: datetime | None


def resolve_query(s: Session, key: bytes, *, actor: User, mrn: str, since: datetime | None, until: datetime | None,
                  now: datetime) -> ReportQuery:
    """The client (by MRN, through the blind index) and range a report asks for; audited."""
    _require_admin(actor)
    client = find_by_mrn(s, actor.clinic_id, mrn)
    if client is None:
        raise NotFound("no client with that MRN in this practice")
    audit.record(s, key, now=now, actor_id=actor.id, action="audit.report.read", object_type="clinic",
                 object_id=actor.clinic_id, reason=f"client #{client.id}; "
                 f"{since.date() if since else 'start'} to {until.date() if until else 'now'}")
    return ReportQuery(client, since, until)


def access_rows(engine: Engine, clinic_id: int, query: ReportQuery) -> Iterator[AccessRow]:
    """Every event attributed to the client, oldest first, in the range; streamed from the
    database in batches (its own session: the CSV outlives the request's unit of work)."""
    with Session(engine) as s:
        attribution = Attribution(s, clinic_id)
        users = {u.id: u for u in s.exec(select(User).where(User.clinic_id == clinic_id))}
        label = f"{query.client.display_name} ({query.client.mrn})"
        stmt = select(AuditEvent).order_by(col(AuditEvent.id))
        if query.since:
            stmt = stmt.where(col(AuditEvent.at) >= query.since)
        if query.until:
            stmt = stmt.where(col(AuditEvent.at) < query.until)
        for event in s.exec(stmt.execution_options(yield_per=500)):
            if query.client.id not in attribution.of(event):
                continue
            who = users.get(event.actor_id)
            yield AccessRow(event.at, who.full_name if who else "system", who.role if who else "system", event.action,
                            label, f"{event.object_type} #{event.object_id}", event.reason)


COLUMNS = ["at_utc", "user", "role", "action", "client", "object", "access_basis"]


def csv_lines(rows: Iterator[AccessRow]) -> Iterator[str]:
    """The report as CSV, a line at a time (formula-looking cells defused)."""
    yield ",".join(COLUMNS) + "\n"
    for r in rows:
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerow(
            [r.at.strftime("%Y-%m-%dT%H:%M:%SZ")] + [_cell(x) for x in (r.user, r.role, r.action, r.client, r.object,
                                                                        r.basis)])
        yield out.getvalue()


def _cell(value: str) -> str:
    return "'" + value if value[:1] in ("=", "+", "-", "@") else value


# --- the compliance overview ------------------------------------------------------------


@dataclass
class Overview:
    consent: Mapping[str, Mapping[str, int]]  # function -> state -> clients
    grants_30_days: int
    grants_unreviewed: int
    after_hours: list[tuple[str, str, int]]  # user, role, reads of client information out of hours (30 days)
    readers: list[tuple[str, str, int]]  # user, role, distinct clients read (30 days)
    hours: str
    retention: Sequence[object] = field(default_factory=list)


def overview(s: Session, key: bytes, policies: Policies, *, actor: User, now: datetime) -> Overview:
    """What a privacy officer looks at first. Counts and staff names only."""
    from scribe.services import retention

    _require_admin(actor)
    clients = list(s.exec(select(Client).where(Client.clinic_id == actor.clinic_id)))
    ledger: dict[int, list[ConsentEntry]] = defaultdict(list)
    for c in s.exec(select(Consent).where(col(Consent.client_id).in_([x.id for x in clients]))):
        ledger[c.client_id].append(ConsentEntry(c.id or 0, c.function, c.granted, c.effective_from, c.expires_at,
                                                c.withdrawn_at))
    soon = timedelta(days=policies.consent.expiring_soon_days)
    consent: dict[str, dict[str, int]] = {f: dict(Counter(state_of(ledger[c.id or 0], f, now, soon=soon).value for c in clients))
               for f in policies.consent.functions}
    for states in consent.values():
        for state in ConsentState:
            states.setdefault(state.value, 0)
    since = now - timedelta(days=30)
    grants = list(s.exec(select(BreakGlassGrant).join(User, col(User.id) == BreakGlassGrant.user_id)
                         .where(User.clinic_id == actor.clinic_id, col(BreakGlassGrant.starts_at) >= since)))
    rules = policies.security.business_hours
    zone = ZoneInfo(rules.timezone)
    users = {u.id: u for u in s.exec(select(User).where(User.clinic_id == actor.clinic_id))}
    attribution = Attribution(s, actor.clinic_id)
    out_of_hours: Counter[int] = Counter()
    read: dict[int, set[int]] = defaultdict(set)
    for event in s.exec(select(AuditEvent).where(col(AuditEvent.at) >= since).execution_options(yield_per=500)):
        if (
            event.actor_id is None
            or event.actor_id not in users
            or not event.action.endswith((".read", ".play", ".export", ".list"))
        ):
            continue
        clients_read = attribution.of(event)
        if not clients_read:
            continue
        read[event.actor_id] |= clients_read
        local = event.at.astimezone(zone)
        if local.weekday() >= 5 or not rules.start_hour <= local.hour < rules.end_hour:
            out_of_hours[event.actor_id] += 1
    rows, _ = retention.report(s, key, policies, actor=actor, now=now)
    audit.record(s, key, now=now, actor_id=actor.id, action="compliance.read", object_type="clinic",
                 object_id=actor.clinic_id, reason="compliance overview (counts only)")
    return Overview(
        consent, len(grants), sum(1 for g in grants if g.reviewed_at is None),
        [(users[u].full_name, users[u].role, n) for u, n in out_of_hours.most_common()],
        sorted(((users[u].full_name, users[u].role, len(c)) for u, c in read.items()), key=lambda r: -r[2]),
        f"{rules.start_hour:02d}:00-{rules.end_hour:02d}:00 {rules.timezone}, weekdays", rows)


def day_bound(value: str, *, end: bool = False) -> datetime | None:
    """A YYYY-MM-DD filter as a UTC instant (the end of the day for an upper bound), or None."""
    from datetime import date

    if not value:
        return None
    start = datetime.combine(date.fromisoformat(value), datetime.min.time(), tzinfo=UTC)
    return start + timedelta(days=1) if end else start
