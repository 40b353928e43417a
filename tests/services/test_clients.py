"""Client charts: created by a clinician or intake staff, sealed at rest with a blind index
that still finds them by name and MRN, transferred with an audited reason, discharged, and
shown as one page in date order. Intake staff never see diagnoses or clinical text."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from scribe.db.clients import find_by_mrn, matching_ids
from scribe.db.engine import session_scope
from scribe.db.tables import AuditEvent, Client, ClientSearchToken, User
from scribe.domain.clients import ChartInput, Diagnosis, GuardianAuthority, Person
from scribe.domain.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from scribe.runtime import Runtime
from scribe.services import clients, consent, review
from tests.conftest import CONSENTS, Clock, Practice, make_practice
from tests.helpers import TRANSCRIPT, run_pipeline, upload
from tests.services.test_lost_updates import race

CANARY_GIVEN, CANARY_FAMILY, CANARY_MRN = "Zebulonqx", "Featherstonehaughqx", "MRN-ZQ-771204"


def chart(**kw: Any) -> ChartInput:
    fields: dict[str, Any] = {"given_name": CANARY_GIVEN, "family_name": CANARY_FAMILY, "preferred_name": "Zeb",
                  "date_of_birth": date(1988, 4, 2), "mrn": CANARY_MRN, "phone": "555-010-9999",
                  "contacts": (Person("Harriet Okonkwo", "mother", "555-010-1111"),),
                  "diagnoses": (Diagnosis("F41.1", "Generalized anxiety disorder"),)}
    return ChartInput(**{**fields, **kw})


def create(runtime: Runtime, actor: User, **kw: Any) -> Client:
    clinician_id = kw.pop("clinician_id", None)
    with session_scope(runtime.engine) as s:
        return clients.create_client(s, runtime.audit_key, actor=actor, chart=chart(**kw), clinician_id=clinician_id,
                                     now=runtime.clock())


def consented(runtime: Runtime, actor: User, client: Client) -> Client:
    """The consents a session needs, recorded the way the consent page does."""
    with session_scope(runtime.engine) as s:
        consent.record_consent(s, runtime.audit_key, runtime.policies, actor=actor, client_id=client.id or 0,
                               functions=list(CONSENTS), effective_from=runtime.clock(), expires_at=None,
                               forms_dir=runtime.settings.forms_dir, scan=None, now=runtime.clock())
    return client


def test_a_new_chart_is_sealed_at_rest_and_found_by_name_and_mrn(runtime: Runtime, practice: Practice) -> None:
    client = create(runtime, practice.dr_ada)
    assert client.clinician_id == practice.dr_ada.id
    raw = b""
    for path in runtime.settings.data_dir.glob("scribe.db*"):
        raw += path.read_bytes()
    for canary in (CANARY_GIVEN, CANARY_FAMILY, CANARY_MRN, "Okonkwo", "555-010-9999", "1988-04-02", "F41.1"):
        assert canary.encode() not in raw, canary  # a stolen database file shows no one in care
    with runtime.engine.connect() as conn:
        row = conn.execute(text("SELECT family_name, mrn, mrn_index FROM clients WHERE id = :i"), {"i": client.id}).one()
    assert row.family_name.startswith("S2.") and row.mrn.startswith("S2.") and CANARY_MRN not in row.mrn_index
    with session_scope(runtime.engine) as s:
        found = find_by_mrn(s, practice.dr_ada.clinic_id, "mrn zq 771204")  # any separators
        assert found is not None and found.id == client.id
        assert matching_ids(s, practice.dr_ada.clinic_id, "featherstonehaughqx") == {client.id}
        assert matching_ids(s, practice.dr_ada.clinic_id, "Zeb Featherstonehaughqx") == {client.id}
        assert matching_ids(s, practice.dr_ada.clinic_id, "Zeb Thompson") == set()  # every word must match
        assert matching_ids(s, practice.eve.clinic_id, CANARY_MRN) == set()  # another clinic's index
        tokens = s.exec(select(ClientSearchToken).where(ClientSearchToken.client_id == client.id)).all()
        assert tokens and all(CANARY_FAMILY.lower() not in t.token for t in tokens)
        assert s.get_one(Client, client.id).diagnoses == [{"code": "F41.1", "description": "Generalized anxiety disorder"}]


def test_a_client_without_an_mrn_gets_one_and_a_duplicate_mrn_is_refused(runtime: Runtime, practice: Practice) -> None:
    first = create(runtime, practice.dr_ada, mrn="")
    assert first.mrn.startswith("C") and str(first.id) in first.mrn
    create(runtime, practice.dr_ada)
    with pytest.raises(Conflict, match="another client of this practice has that MRN"):
        create(runtime, practice.dr_cole, given_name="Other", family_name="Person")
    create(runtime, practice.eve, given_name="Other", family_name="Person")  # another clinic: its own MRNs


@pytest.fixture
def rt(either_db: Runtime) -> Runtime:
    return either_db


def test_two_people_creating_one_mrn_at_once_make_one_client(rt: Runtime, clock: Clock) -> None:
    """Concurrency: the database's unique index, not the check before it, decides; the loser
    gets a conflict (409 in the web layer), never a second chart with the same MRN."""
    p = make_practice(rt, clock)

    def attempt(actor: User) -> Client:
        with session_scope(rt.engine) as s:
            return clients.create_client(s, rt.audit_key, actor=actor, chart=chart(given_name=f"Racer{actor.id}"),
                                         clinician_id=None, now=rt.clock())

    for _ in range(3):
        outcomes = race(lambda: attempt(p.dr_ada), lambda: attempt(p.dr_cole))
        created = [o for o in outcomes if isinstance(o, Client)]
        assert len(created) == 1 and all(isinstance(o, (Conflict, IntegrityError)) for o in outcomes
                                          if not isinstance(o, Client)), outcomes
        with session_scope(rt.engine) as s:
            same = [c for c in s.exec(select(Client).where(Client.clinic_id == p.dr_ada.clinic_id)) if c.mrn == CANARY_MRN]
            assert len(same) == 1
            s.exec(select(Client))  # and the next round races for a fresh MRN
        with session_scope(rt.engine) as s:
            winner = s.get_one(Client, created[0].id)
            clients.update_client(s, rt.audit_key, actor=s.get_one(User, winner.clinician_id),
                                  client_id=winner.id or 0, chart=chart(mrn=f"MRN-DONE-{winner.id}",
                                                                   given_name=winner.given_name), now=rt.clock())


def test_intake_staff_assign_clients_record_consents_and_never_see_clinical_content(
    runtime: Runtime, practice: Practice, wav: bytes
) -> None:
    ivy = practice.ivy
    with pytest.raises(NotFound):  # intake must name an active clinician of the clinic
        create(runtime, ivy, clinician_id=practice.eve.id)
    client = create(runtime, ivy, clinician_id=practice.dr_ada.id, diagnoses=(Diagnosis("F32.1", "made up"),))
    with session_scope(runtime.engine) as s:
        assert s.get_one(Client, client.id).diagnoses == []  # intake does not enter diagnoses
        consent.record_consent(s, runtime.audit_key, runtime.policies, actor=ivy, client_id=client.id or 0,
                               functions=["record_audio", "transcribe", "ai_drafting"], effective_from=runtime.clock(),
                               expires_at=None, forms_dir=runtime.settings.forms_dir, scan=None,
                               now=runtime.clock())
    encounter = upload(runtime, practice.dr_ada, client.id, wav, transcript=TRANSCRIPT)
    run_pipeline(runtime)
    with session_scope(runtime.engine) as s:
        page = clients.client_page(s, runtime.audit_key, actor=ivy, client_id=client.id or 0, now=runtime.clock())
        assert not page.show_diagnoses and not page.may_open_sessions
        assert all(not item.link.startswith("/sessions/") for item in page.timeline)
        with pytest.raises(NotFound):
            review.review_view(s, runtime.audit_key, runtime.policies, actor=ivy, encounter_id=encounter.id or 0,
                               now=runtime.clock())
    with session_scope(runtime.engine) as s:  # a clinician's edit keeps diagnoses; intake's edit cannot touch them
        clients.update_client(s, runtime.audit_key, actor=practice.dr_ada, client_id=client.id or 0,
                              chart=chart(diagnoses=(Diagnosis("F41.1", "GAD"),)), now=runtime.clock())
    with session_scope(runtime.engine) as s:
        clients.update_client(s, runtime.audit_key, actor=ivy, client_id=client.id or 0, chart=chart(phone="555-010-2222",
                              diagnoses=()), now=runtime.clock())
    with session_scope(runtime.engine) as s:
        stored = s.get_one(Client, client.id)
        assert stored.diagnoses == [{"code": "F41.1", "description": "GAD"}] and stored.phone == "555-010-2222"
        audit = s.exec(select(AuditEvent).where(AuditEvent.action == "client.update")).all()
        assert [a.reason for a in audit][-1] == "changed: phone"  # field names, never values


def test_a_transfer_is_audited_with_its_reason_and_moves_the_chart(runtime: Runtime, practice: Practice, wav: bytes) -> None:
    client = consented(runtime, practice.dr_ada, create(runtime, practice.dr_ada))
    encounter = upload(runtime, practice.dr_ada, client.id, wav, transcript=TRANSCRIPT)
    with session_scope(runtime.engine) as s, pytest.raises(InvalidInput, match="reason"):
        clients.transfer_client(s, runtime.audit_key, actor=practice.dr_ada, client_id=client.id or 0,
                                to_clinician_id=practice.dr_cole.id or 0, reason="because", now=runtime.clock())
    with session_scope(runtime.engine) as s:
        clients.transfer_client(s, runtime.audit_key, actor=practice.dr_ada, client_id=client.id or 0,
                                to_clinician_id=practice.dr_cole.id or 0, reason="client request", now=runtime.clock())
    with session_scope(runtime.engine) as s:
        row = s.exec(select(AuditEvent).where(AuditEvent.action == "client.transfer")).one()
        assert row.reason == f"client request: from user #{practice.dr_ada.id} to user #{practice.dr_cole.id}"
        with pytest.raises(NotFound):  # the chart is the new clinician's now
            clients.client_page(s, runtime.audit_key, actor=practice.dr_ada, client_id=client.id or 0, now=runtime.clock())
        page = clients.client_page(s, runtime.audit_key, actor=practice.dr_cole, client_id=client.id or 0,
                                   now=runtime.clock())
        assert [a.reason for a, _ in page.assignments] == ["new client", "client request"]
        # the session stays with the clinician who held it
        assert review.review_view(s, runtime.audit_key, runtime.policies, actor=practice.dr_ada,
                                  encounter_id=encounter.id or 0, now=runtime.clock()).encounter.id == encounter.id


def test_a_discharged_client_gets_no_new_session_until_taken_back(runtime: Runtime, practice: Practice, wav: bytes) -> None:
    with session_scope(runtime.engine) as s:
        clients.set_status(s, runtime.audit_key, actor=practice.dr_ada, client_id=practice.maya.id or 0,
                           status="discharged", now=runtime.clock())
    with pytest.raises(Conflict, match="discharged"):
        upload(runtime, practice.dr_ada, practice.maya.id, wav)
    with session_scope(runtime.engine) as s:
        clients.set_status(s, runtime.audit_key, actor=practice.dr_ada, client_id=practice.maya.id or 0,
                           status="active", now=runtime.clock())
    assert upload(runtime, practice.dr_ada, practice.maya.id, wav).id


def test_the_client_page_is_the_whole_history_in_date_order_without_clinical_text(
    runtime: Runtime, practice: Practice, wav: bytes, clock: Clock
) -> None:
    from tests.services.test_review import resolve_all, sign

    encounter = upload(runtime, practice.dr_ada, practice.maya.id, wav,
                       transcript=TRANSCRIPT + "\nCLIENT: the zqtimelinecanary is here.")
    run_pipeline(runtime)
    clock.advance(minutes=5)
    sign(runtime, practice.dr_ada, encounter, resolve_all(runtime, practice.dr_ada, encounter))
    clock.advance(minutes=5)
    with session_scope(runtime.engine) as s:
        page = clients.client_page(s, runtime.audit_key, actor=practice.dr_ada, client_id=practice.maya.id or 0,
                                   now=clock())
    kinds = [i.kind for i in page.timeline]
    assert {"consent", "session", "note", "transfer"} <= set(kinds)
    assert [i.at for i in page.timeline] == sorted((i.at for i in page.timeline), reverse=True)
    assert not any("zqtimelinecanary" in i.text for i in page.timeline)
    assert any(i.kind == "note" and i.link == f"/sessions/{encounter.id}#note" for i in page.timeline)


def test_guardians_are_structured_and_need_their_authority(runtime: Runtime, practice: Practice) -> None:
    with pytest.raises(InvalidInput, match="authority"):
        create(runtime, practice.dr_ada, guardians=(Person("Rosa Diaz", "mother"),))
    client = create(runtime, practice.dr_ada, guardians=(
        Person("Rosa Diaz", "mother", "555-010-3333", GuardianAuthority.PARENT.value, "birth certificate"),))
    with session_scope(runtime.engine) as s:
        assert s.get_one(Client, client.id).guardians == [{"name": "Rosa Diaz", "relation": "mother",
                                                       "phone": "555-010-3333", "authority": "parent of a minor",
                                                       "documents": "birth certificate"}]


def test_only_clinicians_and_intake_keep_charts(runtime: Runtime, practice: Practice) -> None:
    with pytest.raises(PermissionDenied):
        create(runtime, practice.root)
