"""What a role may do: the catalogue of permissions that policies/roles.yaml grants to roles
and that every route names. Clinical permissions are never an admin's."""

from __future__ import annotations

PERMISSIONS: dict[str, str] = {
    "session.read": "read sessions and notes",
    "session.upload": "record or upload a session",
    "draft.edit": "edit and review drafts",
    "note.sign": "sign, amend or add to notes",
    "note.export": "export a note",
    "consent.manage": "record or withdraw a client's consents",
    "note.cosign": "co-sign or return supervisees' notes",
    "supervision.record": "record supervision meetings",
    "hours.read": "read licensure hours",
    "breakglass.request": "use emergency access",
    "receipt.read": "read deletion receipts",
    "user.manage": "manage accounts and transcription switches",
    "report.read": "read the audit report and the egress ledger",
    "breakglass.review": "review emergency access",
    "legal_hold.manage": "place or lift legal holds",
    "client.read": "open client charts (a clinician's caseload; every client for intake staff)",
    "client.manage": "create, edit, transfer and discharge clients",
}

# What an admin never holds: anything that opens a client's chart or clinical content.
CLINICAL = frozenset({"session.read", "session.upload", "draft.edit", "note.sign", "note.export", "consent.manage",
                      "note.cosign", "supervision.record", "breakglass.request", "client.read", "client.manage"})

# What reads or writes clinical text (transcripts, drafts, notes): never an intake role's.
CLINICAL_TEXT = frozenset({"session.read", "session.upload", "draft.edit", "note.sign", "note.export", "note.cosign",
                           "supervision.record", "breakglass.request"})
