"""A permission or policy decision that carries its reason (stored in audit rows)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Ground(StrEnum):
    """On what ground a session may be read: code asks this, never the reason's wording."""

    OWN = "own session"
    SUPERVISEE = "supervisee's session"
    PARTICIPANT = "participant in this supervision meeting"  # its signed note only, not its sources
    BREAK_GLASS = "break-glass grant"  # an emergency read of signed notes only


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str
    ground: Ground | None = None

    @classmethod
    def allow(cls, reason: str) -> Decision:
        return cls(True, reason)

    @classmethod
    def on(cls, ground: Ground, detail: str = "") -> Decision:
        """Allowed on a ground; the reason is the ground's wording (and any detail, such as the
        grant's number), so the audit row and the code that asks ``ground`` never disagree."""
        return cls(True, f"{ground.value} {detail}".strip(), ground)

    @classmethod
    def deny(cls, reason: str) -> Decision:
        return cls(False, reason)

    def __bool__(self) -> bool:
        return self.allowed
