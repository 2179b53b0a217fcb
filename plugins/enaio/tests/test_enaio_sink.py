"""The enaio sink against its simulator: filing, finding again, idempotency, refusals, check, sessions."""

from __future__ import annotations

from typing import Any

import pytest
from enaio_helpers import (
    APIS,
    DEFAULT_RECORD_SETTINGS,
    PASSWORD,
    PERSON,
    USER,
    StartEnaio,
    closed_loopback_port,
    make_sink,
    person_record,
    sha256_of_blob,
)
from hub_enaio import client, plugin
from hub_enaio.simulator import STATE
from hub_enaio.sink import EnaioSink
from pydantic import ValidationError

from hub import ApplicationState, ConnectorContext, DeliveryContext, Permanent, Retryable
from hub.blobs import BlobStore
from hub.testing import default_record, make_application
from hub.testing.contracts import delivery_context

per_api = pytest.mark.parametrize("api", APIS)


@per_api
async def test_files_akte_vorgang_and_documents_with_matching_content(
    api: str, start_enaio: StartEnaio, connector_context: ConnectorContext, blobs: BlobStore
) -> None:
    enaio = await start_enaio()
    sink = make_sink(connector_context, enaio.url, api)
    app = await make_application(blobs, external_id="filed", form=PERSON)
    record = await person_record(app, blobs)

    delivery = await sink.deliver(record, delivery_context(app, blobs))

    (akte,) = enaio.of_type("Personenakte")
    assert record.akte is not None
    assert akte.fields == record.akte.fields  # index data as mapped, nothing else
    (vorgang,) = enaio.children(akte.id)
    assert vorgang.type.internal == "Vorgang" and vorgang.value("AktenhubID") == app.id
    assert vorgang.value("Betreff") == "Antrag Jagdschein"
    documents = enaio.children(vorgang.id)
    assert [d.type.internal for d in documents] == ["Antrag", "Anlage", "Anlage", "Originalantrag"]
    assert [d.value("AktenhubID") for d in documents] == [f"{app.id}/{i}" for i in range(4)]
    assert documents[1].fields == {
        "Titel": "Anlage 1",
        "Dateiname": "personalausweis.pdf",
        "AktenhubID": f"{app.id}/1",
    }
    for document, sent in zip(documents, record.documents, strict=True):
        assert sent.blob is not None and document.content is not None
        assert document.content.file_name == sent.name
        assert document.content.media_type == sent.media_type
        assert await enaio.content_sha256(api, str(document.id)) == sha256_of_blob(sent.blob)

    assert delivery.target == sink.name
    assert delivery.reference == str(akte.id)
    assert delivery.file_number == "32-2025-00001"
    assert delivery.correlations == {
        "akte": str(akte.id),
        "vorgang": str(vorgang.id),
        "documents": ",".join(str(d.id) for d in documents),
    }
    assert not delivery.duplicate
    assert delivery.details["akte_created"] and delivery.details["documents_inserted"] == 4


