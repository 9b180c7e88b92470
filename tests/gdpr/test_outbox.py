"""The notification outbox holds mail sealed for every person it names: delivered as usual while
they exist, never sent once any of them is erased."""
from __future__ import annotations

import uuid

from services.events import events as ev
from services.events.notifications import OUTBOX_PROJECTOR, OutboxWorker
from shared import pii
from shared.eventlog import EventLog, Metadata
from tests.conftest import Store
from tests.events.test_notifications import SmtpServer, drain, outbox_rows, smtp, smtp_settings  # noqa: F401
from tests.events.test_notifications import Scene as _Scene


class Scene(_Scene):
    """Registrations as the events service writes them: name and e-mail sealed for the contact."""

    def __init__(self, store: Store) -> None:
        super().__init__(store.db)
        self.log = EventLog(store.db.dialect, projectors=[OUTBOX_PROJECTOR])
        self.contacts: dict[str, str] = {}

    def register(self, name: str, organisation: str, address: str | None) -> str:
        participant_id, contact_id = str(uuid.uuid4()), str(uuid.uuid4())
        with self.db.writing() as conn:
            event = ev.ParticipantRegistered(
                participant_id=participant_id, event_id=self.event_id, contact_id=contact_id,
                organisation_id=str(uuid.uuid4()), organisation_name=organisation, b2b=True,
                **pii.seal_fields(conn, contact_id, {"name": name, "email": address}, ("name", "email")))
            self.log.append(conn, ev.stream_id("participant", participant_id), "events.Participant", None, [event],
                            Metadata(actor="test", service="events"))
        self.contacts[participant_id] = contact_id
        return participant_id


ANNE, LUC = "anne.gdpr@iba.example", "luc.gdpr@uliege.example"


async def test_sealed_mail_is_delivered_until_a_person_it_names_is_erased(store: Store, smtp: SmtpServer) -> None:
    scene = Scene(store)
    scene.schedule_event()
    anne = scene.register("Anne Gdprmail", "IBA", ANNE)
    luc = scene.register("Luc Gdprmail", "Université de Liège", LUC)
    rows = outbox_rows(store.db)
    assert all(row[column].startswith("pii:v1") for row in rows for column in ("recipient", "subject", "body"))
    assert not any("Gdprmail" in str(value) or "@" in str(row["recipient"]) for row in rows for value in row.values())

    worker = OutboxWorker(store.db, smtp_settings(smtp.port))
    assert await drain(worker) == 2
    [confirmation] = smtp.inbox.to(ANNE)
    assert confirmation["To"] == f"Anne Gdprmail <{ANNE}>"
    smtp.inbox.messages.clear()

    # Luc's mail names Anne: sealed for both; Anne's erasure stops it.
    scene.request(anne, luc, message="Shall we talk?")
    with store.db.writing() as conn:
        pii.erase(conn, scene.contacts[anne])
    assert await drain(worker) == 1
    assert smtp.inbox.messages == []
    last = outbox_rows(store.db)[-1]
    assert (last["status"], last["last_error"]) == ("failed", "erased")
