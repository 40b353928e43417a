"""The catalogue of audit actions: every action the audit log may hold, and whether it
touches a client's information (and so belongs in that client's access report). The audit
service refuses an action that is not here, so a new action must say which it is."""

from __future__ import annotations

from enum import StrEnum


class Touches(StrEnum):
    CLIENT = "client"  # reads or changes a client's information: in the client's access report
    STAFF = "staff"  # accounts, log-ins, settings: no client's information
    OVERSIGHT = "oversight"  # an admin's reports and reviews (ids and counts only)


class AuditAction(StrEnum):
    # clients and consents
    CLIENT_CREATE = "client.create"
    CLIENT_UPDATE = "client.update"
    CLIENT_READ = "client.read"
    CLIENT_LIST = "client.list"
    CLIENT_TRANSFER = "client.transfer"
    CLIENT_DISCHARGE = "client.discharge"
    CLIENT_REACTIVATE = "client.reactivate"
    CONSENT_GRANT = "consent.grant"
    CONSENT_WITHDRAW = "consent.withdraw"
    CONSENT_READ = "consent.read"
    CONSENT_FORM_READ = "consent.form.read"
    CONSENT_STATUS_READ = "consent.status.read"  # a client's row on the admin's consent report
    RECEIPT_READ = "receipt.read"
    LEGAL_HOLD_PLACE = "legal_hold.place"
    LEGAL_HOLD_LIFT = "legal_hold.lift"
    RETENTION_PURGE = "retention.purge"
    SUPERVISION_SCRUB = "supervision.scrub"
    # sessions, drafts and notes
    RECORDING_START = "recording.start"
    RECORDING_FINISH = "recording.finish"
    RECORDING_UPLOAD = "recording.upload"
    RECORDING_PLAY = "recording.play"
    ENCOUNTER_READ = "encounter.read"
    ENCOUNTER_LIST = "encounter.list"
    ENCOUNTER_SERVICE = "encounter.service"
    ENCOUNTER_VOID = "encounter.void"
    ENCOUNTER_MOVE = "encounter.move"
    PIPELINE_TRANSCRIBE = "pipeline.transcribe"
    PIPELINE_PSEUDONYMIZE = "pipeline.pseudonymize"
    PIPELINE_DRAFT = "pipeline.draft"
    PIPELINE_EVIDENCE = "pipeline.evidence"
    PIPELINE_RETRY = "pipeline.retry"
    DRAFT_EDIT = "draft.edit"
    DRAFT_FLAG_CONFIRM = "draft.flag.confirm"
    TRANSCRIPT_VOICES_SWAP = "transcript.voices.swap"
    NOTE_SIGN = "note.sign"
    NOTE_SIGN_REFUSED = "note.sign.refused"
    NOTE_ADDENDUM = "note.addendum"
    NOTE_AMENDMENT = "note.amendment"
    NOTE_COSIGN = "note.cosign"
    NOTE_COSIGN_REFUSED = "note.cosign.refused"
    NOTE_RETURN = "note.return"
    NOTE_EXPORT = "note.export"
    NOTE_SEND = "note.send"
    COSIGN_QUEUE_READ = "cosign.queue.read"
    BREAKGLASS_GRANT = "breakglass.grant"
    BREAKGLASS_REFUSED = "breakglass.refused"
    BREAKGLASS_REVIEW = "breakglass.review"
    BREAKGLASS_LIST = "breakglass.list"  # the grantee opens the list of the client's signed notes
    # staff, accounts and settings
    LOGIN = "login"
    LOGIN_FAILED = "login.failed"
    LOGOUT = "logout"
    MFA_ENROL = "mfa.enrol"
    PASSWORD_CHANGE = "password.change"  # noqa: S105 - an audit action's name
    VOICE_ENROL = "voice.enrol"
    VOICE_REMOVE = "voice.remove"
    REAUTH_FAILED = "reauth.failed"
    INVITATION_CREATE = "invitation.create"
    INVITATION_ACCEPT = "invitation.accept"
    USER_CREATE = "user.create"
    USER_UNLOCK = "user.unlock"
    USER_DISABLE = "user.disable"
    USER_ENABLE = "user.enable"
    USER_RESET_MFA = "user.reset_mfa"
    USER_RESET_PASSWORD = "user.reset_password"  # noqa: S105 - an audit action's name
    TRANSCRIPTION_SWITCH = "transcription.switch"
    HOURS_READ = "hours.read"
    SUPERVISION_DASHBOARD_READ = "supervision.dashboard.read"
    # oversight
    ADMIN_READ = "admin.read"
    AUDIT_REPORT_READ = "audit.report.read"
    COMPLIANCE_READ = "compliance.read"
    EGRESS_LEDGER_READ = "egress.ledger.read"


_STAFF = {
    "login",
    "login.failed",
    "logout",
    "mfa.enrol",
    "password.change",
    "voice.enrol",
    "voice.remove",
    "reauth.failed",
    "invitation.create",
    "invitation.accept",
    "user.create",
    "user.unlock",
    "user.disable",
    "user.enable",
    "user.reset_mfa",
    "user.reset_password",
    "transcription.switch",
    "hours.read",
    "supervision.dashboard.read",
}
_OVERSIGHT = {"admin.read", "audit.report.read", "compliance.read", "egress.ledger.read"}

TOUCHES: dict[str, Touches] = {
    a.value: Touches.STAFF if a.value in _STAFF else Touches.OVERSIGHT if a.value in _OVERSIGHT else Touches.CLIENT
    for a in AuditAction
}

# A pipeline step that stops or fails is audited as its own action, e.g. "pipeline.draft.failed".
for _step in ("transcribe", "pseudonymize", "draft", "evidence"):
    for _outcome in ("failed", "stopped"):
        TOUCHES[f"pipeline.{_step}.{_outcome}"] = Touches.CLIENT


def known(action: str) -> bool:
    return action in TOUCHES


def touches_client(action: str) -> bool:
    return TOUCHES.get(action) == Touches.CLIENT
