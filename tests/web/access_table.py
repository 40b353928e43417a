"""The access policy as data: route -> (object kind, relations that allow it). The access
matrix test reads expectations from here, never from the code it tests."""

from __future__ import annotations

from typing import Any

OWN, SUPERVISOR, PARTICIPANT, SELF, ADMIN, BREAK_GLASS = "own", "supervisor", "participant", "self", "admin", "break-glass"
INTAKE = "intake"  # intake staff of the same clinic: charts, consents and receipts, never clinical text

RULES: dict[str, tuple[str, set[str]]] = {
    "/sessions/{encounter_id}": ("encounter", {OWN, SUPERVISOR, PARTICIPANT, BREAK_GLASS}),
    "/sessions/{encounter_id}/audio": ("encounter", {OWN, SUPERVISOR}),
    "/sessions/{encounter_id}/sections/{section_key}": ("encounter", {OWN}),
    "/sessions/{encounter_id}/flags": ("encounter", {OWN}),
    "/sessions/{encounter_id}/sign": ("encounter", {OWN}),
    "/sessions/{encounter_id}/addendum": ("encounter", {OWN}),
    "/sessions/{encounter_id}/amendment": ("encounter", {OWN}),
    "/sessions/{encounter_id}/note.txt": ("encounter", {OWN, SUPERVISOR, PARTICIPANT, BREAK_GLASS}),
    "/sessions/{encounter_id}/note.pdf": ("encounter", {OWN, SUPERVISOR, PARTICIPANT, BREAK_GLASS}),
    "/sessions/{encounter_id}/note.fhir.json": ("encounter", {OWN, SUPERVISOR, PARTICIPANT, BREAK_GLASS}),
    "/sessions/{encounter_id}/send": ("encounter", {OWN, SUPERVISOR, PARTICIPANT, BREAK_GLASS}),
    "/sessions/{encounter_id}/service": ("encounter", {OWN}),
    "/sessions/{encounter_id}/void": ("encounter", {OWN}),
    "/sessions/{encounter_id}/move": ("encounter", {OWN}),
    "/sessions/{encounter_id}/retry": ("encounter", {OWN}),
    "/recordings/{encounter_id}/chunks/{seq}": ("encounter", {OWN}),
    "/recordings/{encounter_id}/finish": ("encounter", {OWN}),
    "/recordings/{encounter_id}/live": ("encounter", {OWN}),
    "/sessions/{encounter_id}/voices/swap": ("encounter", {OWN}),
    "/supervision/versions/{version_id}/cosign": ("version", {SUPERVISOR}),
    "/supervision/versions/{version_id}/return": ("version", {SUPERVISOR}),
    "/hours/{user_id}": ("user", {SELF, SUPERVISOR}),
    "/hours/{user_id}/ledger.csv": ("user", {SELF, SUPERVISOR}),
    "/hours/{user_id}/ledger.pdf": ("user", {SELF, SUPERVISOR}),
    "/clients/{client_id}": ("client", {OWN, INTAKE}),
    "/clients/{client_id}/edit": ("client", {OWN, INTAKE}),
    "/clients/{client_id}/transfer": ("client", {OWN, INTAKE}),
    "/clients/{client_id}/status": ("client", {OWN, INTAKE}),
    "/clients/{client_id}/consents": ("client", {OWN, INTAKE}),
    "/clients/{client_id}/consents/withdraw": ("client", {OWN, INTAKE}),
    "/clients/{client_id}/consents/{consent_id}/form": ("consent", {OWN, INTAKE}),
    "/receipts/{receipt_id}": ("receipt", {OWN, ADMIN, INTAKE}),
    "/admin/users/{user_id}": ("user", {ADMIN}),
    "/admin/clients/{client_id}/hold": ("client", {ADMIN}),
    "/break-glass/{grant_id}": ("grant", {OWN}),
    "/admin/break-glass/{grant_id}/review": ("grant", {ADMIN}),
}

OTHER_CLINIC = {"eve"}
SUPERVISES = {"dr_ben": {"sam"}}
# The one emergency grant in the world: dr_cole, for dr_ada's client.
GRANTS = {("dr_cole", "dr_ada")}


def relations(actor: str, obj: Any) -> set[str]:
    out = set()
    if actor == obj.owner:
        out |= {OWN, SELF}
    if obj.owner in SUPERVISES.get(actor, set()):
        out.add(SUPERVISOR)
    if actor in obj.meeting_participants:
        out.add(PARTICIPANT)
    if actor == "root" and obj.owner not in OTHER_CLINIC:
        out.add(ADMIN)
    if actor == "ivy" and obj.owner not in OTHER_CLINIC and obj.kind in ("client", "consent", "receipt"):
        out.add(INTAKE)
    if obj.kind == "encounter" and (actor, obj.owner) in GRANTS and not obj.meeting_participants:
        out.add(BREAK_GLASS)
    return out


def allowed(path: str, actor: str, obj: Any) -> bool:
    if obj.owner == "nobody" or actor in ("anonymous", "pending_mfa"):
        return False
    return bool(RULES[path][1] & relations(actor, obj))
