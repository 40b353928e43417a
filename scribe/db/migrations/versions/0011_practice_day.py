"""a practice's day: sealed client charts with a blind index, client status and transfers,
sessions as services (time, place, type, attendees, code), the practice header

Client identity fields were plaintext; they are sealed in place under each client's new
identity key (bound to the row), and their MRN and name words indexed as keyed hashes. That
needs the master key, as 0005 did. Clinics sharing an MRN between two clients are refused
with the count to fix. Existing sessions get their time of service from the recording.

Revision ID: 0011
Revises: 0010
"""
import json
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import context, op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_TEXT = sqlmodel.sql.sqltypes.AutoString()
_TIME = sqlmodel.sql.sqltypes.UTCDateTime()
IDENTITY = ("given_name", "family_name", "preferred_name", "date_of_birth", "mrn", "address", "city", "phone",
            "email", "employer", "school", "contacts")
NEW_LISTS = ("guardians", "diagnoses")


def upgrade() -> None:
    bind = op.get_bind()
    with op.batch_alter_table("clients") as b:
        b.drop_index("ix_clients_mrn")
        for column in IDENTITY:
            b.alter_column(column, type_=sa.Text(), nullable=True)
        for column in NEW_LISTS:
            b.add_column(sa.Column(column, sa.Text(), nullable=True))
        b.add_column(sa.Column("mrn_index", _TEXT, nullable=True))
        b.add_column(sa.Column("status", _TEXT, nullable=False, server_default="active"))
        b.add_column(sa.Column("discharged_at", _TIME, nullable=True))
        b.add_column(sa.Column("part2_program", sa.Boolean(), nullable=False, server_default=sa.false()))
        b.add_column(sa.Column("updated_at", _TIME, nullable=True))
        b.create_index("ix_clients_mrn_index", ["mrn_index"])
        b.create_unique_constraint("uq_clients_clinic_mrn", ["clinic_id", "mrn_index"])
    op.create_table(
        "client_search_tokens",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("client_id", sa.Integer(), sa.ForeignKey("clients.id"), nullable=False, index=True),
        sa.Column("token", _TEXT, nullable=False, index=True),
        sa.UniqueConstraint("client_id", "token"),
    )
    op.create_table(
        "client_assignments",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("client_id", sa.Integer(), sa.ForeignKey("clients.id"), nullable=False, index=True),
        sa.Column("clinician_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("assigned_at", _TIME, nullable=False),
        sa.Column("assigned_by", sa.Integer(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("reason", _TEXT, nullable=False),
    )
    with op.batch_alter_table("encounters") as b:
        b.add_column(sa.Column("service_start", _TIME, nullable=True))
        b.add_column(sa.Column("service_end", _TIME, nullable=True))
        b.add_column(sa.Column("place_of_service", _TEXT, nullable=False, server_default=""))
        b.add_column(sa.Column("service_type", _TEXT, nullable=False, server_default="individual"))
        b.add_column(sa.Column("service_code", _TEXT, nullable=False, server_default=""))
        b.add_column(sa.Column("service_confirmed_by", sa.Integer(),
                                sa.ForeignKey("users.id", name="fk_encounters_service_confirmed_by"), nullable=True))
        b.add_column(sa.Column("service_confirmed_at", _TIME, nullable=True))
    op.create_table(
        "encounter_attendees",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("encounter_id", sa.Integer(), sa.ForeignKey("encounters.id"), nullable=False, index=True),
        sa.Column("idx", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("relation", _TEXT, nullable=False),
        sa.UniqueConstraint("encounter_id", "idx"),
    )
    with op.batch_alter_table("clinics") as b:
        for column in ("address", "phone", "npi"):
            b.add_column(sa.Column(column, _TEXT, nullable=False, server_default=""))
    _seal_charts(bind)
    _service_times(bind)


def _seal_charts(bind: sa.engine.Connection) -> None:
    from scribe.db.sealing.envelope import Scope
    from scribe.domain.clients import name_tokens, normal_mrn

    rows = bind.execute(sa.text("SELECT id, clinic_id, clinician_id, created_at, "  # nosec B608 - constants
                                + ", ".join(IDENTITY) + " FROM clients")).mappings().all()
    if not rows:
        return
    vault = context.config.attributes.get("vault")
    if vault is None:
        raise RuntimeError("this database holds client charts to encrypt: upgrade it with the master key loaded")
    now = datetime.now(UTC)
    seen: dict[tuple[int, str], int] = {}
    for row in rows:
        key = vault.key_for(bind, Scope(f"client:{row['id']}", "identity"), now)
        binding = {"id": row["id"]}
        values = {c: "" if row[c] is None else str(row[c]) for c in IDENTITY if c != "date_of_birth"}
        values["contacts"] = json.dumps(json.loads(values["contacts"] or "[]"), ensure_ascii=False)
        sealed = {c: vault.seal_value(key, v.encode("utf-8"), f"clients.{c}", binding) for c, v in values.items()}
        if row["date_of_birth"] is not None:
            sealed["date_of_birth"] = vault.seal_value(key, str(row["date_of_birth"])[:10].encode(),
                                                       "clients.date_of_birth", binding)
        for c in NEW_LISTS:
            sealed[c] = vault.seal_value(key, b"[]", f"clients.{c}", binding)
        mrn = normal_mrn(values["mrn"]) or f"C{row['clinic_id']:02d}-{row['id']:06d}"
        index = vault.blind("mrn", mrn)
        seen[(row["clinic_id"], index)] = seen.get((row["clinic_id"], index), 0) + 1
        assignments = ", ".join(f"{c} = :{c}" for c in sealed)
        bind.execute(sa.text(f"UPDATE clients SET {assignments}, mrn_index = :mrn_index WHERE id = :row_id"),  # nosec B608 - constants
                     {**sealed, "mrn_index": index, "row_id": row["id"]})
        for token in name_tokens(values["given_name"], values["family_name"], values["preferred_name"]):
            bind.execute(sa.text("INSERT INTO client_search_tokens (client_id, token) VALUES (:c, :t)"),
                         {"c": row["id"], "t": vault.blind("name", token)})
        bind.execute(sa.text("INSERT INTO client_assignments (client_id, clinician_id, assigned_at, assigned_by, "
                             "reason) VALUES (:c, :u, :at, :u, 'new client')"),
                     {"c": row["id"], "u": row["clinician_id"], "at": row["created_at"]})
    shared = sum(n for n in seen.values() if n > 1)
    if shared:
        raise RuntimeError(f"{shared} clients share an MRN with another client of their clinic: give each its own "
                           "MRN before upgrading (nothing was changed)")


def _service_times(bind: sa.engine.Connection) -> None:
    encounters = sa.table("encounters", sa.column("id", sa.Integer()), sa.column("occurred_at", _TIME),
                          sa.column("service_start", _TIME), sa.column("service_end", _TIME))
    recordings = sa.table("recordings", sa.column("encounter_id", sa.Integer()),
                          sa.column("duration_seconds", sa.Float()))
    rows = bind.execute(sa.select(encounters.c.id, encounters.c.occurred_at, recordings.c.duration_seconds)
                        .select_from(encounters.outerjoin(recordings, recordings.c.encounter_id == encounters.c.id))
                        ).all()
    for encounter_id, start, seconds in rows:
        end = start + timedelta(seconds=float(seconds or 0))
        bind.execute(encounters.update().where(encounters.c.id == encounter_id)
                     .values(service_start=start, service_end=end))


def downgrade() -> None:
    raise NotImplementedError("scribe migrations only go forward; restore a backup to go back")
