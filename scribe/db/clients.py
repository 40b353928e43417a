"""Saving and finding clients whose identity is sealed. A new client is inserted first
without its identity (its identity key is the client's own, and needs its id), then its
identity is sealed, in the same transaction. Names and MRNs are found through a blind
index: keyed hashes of their normalised words (domain.clients), never the text."""

from __future__ import annotations

from sqlalchemy import delete, func
from sqlmodel import Session, col, select

from scribe.db.sealing.columns import sealed_columns, vault_for
from scribe.db.tables import Client, ClientAssignment, ClientSearchToken
from scribe.domain.clients import name_tokens, normal_mrn

MRN, NAME = "mrn", "name"


def add_client(s: Session, client: Client, *, by: int | None = None) -> Client:
    """Insert a client, then seal its identity under its own key; index it for search; its
    first assignment (to its clinician, by ``by``, default that clinician) opens its history."""
    identity = {c: getattr(client, c) for c, _ in sealed_columns(Client)}
    for c in identity:
        setattr(client, c, None)
    s.add(client)
    s.flush()
    for c, value in identity.items():
        setattr(client, c, value)
    if not client.mrn:
        client.mrn = f"C{client.clinic_id:02d}-{client.id:06d}"  # the practice had none to give
    reindex(s, client)
    s.add(client)
    s.add(ClientAssignment(client_id=client.id or 0, clinician_id=client.clinician_id, assigned_at=client.created_at,
                           assigned_by=by or client.clinician_id, reason="new client"))
    s.flush()
    return client


def reindex(s: Session, client: Client) -> None:
    """The client's MRN and name words as keyed hashes (after any change to them)."""
    vault = vault_for(s.get_bind())
    client.mrn_index = vault.blind(MRN, normal_mrn(client.mrn))
    s.execute(delete(ClientSearchToken).where(col(ClientSearchToken.client_id) == client.id))
    for token in name_tokens(client.given_name, client.family_name, client.preferred_name):
        s.add(ClientSearchToken(client_id=client.id or 0, token=vault.blind(NAME, token)))


def find_by_mrn(s: Session, clinic_id: int, mrn: str) -> Client | None:
    normal = normal_mrn(mrn)
    if not normal:
        return None
    index = vault_for(s.get_bind()).blind(MRN, normal)
    return s.exec(select(Client).where(Client.clinic_id == clinic_id, Client.mrn_index == index)).first()


def matching_ids(s: Session, clinic_id: int, query: str) -> set[int]:
    """Clients of a clinic whose MRN is the query, or whose names hold every word of it."""
    vault = vault_for(s.get_bind())
    found = set()
    normal = normal_mrn(query)
    if normal:
        found |= set(s.exec(select(Client.id).where(Client.clinic_id == clinic_id,
                                                    Client.mrn_index == vault.blind(MRN, normal))).all())
    words = [vault.blind(NAME, t) for t in name_tokens(query)]
    if words:
        rows = s.exec(select(ClientSearchToken.client_id)
                      .join(Client, col(Client.id) == ClientSearchToken.client_id)
                      .where(Client.clinic_id == clinic_id, col(ClientSearchToken.token).in_(words))
                      .group_by(col(ClientSearchToken.client_id))
                      .having(func.count(func.distinct(ClientSearchToken.token)) == len(set(words)))).all()
        found |= set(rows)
    return {i for i in found if i is not None}
