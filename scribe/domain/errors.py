"""Errors the domain and services raise. They know nothing of HTTP: the web layer
maps them to status codes in exactly one place (scribe.web.errors)."""

from __future__ import annotations


class ScribeError(Exception):
    """Base class. ``public_message`` is safe to show (never clinical text)."""

    def __init__(self, public_message: str) -> None:
        super().__init__(public_message)
        self.public_message = public_message


class NotFound(ScribeError):
    """The object does not exist, or the actor may not know that it exists."""


class PermissionDenied(ScribeError):
    """The actor may not do this; ``reason`` is stored in the audit row."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ReauthFailed(PermissionDenied):
    """A re-entered password was wrong. The action's own transaction rolls back, so the web
    layer counts and audits the failure afterwards, in a transaction of its own."""

    def __init__(self, user_id: int, purpose: str) -> None:
        super().__init__("the password you re-entered is not correct")
        self.user_id, self.purpose = user_id, purpose


class InvalidInput(ScribeError):
    """The request is malformed or out of bounds (upload too large, unknown note type)."""


class Conflict(ScribeError):
    """The object changed since the actor last saw it (stale version) or is in the wrong state."""


class ConsentMissing(ScribeError):
    """A pipeline step's required consents are not in force."""


class PolicyError(ScribeError):
    """A policy file is invalid; the message names the file and the field."""


class EngineError(ScribeError):
    """An engine failed. ``retryable`` says whether running the job again may help."""

    def __init__(self, public_message: str, *, retryable: bool) -> None:
        super().__init__(public_message)
        self.retryable = retryable


class StageTimedOut(EngineError):
    """A stage ran past the time its policy gives it; running it again would do the same."""

    def __init__(self, stage: str, seconds: float) -> None:
        super().__init__(f"{stage} took longer than its {seconds:.0f} s limit", retryable=False)
        self.stage = stage


class ModelMissing(EngineError):
    """Model weights are not installed (never downloaded at run time)."""

    def __init__(self, public_message: str) -> None:
        super().__init__(public_message, retryable=False)


class ImmutableRecord(Conflict):
    """Something tried to change or delete a signed version, a co-signature or an audit row.
    Corrections are new versions (addenda, amendments); the database refuses it too."""
