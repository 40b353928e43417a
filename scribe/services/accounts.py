"""Passwords (argon2id), log-in sessions held on the server, and re-authentication."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlmodel import Session, select

from scribe.db.tables import LoginSession, User
from scribe.domain.errors import PermissionDenied
from scribe.services import audit

_hasher = PasswordHasher()  # argon2id with the library's current defaults
LOCKOUT_AFTER = 10


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def password_matches(user: User, password: str) -> bool:
    try:
        return _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


@dataclass(frozen=True)
class LoggedIn:
    token: str
    csrf_token: str
    user: User


def log_in(session: Session, key: bytes, *, username: str, password: str, now: datetime) -> LoggedIn:
    user = session.exec(select(User).where(User.username == username.strip().lower())).first()
    if user is None or not user.active or user.failed_logins >= LOCKOUT_AFTER or not password_matches(user, password):
        if user is not None:
            user.failed_logins += 1
            session.add(user)
        audit.record(session, key, now=now, actor_id=user.id if user else None, action="login.failed",
                     object_type="user", object_id=user.id if user else None, reason="bad credentials or locked")
        raise PermissionDenied("unknown user name or wrong password")
    user.failed_logins = 0
    token = secrets.token_urlsafe(32)
    login = LoginSession(token_sha256=_digest(token), user_id=user.id or 0, csrf_token=secrets.token_urlsafe(24),
                         created_at=now, last_seen_at=now)
    session.add(user)
    session.add(login)
    audit.record(session, key, now=now, actor_id=user.id, action="login", object_type="user", object_id=user.id,
                 reason="password accepted")
    return LoggedIn(token, login.csrf_token, user)


def resolve(session: Session, token: str, *, now: datetime, idle: timedelta, absolute: timedelta) -> tuple[User, LoginSession] | None:
    """The user behind a session cookie, or None if unknown, ended or expired."""
    login = session.exec(select(LoginSession).where(LoginSession.token_sha256 == _digest(token))).first()
    if login is None or login.ended_at is not None:
        return None
    if now - login.last_seen_at > idle or now - login.created_at > absolute:
        login.ended_at = now
        session.add(login)
        return None
    user = session.get(User, login.user_id)
    if user is None or not user.active:
        return None
    login.last_seen_at = now
    session.add(login)
    return user, login


def log_out(session: Session, key: bytes, login: LoginSession, *, now: datetime) -> None:
    login.ended_at = now
    session.add(login)
    audit.record(session, key, now=now, actor_id=login.user_id, action="logout", object_type="user", object_id=login.user_id)


def reauthenticate(user: User, password: str) -> None:
    """Signing needs the password re-entered, every time."""
    if not password_matches(user, password):
        raise PermissionDenied("the password you re-entered is not correct")


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