@pytest.mark.parametrize("largest_buffered", [client.BUFFERED_FILE, 0], ids=["small", "large"])
async def test_the_dms_service_gets_small_documents_in_one_request_large_ones_streamed_alone(
    largest_buffered: int,
    start_enaio: StartEnaio,
    connector_context: ConnectorContext,
    blobs: BlobStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(client, "BUFFERED_FILE", largest_buffered)
    enaio = await start_enaio()
    sink = make_sink(connector_context, enaio.url, "dms")
    app = await make_application(blobs, external_id="one-request", form=PERSON)
    record = await person_record(app, blobs)

    delivery = await sink.deliver(record, delivery_context(app, blobs))

    # Akte and Vorgang are one insert each; then one for all four documents, or one per streamed document.
    assert enaio.state.requests["POST /api/dms/objects"] == 2 + (1 if largest_buffered else 4)
    # The Akte was looked for; what this delivery creates in it (Vorgang, documents) cannot be there yet.
    assert enaio.state.requests["POST /api/dms/objects/search"] == 1
    (akte,) = enaio.of_type("Personenakte")
    (vorgang,) = enaio.children(akte.id)
    documents = enaio.children(vorgang.id)
    assert [d.value("AktenhubID") for d in documents] == [f"{app.id}/{i}" for i in range(4)]
    assert delivery.correlations["documents"] == ",".join(str(d.id) for d in documents)
    for document, sent in zip(documents, record.documents, strict=True):
        assert sent.blob is not None and document.content is not None
        assert document.content.file_name == sent.name and document.content.media_type == sent.media_type
        assert await enaio.content_sha256("dms", str(document.id)) == sha256_of_blob(sent.blob)


@per_api
async def test_second_application_of_the_same_applicant_lands_in_the_same_akte(
    api: str, start_enaio: StartEnaio, connector_context: ConnectorContext, blobs: BlobStore
) -> None:
    enaio = await start_enaio()
    sink = make_sink(connector_context, enaio.url, api)
    first = await make_application(blobs, external_id="first", form=PERSON)
    second = await make_application(blobs, external_id="second", form={**PERSON, "ort": "Bonn"})
    other = await make_application(blobs, external_id="other", form={**PERSON, "vorname": "Erika"})

    one = await sink.deliver(await person_record(first, blobs), delivery_context(first, blobs))
    # The mapping drew a new Aktenzeichen for the second application; the Akte keeps its own.
    two = await sink.deliver(
        await person_record(second, blobs, aktenzeichen="32-2025-00002"), delivery_context(second, blobs)
    )
    three = await sink.deliver(
        await person_record(other, blobs, aktenzeichen="32-2025-00003"), delivery_context(other, blobs)
    )

    assert two.reference == one.reference and two.file_number == one.file_number == "32-2025-00001"
    assert not two.details["akte_created"]
    assert three.reference != one.reference and three.file_number == "32-2025-00003"
    akten = enaio.of_type("Personenakte")
    assert len(akten) == 2
    vorgaenge = enaio.children(akten[0].id)
    assert [v.value("AktenhubID") for v in vorgaenge] == [first.id, second.id]
    assert akten[0].value("Ort") == "Siegburg"  # an existing Akte is not changed


@per_api
async def test_several_matching_akten_the_oldest_is_taken(
    api: str, start_enaio: StartEnaio, connector_context: ConnectorContext, blobs: BlobStore
) -> None:
    enaio = await start_enaio()
    sink = make_sink(connector_context, enaio.url, api)
    app = await make_application(blobs, external_id="twins", form=PERSON)
    record = await person_record(app, blobs, vorgang=False)
    assert record.akte is not None
    state = enaio.state
    for number in ("32-2024-00007", "32-2024-00008"):  # e.g. created by hand by two clerks
        new = state.plan("Personenakte", None, False, {**record.akte.fields, "Aktenzeichen": number}, None)
        state.store(new, "clerk")

    delivery = await sink.deliver(record, delivery_context(app, blobs))

    oldest = enaio.of_type("Personenakte")[0]
    assert delivery.reference == str(oldest.id) and delivery.file_number == "32-2024-00007"
    assert len(enaio.of_type("Personenakte")) == 2
    assert [d.parent_id for d in enaio.of_application(app.id)] == [oldest.id] * 4


@per_api
async def test_the_same_record_twice_gives_one_set_of_documents(
    api: str, start_enaio: StartEnaio, connector_context: ConnectorContext, blobs: BlobStore
) -> None:
    enaio = await start_enaio()
    sink = make_sink(connector_context, enaio.url, api)
    app = await make_application(blobs, external_id="twice", form=PERSON)
    record = await person_record(app, blobs)

    first = await sink.deliver(record, delivery_context(app, blobs))
    objects = len(enaio.state.objects)
    # A second task for the same application (e.g. a replay): no checkpoints, only the lookups.
    second = await sink.deliver(record, delivery_context(app, blobs))
    # And a retry of a task that had finished everything before its answer was lost.
    store: dict[str, Any] = {}
    await sink.deliver(record, delivery_context(app, blobs, store))
    requests = sum(enaio.state.requests.values())
    third = await sink.deliver(record, delivery_context(app, blobs, store))

    assert len(enaio.state.objects) == objects == 6
    assert enaio.results(app.id) == 1
    assert second.duplicate and third.duplicate and not first.duplicate
    assert second.correlations == third.correlations == first.correlations
    assert second.file_number == first.file_number
    assert sum(enaio.state.requests.values()) == requests  # resumed entirely from the checkpoints


@per_api
async def test_checkpoints_of_another_record_are_ignored(
    api: str,
    start_enaio: StartEnaio,
    connector_context: ConnectorContext,
    blobs: BlobStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    enaio = await start_enaio()
    sink = make_sink(connector_context, enaio.url, api)
    app = await make_application(blobs, external_id="changed", form=PERSON)
    record = await person_record(app, blobs)
    # Left by attempts on the record before the mapping was fixed and the application replayed.
    store: dict[str, Any] = {"record": "0" * 64, "akte": "1", "vorgang": "2", "documents": {"0": "3"}}
    # The first attempt on the fixed record gets as far as the Akte, then enaio is unavailable.
    insert = sink.api.insert
    outages: list[str] = []

    async def unavailable_after_the_akte(*args: Any) -> Any:
        if args[-1] == "Vorgang creation" and not outages:
            outages.append("503")
            await enaio.set_faults(fail_next=1)
        return await insert(*args)

    monkeypatch.setattr(sink.api, "insert", unavailable_after_the_akte)
    with pytest.raises(Retryable, match="Vorgang creation: enaio answered 503"):
        await sink.deliver(record, delivery_context(app, blobs, store))
    assert store["akte"] == str(enaio.of_type("Personenakte")[0].id) and not store["documents"]

    delivery = await sink.deliver(record, delivery_context(app, blobs, store))

    (akte,) = enaio.of_type("Personenakte")
    (vorgang,) = enaio.children(akte.id)
    documents = [str(d.id) for d in enaio.children(vorgang.id)]
    assert delivery.reference == str(akte.id) and delivery.correlations["documents"] == ",".join(documents)
    assert store["akte"] == str(akte.id) and store["vorgang"] == str(vorgang.id)
    assert store["documents"] == {str(i): d for i, d in enumerate(documents)}
    requests = sum(enaio.state.requests.values())
    again = await sink.deliver(record, delivery_context(app, blobs, store))
    assert again.correlations == delivery.correlations
    assert sum(enaio.state.requests.values()) == requests


@per_api
async def test_an_attempt_records_its_progress_in_one_journal_write(
    api: str,
    start_enaio: StartEnaio,
    connector_context: ConnectorContext,
    blobs: BlobStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    enaio = await start_enaio()
    sink = make_sink(connector_context, enaio.url, api)
    app = await make_application(blobs, external_id="one-write", form=PERSON)
    record = await person_record(app, blobs)
    writes: list[dict[str, Any]] = []

    async def save(checkpoints: dict[str, Any]) -> None:
        writes.append(checkpoints)

    # A failed attempt: the Akte and the Vorgang are there (OSRest: and the first document), then enaio
    # fails the documents' insert (the DMS Service takes them in one request, OSRest one at a time).
    insert = sink.api.insert
    last_before_outage = "Vorgang creation" if api == "dms" else "insert of document 0"

    async def unavailable_at_the_documents(*args: Any) -> Any:
        object_id = await insert(*args)
        if args[-1] == last_before_outage:
            await enaio.set_faults(fail_next=1)
        return object_id

    monkeypatch.setattr(sink.api, "insert", unavailable_at_the_documents)
    with pytest.raises(Retryable, match="insert of 4 documents" if api == "dms" else "insert of document 1"):
        await sink.deliver(record, DeliveryContext(app, blobs, {}, save, attempt=1))
    (akte,) = enaio.of_type("Personenakte")
    (vorgang,) = enaio.children(akte.id)
    inserted = {str(i): str(d.id) for i, d in enumerate(enaio.children(vorgang.id))}
    assert len(writes) == 1 and len(inserted) == (0 if api == "dms" else 1)
    assert writes[0]["akte"] == str(akte.id) and writes[0]["vorgang"] == str(vorgang.id)
    assert writes[0].get("documents", {}) == inserted

    # The retry resumes from that write; a successful attempt's progress goes with the completion (in the
    # journal's transaction that ends the step), not in a write of its own.
    monkeypatch.setattr(sink.api, "insert", insert)
    retry = DeliveryContext(app, blobs, writes[0], save, attempt=2)
    await sink.deliver(record, retry)
    assert len(writes) == 1
    assert retry.completion_checkpoints is not None and len(retry.completion_checkpoints["documents"]) == 4
    assert len(enaio.children(vorgang.id)) == 4


@per_api
@pytest.mark.parametrize("checkpoints", ["kept", "lost"])
async def test_answers_dropped_after_storing_cause_no_duplicates(
    api: str,
    checkpoints: str,
    start_enaio: StartEnaio,
    connector_context: ConnectorContext,
    blobs: BlobStore,
) -> None:
    enaio = await start_enaio()
    sink = make_sink(connector_context, enaio.url, api)
    app = await make_application(blobs, external_id="dropped", form=PERSON)
    record = await person_record(app, blobs)
    store: dict[str, Any] = {}

    # Every insert's answer is lost once: the Akte's, the Vorgang's, the documents' (the DMS Service
    # takes them in one request, OSRest one at a time).
    attempts = 0
    while True:
        attempts += 1
        assert attempts <= 10, "the delivery does not get anywhere"
        await enaio.set_faults(drop_after_insert=1)
        context = delivery_context(app, blobs, store if checkpoints == "kept" else {})
        try:
            delivery = await sink.deliver(record, context)
            break
        except Retryable as exc:
            assert "connection" in str(exc)

    inserts = 3 if api == "dms" else 6
    assert attempts == inserts + 1 and enaio.state.dropped == inserts
    (akte,) = enaio.of_type("Personenakte")
    (vorgang,) = enaio.children(akte.id)
    assert len(enaio.children(vorgang.id)) == 4
    assert len(enaio.state.objects) == 6
    assert delivery.reference == str(akte.id) and delivery.correlations["vorgang"] == str(vorgang.id)


@per_api
async def test_refusals_are_permanent_with_the_servers_message(
    api: str, start_enaio: StartEnaio, connector_context: ConnectorContext, blobs: BlobStore
) -> None:
    enaio = await start_enaio()
    app = await make_application(blobs, external_id="refused", form={**PERSON, "nachname": ""})
    record = await person_record(app, blobs)
    wrong_password = make_sink(connector_context, enaio.url, api, password="not-the-password")
    with pytest.raises(Permanent, match=r"refused user 'aktenhub' \(401\): authentication failed"):
        await wrong_password.deliver(record, delivery_context(app, blobs))
    with pytest.raises(
        Permanent,
        match=r"Akte creation: enaio refused the request \(422\): mandatory index field 'Nachname'",
    ):
        await make_sink(connector_context, enaio.url, api).deliver(record, delivery_context(app, blobs))
    assert enaio.state.objects == {}


@per_api
async def test_a_record_that_cannot_be_filed_creates_nothing(
    api: str, start_enaio: StartEnaio, connector_context: ConnectorContext, blobs: BlobStore
) -> None:
    enaio = await start_enaio()
    sink = make_sink(connector_context, enaio.url, api)
    app = await make_application(blobs, external_id="unfileable", form=PERSON)

    with pytest.raises(Permanent, match="the record names no Akte"):
        await sink.deliver(default_record(app), delivery_context(app, blobs))
    record = await person_record(app, blobs)
    record.documents[2].blob = "sha256:" + "0" * 64
    with pytest.raises(Permanent, match=r"document 2 .* not in the blob store"):
        await sink.deliver(record, delivery_context(app, blobs))
    record = await person_record(app, blobs)
    record.documents[0].fields["Titel; DROP"] = "x"
    with pytest.raises(Permanent, match="is not an enaio index field name"):
        await sink.deliver(record, delivery_context(app, blobs))
    record = await person_record(app, blobs)
    assert record.akte is not None
    record.akte.search = {}
    record.akte.fields.pop("Aktenzeichen")
    with pytest.raises(Permanent, match=r"akte\.search is empty"):
        await sink.deliver(record, delivery_context(app, blobs))
    assert enaio.state.objects == {}


@per_api
async def test_without_akte_the_documents_go_to_the_tray(
    api: str, start_enaio: StartEnaio, connector_context: ConnectorContext, blobs: BlobStore
) -> None:
    enaio = await start_enaio()
    sink = make_sink(connector_context, enaio.url, api, **DEFAULT_RECORD_SETTINGS)
    app = await make_application(blobs, external_id="tray")
    delivery = await sink.deliver(default_record(app), delivery_context(app, blobs))
    documents = enaio.of_application(app.id)
    assert [d.in_tray for d in documents] == [True, True, True]
    assert [d.type.internal for d in documents] == ["Originalantrag", "Anlage", "Anlage"]
    assert documents[1].value("Titel") == "personalausweis.pdf"
    assert delivery.correlations == {"documents": ",".join(str(d.id) for d in documents)}
    assert delivery.reference == str(documents[0].id) and delivery.file_number is None


@per_api
async def test_check_verifies_credentials_and_object_types(
    api: str, start_enaio: StartEnaio, connector_context: ConnectorContext
) -> None:
    enaio = await start_enaio()
    types = ["Personenakte", "Vorgang", "262146"]
    good = await make_sink(connector_context, enaio.url, api, object_types=types).check()
    assert good.ok, good.message
    assert good.details["user"] == USER and "simulator" in good.details["server_version"]

    wrong = await make_sink(connector_context, enaio.url, api, password="wrong", object_types=types).check()
    assert not wrong.ok and "(401)" in wrong.message

    unknown = await make_sink(connector_context, enaio.url, api, object_types=[*types, "Bauakte2"]).check()
    assert not unknown.ok and unknown.message.endswith("object type(s) Bauakte2")

    gone = await make_sink(connector_context, f"http://127.0.0.1:{closed_loopback_port()}", api).check()
    assert not gone.ok and "connection" in gone.message


@per_api
async def test_session_cookie_authentication(
    api: str, start_enaio: StartEnaio, connector_context: ConnectorContext, blobs: BlobStore
) -> None:
    enaio = await start_enaio()
    sink = make_sink(connector_context, enaio.url, api, auth="session")
    first = await make_application(blobs, external_id="session-1", form=PERSON)
    await sink.deliver(await person_record(first, blobs), delivery_context(first, blobs))
    # One login with Basic; everything else rode on the session cookie.
    requests = sum(enaio.state.requests.values())
    assert enaio.state.auth["basic"] == 1 and enaio.state.auth["session"] == requests - 1 >= 4
    assert enaio.state.auth["refused"] == 0 and sink.http.logins == 1

    enaio.state.end_sessions()  # the session times out on the server
    second = await make_application(blobs, external_id="session-2", form={**PERSON, "vorname": "Eva"})
    await sink.deliver(await person_record(second, blobs), delivery_context(second, blobs))
    assert sink.http.logins == 2 and enaio.state.auth["refused"] == 1  # refused once, logged in again
    assert enaio.results(second.id) == 1

    refused = make_sink(connector_context, enaio.url, api, auth="session", password="wrong")
    with pytest.raises(Permanent, match=r"login: enaio refused user 'aktenhub' \(401\)"):
        await refused.deliver(await person_record(second, blobs), delivery_context(second, blobs))
    assert (await sink.diagnostics())["session"] == {"open": True, "logins": 2}


@per_api
async def test_configuration_is_validated_and_the_password_never_shown(
    api: str, connector_context: ConnectorContext
) -> None:
    with pytest.raises(ValidationError, match="expected an http"):
        make_sink(connector_context, "ftp://enaio.kreis.example", api)
    with pytest.raises(ValidationError, match="give the server's root"):
        make_sink(connector_context, "https://enaio.kreis.example/osrest/api", api)
    with pytest.raises(ValidationError, match="api"):
        make_sink(connector_context, "https://enaio.kreis.example", "soap")
    with pytest.raises(ValidationError, match="object_types"):
        make_sink(connector_context, "https://enaio.kreis.example", api, object_types=["Akte; DROP"])
    sink = make_sink(connector_context, "https://enaio.kreis.example/", api)
    assert sink.config.base_url == "https://enaio.kreis.example"
    assert PASSWORD not in repr(await sink.diagnostics())


def test_plugin_offers_the_sink_and_the_simulator() -> None:
    assert list(plugin.aktenhub_connector_types()) == [EnaioSink]
    (simulator,) = plugin.aktenhub_simulators()
    assert simulator.name == "enaio"
    assert STATE in simulator.make_app(fail_next="2")


@per_api
async def test_end_to_end_through_the_hub(api: str, hub_factory: Any, start_enaio: StartEnaio) -> None:
    enaio = await start_enaio(fail_next=2)  # the core retries past two 503 answers
    connectors = {
        "json": {"type": "test-json"},
        "dms": {
            "type": "enaio",
            "api": api,
            "base_url": enaio.url,
            "username": USER,
            "password": "${ENAIO_PASSWORD}",
            "timeout_seconds": 5,
            "retry": {"max_attempts": 5, "initial_seconds": 0.05, "max_seconds": 0.1, "jitter_seconds": 0},
            **DEFAULT_RECORD_SETTINGS,
        },
    }
    routes = [{"name": "to-enaio", "from": "json", "to": ["dms"]}]
    running = await hub_factory(connectors, routes, env={"ENAIO_PASSWORD": PASSWORD})
    status, body = await running.post("/intake/json/jagdschein", json={"id": "e2e-1", "form": {"a": "b"}})
    assert status == 202, body
    application_id = body["application_id"]
    assert await running.wait_for_state(application_id) == ApplicationState.COMPLETED

    (original,) = enaio.of_application(application_id)
    assert original.type.internal == "Originalantrag" and original.in_tray
    stored = await running.journal.get_application(application_id)
    assert stored.correlations["dms.documents"] == str(original.id)
    assert stored.correlations["dms"] == str(original.id)
    # The successful attempt's progress was recorded with the delivery's completion.
    (delivery,) = [t for t in await running.journal.tasks(application_id) if t.step == "deliver"]
    assert delivery.checkpoints["documents"] == {"0": str(original.id)}


@per_api
async def test_akte_not_found_tray_files_into_the_tray_and_opens_no_akte(
    api: str, start_enaio: StartEnaio, connector_context: ConnectorContext, blobs: BlobStore
) -> None:
    enaio = await start_enaio()
    sink = make_sink(connector_context, enaio.url, api, akte_not_found="tray")
    app = await make_application(blobs, external_id="scanned-post", form=PERSON)
    record = (await person_record(app, blobs)).model_copy(update={"vorgang": None})

    delivery = await sink.deliver(record, delivery_context(app, blobs))
    again = await sink.deliver(record, delivery_context(app, blobs))  # a retry files nothing twice

    assert enaio.of_type("Personenakte") == []
    documents = enaio.of_application(app.id)
    assert len(documents) == 4 and all(d.in_tray for d in documents)
    assert (
        delivery.note
        == "in den Eingangskorb: keine Personenakte zu Geburtsdatum, Leistung, Nachname, Vorname gefunden"
    )
    assert delivery.details["akte_not_found"] is True and "akte" not in delivery.correlations
    assert again.duplicate and again.correlations == delivery.correlations


@per_api
async def test_akte_not_found_tray_files_into_the_akte_that_exists(
    api: str, start_enaio: StartEnaio, connector_context: ConnectorContext, blobs: BlobStore
) -> None:
    enaio = await start_enaio()
    opener = make_sink(connector_context, enaio.url, api)
    first = await make_application(blobs, external_id="application", form=PERSON)
    await opener.deliver(await person_record(first, blobs), delivery_context(first, blobs))
    [akte] = enaio.of_type("Personenakte")

    sink = make_sink(connector_context, enaio.url, api, akte_not_found="tray")
    post = await make_application(blobs, external_id="scanned-post", form=PERSON)
    delivery = await sink.deliver(
        await person_record(post, blobs, vorgang=False), delivery_context(post, blobs)
    )

    assert delivery.correlations["akte"] == str(akte.id) and delivery.note is None
    assert all(d.parent_id == akte.id and not d.in_tray for d in enaio.of_application(post.id))


async def test_akte_not_found_refuse_is_permanent_and_creates_nothing(
    start_enaio: StartEnaio, connector_context: ConnectorContext, blobs: BlobStore
) -> None:
    enaio = await start_enaio()
    sink = make_sink(connector_context, enaio.url, akte_not_found="refuse")
    app = await make_application(blobs, external_id="refused", form=PERSON)
    with pytest.raises(Permanent, match="finds no Akte"):
        await sink.deliver(await person_record(app, blobs), delivery_context(app, blobs))
    assert enaio.state.objects == {}
