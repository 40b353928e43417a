"""Break-the-glass: emergency read access to one client's signed notes outside the actor's
caseload. A separate, time-boxed grant with a required reason; every use is audited with
the grant's number; every grant is listed for an admin's review until reviewed (the
alert). Part 2 records stay closed: they are limited to the treating team."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, col, func, select

from scribe.db.clients import find_by_mrn
from scribe.db.queries import active_grant, get_own_grant, is_part2_client
from scribe.db.tables import AuditEvent, BreakGlassGrant, Client, Encounter, Note, User
from scribe.domain.errors import InvalidInput, NotFound, PermissionDenied
from scribe.domain.notes import CLINICAL_ROLES, LicenceStatus, Role
from scribe.policies.schema import SecurityPolicy
from scribe.services import audit

MIN_REASON = 20
NOT_OPENABLE = "no client with that MRN whose records emergency access may open"


def request_grant(s: Session, key: bytes, policy: SecurityPolicy, *, actor: User, mrn: str, reason: str,
                  minutes: int, now: datetime) -> BreakGlassGrant:
    if actor.role not in CLINICAL_ROLES:
        raise PermissionDenied(f"{actor.role}s do not read clinical content, even in an emergency")
    if len(reason.strip()) < MIN_REASON:
        raise InvalidInput(f"give the reason for emergency access (at least {MIN_REASON} characters)")
    if not 5 <= minutes <= policy.break_glass.max_minutes:
        raise InvalidInput(f"emergency access lasts 5 to {policy.break_glass.max_minutes} minutes")
    if policy.break_glass.licensed_only and actor.licence_status != LicenceStatus.LICENSED:
        audit.record_refusal(s, key, now=now, actor_id=actor.id, action="breakglass.refused", object_type="client",
                             reason="not a licensed clinician")
        raise PermissionDenied("emergency access is for licensed clinicians: ask your supervisor")
    taken = s.exec(select(func.count()).select_from(BreakGlassGrant).where(
        BreakGlassGrant.user_id == actor.id, col(BreakGlassGrant.starts_at) > now - timedelta(hours=24))).one()
    if taken >= policy.break_glass.max_per_day:
        audit.record_refusal(s, key, now=now, actor_id=actor.id, action="breakglass.refused", object_type="client",
                             reason=f"{taken} grants in 24 hours")
        raise PermissionDenied(f"you have used emergency access {taken} times in the last 24 hours, the most "
                               "this practice allows: ask a colleague or your administrator")
    client = find_by_mrn(s, actor.clinic_id, mrn)
    part2 = client is not None and is_part2_client(s, client.id or 0)
    if client is None or part2:
        # A Part 2 client answers exactly as no client: emergency access must not disclose
        # that someone is in a substance-use program. The audit row (written in its own
        # transaction, as every refusal here: this one rolls back) says which it was.
        audit.record_refusal(s, key, now=now, actor_id=actor.id, action="breakglass.refused", object_type="client",
                             object_id=client.id if client else None,
                             reason="Part 2 records are closed to emergency access" if part2 else "no such MRN")
        raise NotFound(NOT_OPENABLE)
    if client.clinician_id == actor.id:
        raise InvalidInput("this is your own client: open their sessions from your queue")
    grant = BreakGlassGrant(user_id=actor.id or 0, client_id=client.id or 0, reason=reason.strip()[:500],
                            starts_at=now, ends_at=now + timedelta(minutes=minutes))
    s.add(grant)
    s.flush()
    audit.record(s, key, now=now, actor_id=actor.id, action="breakglass.grant", object_type="client",
                 object_id=client.id, reason=f"grant #{grant.id} for {minutes} min; awaiting review")
    return grant


@dataclass(frozen=True)
class GrantView:
    grant: BreakGlassGrant
    client: Client
    sessions: list[Encounter]
    active: bool


def grant_view(s: Session, key: bytes, *, actor: User, grant_id: int, now: datetime) -> GrantView:
    grant = get_own_grant(s, actor, grant_id)
    client = s.get(Client, grant.client_id)
    assert client is not None  # noqa: S101 - narrows the type; never a guard
    live = active_grant(s, actor, client.id or 0, now) is not None
    signed = select(Note.encounter_id)
    sessions = list(s.exec(select(Encounter).where(Encounter.client_id == client.id, col(Encounter.part2).is_(False),
                                                   col(Encounter.id).in_(signed))
                           .order_by(col(Encounter.occurred_at).desc())).all()) if live else []
    audit.record(s, key, now=now, actor_id=actor.id, action="breakglass.list", object_type="client",
                 object_id=client.id, reason=f"grant #{grant.id}" + ("" if live else " (expired)"))
    return GrantView(grant, client, sessions, live)


def grants_for(s: Session, actor: User) -> list[BreakGlassGrant]:
    return list(s.exec(select(BreakGlassGrant).where(BreakGlassGrant.user_id == actor.id)
                       .order_by(col(BreakGlassGrant.id).desc())).all())


@dataclass(frozen=True)
class GrantRow:
    grant: BreakGlassGrant
    user: User
    client: Client
    new_account: bool  # the grantee's account was younger than break_glass.new_account_days
    created_by: int | None  # who created the grantee's account (from the audit log)

    def may_review(self, reviewer: User) -> bool:
        return reviewer.id not in (self.grant.user_id, self.created_by)


def _creators(s: Session, user_ids: set[int]) -> dict[int, int | None]:
    rows = s.exec(select(AuditEvent).where(AuditEvent.action == "user.create",
                                           col(AuditEvent.object_id).in_(user_ids))).all()
    return {e.object_id or 0: e.actor_id for e in rows}


def grants_for_review(s: Session, actor: User, policy: SecurityPolicy) -> list[GrantRow]:
    """Every grant in the admin's practice, unreviewed first, with the flags a reviewer needs."""
    if actor.role != Role.ADMIN:
        raise PermissionDenied("only an administrator reviews emergency access")
    rows = s.exec(select(BreakGlassGrant, User, Client).join(User, col(User.id) == BreakGlassGrant.user_id)
                  .join(Client, col(Client.id) == BreakGlassGrant.client_id)
                  .where(User.clinic_id == actor.clinic_id)
                  .order_by(col(BreakGlassGrant.reviewed_at).is_not(None), col(BreakGlassGrant.id).desc())).all()
    days = timedelta(days=policy.break_glass.new_account_days)
    creators = _creators(s, {u.id or 0 for _, u, _ in rows})
    return [GrantRow(g, u, c, g.starts_at - u.created_at < days, creators.get(u.id or 0))
            for g, u, c in rows]


