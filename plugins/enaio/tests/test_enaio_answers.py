"""A Fachverfahren's answer in enaio: the Akte's index data updated, the decision filed, each once."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from enaio_helpers import APIS, PASSWORD, PERSON, USER, Enaio, StartEnaio, make_sink, person_record
from hub_enaio.client import basic_authorization
from hub_enaio.sink import EnaioSink

from hub import (
    AnswerRecord,
    AnswerStatus,
    Application,
    ConnectorContext,
    Document,
    DocumentContent,
    Permanent,
    Retryable,
)
from hub.blobs import BlobStore
from hub.testing import make_application
from hub.testing.contracts import delivery_context

per_api = pytest.mark.parametrize("api", APIS)
AUTH = {"Authorization": basic_authorization(USER, PASSWORD)}
DECISION = b"%PDF-1.4 Bescheid UA-2026-17\n"
SETTINGS = {"document_types": {"decision": "Bescheid"}}


async def filed(
    enaio: Enaio, sink: EnaioSink, blobs: BlobStore, *, vorgang: bool = True
) -> tuple[Application, AnswerRecord]:
    """An application delivered into enaio (correlations recorded as the core does), and an answer."""
    app = await make_application(blobs, external_id="answered", form=PERSON)
    record = await person_record(app, blobs, vorgang=vorgang)
    delivery = await sink.deliver(record, delivery_context(app, blobs))
    correlations = {f"{sink.name}.{k}": v for k, v in delivery.correlations.items()}
    app = app.model_copy(update={"correlations": correlations, "file_number": delivery.file_number})
    decision = await blobs.write_bytes(DECISION)
    answer = AnswerRecord(
        application_id=app.id,
        answer_id="fv-answer-7",
        source="umwelt-fv",
        status=AnswerStatus.DECIDED,
        case_number="UA-2026-17",
        file_number=app.file_number,
        akte=record.akte,
        vorgang=record.vorgang,
        akte_fields={"FVAktenzeichen": "UA-2026-17", "Bearbeitungsstand": "Bescheid erlassen"},
        documents=[
            Document(
                type="decision",
                name="Bescheid.pdf",
                content=DocumentContent.ATTACHMENT,
                blob=decision.ref,
                media_type="application/pdf",
                fields={"Titel": "Bescheid", "Datum": "2026-03-02"},
            )
        ],
    )
    return app, answer


@per_api
async def test_answer_updates_the_akte_and_files_the_decision_once(
    api: str, start_enaio: StartEnaio, connector_context: ConnectorContext, blobs: BlobStore
) -> None:
    enaio = await start_enaio()
    sink = make_sink(connector_context, enaio.url, api, **SETTINGS)
    app, answer = await filed(enaio, sink, blobs)
    (akte,) = enaio.of_type("Personenakte")
    before = dict(akte.fields)
    store: dict[str, Any] = {}

    delivery = await sink.record_answer(answer, delivery_context(app, blobs, store))

    assert akte.fields == {**before, "FVAktenzeichen": "UA-2026-17", "Bearbeitungsstand": "Bescheid erlassen"}
    assert akte.value("Aktenzeichen") == "32-2025-00001"  # the Aktenzeichen stays
    (vorgang,) = enaio.of_type("Vorgang")
    (bescheid,) = enaio.of_type("Bescheid")
    assert bescheid.parent_id == vorgang.id and bescheid.content is not None
    assert bescheid.content.file_name == "Bescheid.pdf"
    sent = answer.documents[0].blob
    assert sent is not None and await enaio.content_sha256(api, str(bescheid.id)) == sent.removeprefix(
        "sha256:"
    )
    assert bescheid.value("AktenhubID").startswith(f"{app.id}/a-")
    assert delivery.reference == str(akte.id) and not delivery.duplicate
    assert delivery.correlations == {"documents": str(bescheid.id)}
    assert delivery.file_number is None  # an answer never sets the application's Aktenzeichen
    assert (enaio.state.updated, akte.updates) == (1, 1)

    # The same task again (a retry after the step's end was lost): nothing is sent twice.
    inserts = enaio.state.inserts
    again = await sink.record_answer(answer, delivery_context(app, blobs, store))
    assert again.duplicate and (enaio.state.inserts, enaio.state.updated) == (inserts, 1)
    # Its checkpoints lost too: the lookups find the decision; the update sets the same values.
    third = await sink.record_answer(answer, delivery_context(app, blobs))
    assert len(enaio.of_type("Bescheid")) == 1 and enaio.state.inserts == inserts
    assert akte.value("FVAktenzeichen") == "UA-2026-17"
    assert third.correlations == delivery.correlations


@per_api
@pytest.mark.parametrize("dropped", [1, 2])
async def test_a_request_whose_answer_is_lost_is_not_repeated_into_a_second_object(
    api: str, dropped: int, start_enaio: StartEnaio, connector_context: ConnectorContext, blobs: BlobStore
) -> None:
    enaio = await start_enaio()
    sink = make_sink(connector_context, enaio.url, api, **SETTINGS)
    app, answer = await filed(enaio, sink, blobs)
    store: dict[str, Any] = {}
    # enaio stores, then the connection drops: the DMS Service's update and the decision's insert
    # go through the same endpoint (1: the update, 2: the insert too); OSRest drops the insert.
    await enaio.set_faults(drop_after_insert=dropped)

    attempts = 0
    while True:
        attempts += 1
        try:
            await sink.record_answer(answer, delivery_context(app, blobs, store))
            break
        except Retryable:
            assert attempts < 4

    assert attempts == (dropped + 1 if api == "dms" else 2)
    (bescheid,) = enaio.of_type("Bescheid")
    (akte,) = enaio.of_type("Personenakte")
    assert akte.value("FVAktenzeichen") == "UA-2026-17"
    assert bescheid.value("AktenhubID").startswith(f"{app.id}/a-")


@per_api
async def test_akte_found_as_mapped_when_no_delivery_recorded_it(
    api: str, start_enaio: StartEnaio, connector_context: ConnectorContext, blobs: BlobStore
) -> None:
    enaio = await start_enaio()
    sink = make_sink(connector_context, enaio.url, api, **SETTINGS)
    app, answer = await filed(enaio, sink, blobs, vorgang=False)
    app = app.model_copy(update={"correlations": {}})  # e.g. filed by another connector name

    await sink.record_answer(answer.model_copy(update={"vorgang": None}), delivery_context(app, blobs))

    (akte,) = enaio.of_type("Personenakte")
    assert akte.value("FVAktenzeichen") == "UA-2026-17"
    (bescheid,) = enaio.of_type("Bescheid")
    assert bescheid.parent_id == akte.id  # no Vorgang: into the Akte


async def test_answer_refused_before_anything_changes(
    start_enaio: StartEnaio, connector_context: ConnectorContext, blobs: BlobStore
) -> None:
    enaio = await start_enaio()
    sink = make_sink(connector_context, enaio.url, "dms", **SETTINGS)
    app, answer = await filed(enaio, sink, blobs)
    inserts = enaio.state.inserts

    overwrite = answer.model_copy(update={"akte_fields": {"Aktenzeichen": "UA-2026-17"}})
    with pytest.raises(Permanent, match="Aktenzeichen"):
        await sink.record_answer(overwrite, delivery_context(app, blobs))
    unknown = app.model_copy(update={"correlations": {}})
    with pytest.raises(Permanent, match="Akte is not known"):
        await sink.record_answer(answer.model_copy(update={"akte": None}), delivery_context(unknown, blobs))
    bad_field = answer.model_copy(update={"akte_fields": {"Religion": "x"}})
    with pytest.raises(Permanent, match="no index field 'Religion'"):
        await sink.record_answer(bad_field, delivery_context(app, blobs))

    (akte,) = enaio.of_type("Personenakte")
    assert (enaio.state.inserts, enaio.state.updated, akte.updates) == (inserts, 0, 0)
    assert not enaio.of_type("Bescheid")


# -- the simulator's updates -------------------------------------------------------------------------


async def _json(response: aiohttp.ClientResponse) -> Any:
    text = await response.text()
    return await response.json() if text and response.content_type == "application/json" else text


async def dms_update(
    http: aiohttp.ClientSession, enaio: Enaio, properties: dict[str, Any]
) -> tuple[int, Any]:
    body = {"objects": [{"properties": {k: {"value": v} for k, v in properties.items()}}]}
    async with http.post(enaio.url + "/api/dms/objects", json=body, headers=AUTH) as response:
        return response.status, await _json(response)


async def osrest_update(
    http: aiohttp.ClientSession, enaio: Enaio, object_id: str, data: dict[str, Any]
) -> tuple[int, Any]:
    writer = aiohttp.MultipartWriter("form-data")
    writer.append_json(data).set_content_disposition("form-data", name="data")
    url = f"{enaio.url}/osrest/api/documents/update/{object_id}"
    async with http.post(url, data=writer, headers=AUTH) as response:
        return response.status, await _json(response)


async def test_simulator_updates_index_data_strictly_over_the_dms_service(
    start_enaio: StartEnaio, connector_context: ConnectorContext, blobs: BlobStore
) -> None:
    enaio = await start_enaio()
    sink = make_sink(connector_context, enaio.url, "dms", **SETTINGS)
    await filed(enaio, sink, blobs)
    (akte,) = enaio.of_type("Personenakte")
    akte_id = str(akte.id)
    before = dict(akte.fields)
    async with aiohttp.ClientSession() as http:
        refused = [
            await dms_update(http, enaio, {"system:objectId": "999999", "FVAktenzeichen": "x"}),
            await dms_update(http, enaio, {"system:objectId": akte_id, "Nachname": ""}),  # mandatory
            await dms_update(http, enaio, {"system:objectId": akte_id, "Religion": "x"}),
            await dms_update(
                http, enaio, {"system:objectId": akte_id, "system:objectTypeId": "Vorgang", "Betreff": "x"}
            ),
            await dms_update(http, enaio, {"system:objectId": akte_id, "FVAktenzeichen": "x" * 51}),
        ]
        assert [status for status, _ in refused] == [422] * 5
        assert "999999 does not exist" in refused[0][1]["message"]
        assert "mandatory index field 'Nachname'" in refused[1][1]["message"]
        assert akte.fields == before and akte.updates == 0

        status, answer = await dms_update(
            http,
            enaio,
            {"system:objectId": akte_id, "system:objectTypeId": "Personenakte", "FVAktenzeichen": "UA-1"},
        )
        assert status == 200
        assert answer["objects"][0]["properties"]["system:objectId"] == {"value": akte_id}
        assert akte.fields == {**before, "FVAktenzeichen": "UA-1"}  # the other fields are kept

        query = {
            "statement": "SELECT system:objectId, FVAktenzeichen, system:lastModifiedBy FROM Personenakte "
            "WHERE FVAktenzeichen=@fv",
            "parameters": {"fv": "ua-1"},
        }
        async with http.post(
            enaio.url + "/api/dms/objects/search", json={"query": query}, headers=AUTH
        ) as response:
            found = await response.json()
        assert found["totalNumItems"] == 1
        assert found["objects"][0]["properties"]["FVAktenzeichen"] == {"value": "UA-1"}
        assert found["objects"][0]["properties"]["system:lastModifiedBy"] == {"value": USER}
        async with http.get(enaio.url + "/_sim/objects?FVAktenzeichen=UA-1") as response:
            (listed,) = (await response.json())["objects"]
        assert listed["id"] == akte_id and listed["updates"] == 1 and listed["modifiedBy"] == USER
        async with http.get(enaio.url + "/_sim/stats") as response:
            assert (await response.json())["updates"] == 1


async def test_simulator_updates_index_data_strictly_over_osrest(
    start_enaio: StartEnaio, connector_context: ConnectorContext, blobs: BlobStore
) -> None:
    enaio = await start_enaio()
    sink = make_sink(connector_context, enaio.url, "osrest", **SETTINGS)
    await filed(enaio, sink, blobs)
    (akte,) = enaio.of_type("Personenakte")
    akte_id = str(akte.id)
    before = dict(akte.fields)

    def data(**fields: str) -> dict[str, Any]:
        return {"osid": akte_id, "fields": {k: {"value": v, "internalName": k} for k, v in fields.items()}}

    async with aiohttp.ClientSession() as http:
        assert (await osrest_update(http, enaio, "999999", data(FVAktenzeichen="x")))[0] == 404
        assert (await osrest_update(http, enaio, akte_id, data(Leistung="")))[0] == 422
        assert (await osrest_update(http, enaio, akte_id, data(Religion="x")))[0] == 422
        assert (await osrest_update(http, enaio, akte_id, {**data(Vorname="x"), "osid": "1"}))[0] == 400
        assert akte.fields == before

        status, _ = await osrest_update(http, enaio, akte_id, data(Bearbeitungsstand="in Bearbeitung"))
        assert status == 200
        assert akte.fields == {**before, "Bearbeitungsstand": "in Bearbeitung"}
        query = {
            "query": {
                "objectTypeId": "Personenakte",
                "fields": {"Bearbeitungsstand": {"value": "in Bearbeitung"}},
            }
        }
        async with http.post(
            enaio.url + "/osrest/api/documents/search", json=query, headers=AUTH
        ) as response:
            (hit,) = await response.json()
        assert str(hit["osid"]) == akte_id
