"""A session as a billable service: its type, time and place, and the service code suggested
from them by the time rules practices use (policies/billing.yaml). A suggestion only: the
clinician confirms or changes it, and no model ever chooses one. Pure functions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from scribe.domain.errors import InvalidInput


class ServiceType(StrEnum):
    INDIVIDUAL = "individual"
    COUPLE = "couple"
    FAMILY = "family"  # with the client present
    FAMILY_WITHOUT_CLIENT = "family_without_client"
    GROUP = "group"
    INTAKE = "intake"  # diagnostic evaluation
    CRISIS = "crisis"
    MEDICATION_MANAGEMENT = "medication_management"  # a prescriber's visit, billed as evaluation and management


SERVICE_LABELS = {
    ServiceType.INDIVIDUAL: "Individual psychotherapy",
    ServiceType.COUPLE: "Couples therapy (client present)",
    ServiceType.FAMILY: "Family therapy with the client present",
    ServiceType.FAMILY_WITHOUT_CLIENT: "Family therapy without the client",
    ServiceType.GROUP: "Group psychotherapy",
    ServiceType.INTAKE: "Intake: diagnostic evaluation",
    ServiceType.CRISIS: "Crisis psychotherapy",
    ServiceType.MEDICATION_MANAGEMENT: "Medication management (established client)",
}

# Who else may attend: a session of these types lists its other participants.
WITH_OTHERS = frozenset({ServiceType.COUPLE, ServiceType.FAMILY, ServiceType.FAMILY_WITHOUT_CLIENT,
                         ServiceType.GROUP})


class CodeRule(Protocol):
    """A billing code's time rule, read-only (the policy's own model is one)."""

    @property
    def label(self) -> str: ...
    @property
    def service_types(self) -> Sequence[str]: ...
    @property
    def min_minutes(self) -> int: ...
    @property
    def max_minutes(self) -> int | None: ...


@dataclass(frozen=True)
class Suggestion:
    code: str | None
    reason: str


def minutes_of(start: datetime, end: datetime) -> int:
    """Time of service in whole minutes, as the time rules count it (rounded down)."""
    return max(0, int((end - start).total_seconds() // 60))


def suggest_code(codes: Mapping[str, CodeRule], service_type: str, minutes: int) -> Suggestion:
    """The code whose service type and time band fit; with the reason either way."""
    fitting = [(code, rule) for code, rule in codes.items() if service_type in rule.service_types]
    if not fitting:
        return Suggestion(None, f"no service code is set up for {service_type.replace('_', ' ')} sessions")
    for code, rule in sorted(fitting, key=lambda cr: cr[1].min_minutes):
        if rule.min_minutes <= minutes and (rule.max_minutes is None or minutes <= rule.max_minutes):
            band = (f"{rule.min_minutes}-{rule.max_minutes} min" if rule.max_minutes is not None
                    else f"{rule.min_minutes}+ min" if rule.min_minutes else "any length")
            return Suggestion(code, f"{minutes} minutes of {service_type.replace('_', ' ')} service: {code} ({band})")
    shortest = min(rule.min_minutes for _, rule in fitting)
    if minutes < shortest:
        return Suggestion(None, f"{minutes} minutes is under the {shortest} minutes the shortest code needs: "
                                "not billable as this service")
    return Suggestion(None, f"no code's time band holds {minutes} minutes")


def check_service_time(start: datetime, end: datetime, *, now: datetime, max_hours: float = 8.0) -> None:
    if end <= start:
        raise InvalidInput("the session must end after it starts")
    if (end - start).total_seconds() > max_hours * 3600:
        raise InvalidInput(f"a session of more than {max_hours:g} hours is not plausible")
    if start > now:
        raise InvalidInput("the time of service cannot be in the future")