def awaiting_review(s: Session, actor: User, policy: SecurityPolicy) -> int:
    """How many grants this reviewer has to review (the notice on every page they open):
    unreviewed, and neither their own nor one from an account they created."""
    if actor.role != Role.ADMIN:
        return 0
    return sum(1 for r in grants_for_review(s, actor, policy) if r.grant.reviewed_at is None and r.may_review(actor))


def review(s: Session, key: bytes, policy: SecurityPolicy, *, actor: User, grant_id: int, note: str,
           now: datetime) -> BreakGlassGrant:
    """Review a grant. Not by the grantee and not by whoever created the grantee's account:
    an admin who made an account for themselves to read records cannot also clear the alert."""
    rows = {r.grant.id: r for r in grants_for_review(s, actor, policy)}
    if grant_id not in rows:
        raise NotFound("no such emergency access")
    grant = rows[grant_id].grant
    if not rows[grant_id].may_review(actor):
        raise PermissionDenied("you created this account: another administrator reviews its emergency access")
    if grant.reviewed_at is not None:
        raise InvalidInput("already reviewed")
    grant.reviewed_by, grant.reviewed_at, grant.review_note = actor.id, now, note.strip()[:500]
    s.add(grant)
    audit.record(s, key, now=now, actor_id=actor.id, action="breakglass.review", object_type="break_glass_grant",
                 object_id=grant.id)
    return grant
