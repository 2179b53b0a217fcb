"""The xoev transport's `forward: original`: the message as it came over XTA, sent on unchanged."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from hub_fachverfahren.xoev import XoevSink
from hub_xta import XtaSource
from hub_xta.simulator import enqueue
from importfolder_helpers import write_template
from pydantic import ValidationError
from xoev_helpers import FV, HUB, INFORMATION, NS, SCHEMA, TEMPLATE, Xta, make_config, sent_to_fv

from hub import Application, ConnectorContext, Intake, IntakeOutcome, OriginalSubmission, Permanent
from hub.blobs import BlobStore
from hub.mapping import default_record
from hub.testing import make_application
from hub.testing.contracts import delivery_context

PORTAL = "vbe:ozg-portal"
PORTAL_SERVICE = "urn:xoev-de:test:service:ozg-portal"
SCENARIO_LIST = "urn:de:dataport:codeliste:business.scenario"
# A message as another system wrote it: its own ProzessID, XML declaration and line ends kept as they are.
ORIGINAL = (
    TEMPLATE.replace("{{ process_id }}", "0f6a7c1e-2b1a-4c55-9d3a-6f0e2f1c9b11")
    .replace('{{ record.service }}: {{ application.form.nachname|default("") }}', "Antrag Schön")
    .replace('<?xml version="1.0" encoding="UTF-8"?>', "<?xml version='1.0' encoding='UTF-8'?>")
    .replace("\n", "\r\n")
    .encode()
)
FILES = [
    ("Pass Kopie.pdf", b"%PDF-1.7 pass\n", "application/pdf"),
    ("foto.jpg", b"\xff\xd8\xff foto", "image/jpeg"),
]


def forward_sink(context: ConnectorContext, tmp_path: Path, url: str, **forward: Any) -> XoevSink:
    settings = make_config(url, write_template(tmp_path, "unused.xml.j2", ""))
    settings["message"] = {"forward": "original", **forward}
    config = XoevSink.Config.model_validate(settings)
    return XoevSink(config, context)  # type: ignore[arg-type]


async def taken_from_mailbox(
    context: ConnectorContext, xta: Xta, came: list[tuple[str | None, bytes, str]] | None = None
) -> Application:
    """A message the portal sent to the hub, taken in by the generic XTA source (as a real intake would);
    `came`: its attachments as they arrived (file name, content, media type)."""
    came = [] if came is None else came
    context = dataclasses.replace(context, name="xta-in")
    await enqueue(
        context.http,
        xta.url,
        HUB,
        metadata={
            "author": {"identifier": PORTAL, "type": "xoev"},
            "service": PORTAL_SERVICE,
            "business_scenario": "XOEV_DATA",
            "business_scenario_list_uri": SCENARIO_LIST,
            "business_scenario_list_version": "1",
            "message_type": INFORMATION,
            "payload_schema": NS,
        },
        message=ORIGINAL,
        attachments=FILES,
    )
    (arrived,) = xta.state.mailbox(HUB).values()
    came.extend((a.filename, a.path.read_bytes(), a.content_type) for a in arrived.attachments)
    config = XtaSource.Config.model_validate(
        {"type": "xta", "xta": {"url": xta.url, "account": {"identifier": HUB}, "timeout_seconds": 5}}
    )
    taken: list[Application] = []

    async def intake(submission: Intake) -> IntakeOutcome:
        taken.append(submission.application)
        return IntakeOutcome(submission.application.id, duplicate=False)

    assert await XtaSource(config, context).poll(intake) == 1
    return taken[0]


async def test_the_original_and_its_attachments_go_on_unchanged_once(
    connector_context: ConnectorContext, schema_dir: Path, xta: Xta, tmp_path: Path, blobs: BlobStore
) -> None:
    context = dataclasses.replace(connector_context, schemas=schema_dir)
    came: list[tuple[str | None, bytes, str]] = []
    app = await taken_from_mailbox(context, xta, came)
    sink = forward_sink(context, tmp_path, xta.url, schema=SCHEMA)
    store: dict[str, Any] = {}

    first = await sink.deliver(default_record(app), delivery_context(app, blobs, store))
    again = await sink.deliver(default_record(app), delivery_context(app, blobs, store))

    assert not first.duplicate and again.duplicate and again.reference == first.reference
    (message,) = sent_to_fv(xta)
    assert message.message.path.read_bytes() == ORIGINAL
    assert [(a.filename, a.path.read_bytes(), a.content_type) for a in message.attachments] == came
    assert [(content, media) for _, content, media in came] == [(c, m) for _, c, m in FILES]
    meta = message.metadata
    # under the service and types it came with, from the hub's account, answerable by the ProzessRef
    assert (meta.service, meta.business_scenario, meta.business_scenario_list_uri) == (
        PORTAL_SERVICE,
        "XOEV_DATA",
        SCENARIO_LIST,
    )
    assert (meta.message_type, meta.payload_schema) == (INFORMATION, NS)
    assert (meta.author.identifier, meta.reader.identifier) == (HUB, FV)
    assert meta.process_requester == first.reference
    assert first.details == {"xta_message_id": meta.message_id, "message_type": INFORMATION}
    # answers may name the message by its own id: kept as the correlation <target>.original
    assert first.correlations == again.correlations == {"original": app.external_id}


async def test_a_retry_after_a_lost_confirmation_forwards_nothing_twice(
    connector_context: ConnectorContext, schema_dir: Path, xta: Xta, tmp_path: Path, blobs: BlobStore
) -> None:
    context = dataclasses.replace(connector_context, schemas=schema_dir)
    app = await taken_from_mailbox(context, xta)
    sink = forward_sink(context, tmp_path, xta.url)
    store: dict[str, Any] = {}
    await sink.deliver(default_record(app), delivery_context(app, blobs, store))
    store["xoev"]["sent"] = False  # the crash came between the send and the checkpoint

    again = await sink.deliver(default_record(app), delivery_context(app, blobs, store))

    assert again.duplicate
    assert len(sent_to_fv(xta)) == 1


async def with_original(blobs: BlobStore, content: bytes, **original: Any) -> Application:
    """An application whose source recorded no XTA labels (e.g. a file drop), with this original."""
    app = await make_application(blobs, files={})
    info = await blobs.write_bytes(content)
    return app.model_copy(
        update={
            "original": OriginalSubmission(
                media_type="application/xml", blob=info.ref, size=info.size, sha256=info.sha256, **original
            )
        }
    )


async def test_configured_labels_win_and_the_root_element_names_the_type(
    connector_context: ConnectorContext, schema_dir: Path, xta: Xta, tmp_path: Path, blobs: BlobStore
) -> None:
    context = dataclasses.replace(connector_context, schemas=schema_dir)
    app = await with_original(blobs, ORIGINAL)
    sink = forward_sink(
        context, tmp_path, xta.url, service="urn:advis:eingang", business_scenario="ADVIS_DATA"
    )

    await sink.deliver(default_record(app), delivery_context(app, blobs))

    (message,) = sent_to_fv(xta)
    meta = message.metadata
    assert (meta.service, meta.business_scenario, meta.business_scenario_list_uri) == (
        "urn:advis:eingang",
        "ADVIS_DATA",
        None,
    )
    assert (meta.message_type, meta.payload_schema) == (INFORMATION, NS)
    assert message.message.path.read_bytes() == ORIGINAL and message.attachments == []


@pytest.mark.parametrize(
    ("content", "original", "forward", "refusal"),
    [
        (ORIGINAL, {}, {}, "no known XTA service, business_scenario: set `service`, `business_scenario`"),
        (ORIGINAL, {"redacted": True}, {"service": "urn:s", "business_scenario": "S"}, "redacted"),
        (b"<x", {}, {"service": "urn:s", "business_scenario": "S"}, "not well-formed"),
        (
            f'<xdomea:{INFORMATION} xmlns:xdomea="{NS}"/>'.encode(),
            {},
            {"service": "urn:s", "business_scenario": "S", "schema": SCHEMA},
            r"does not meet xdomea/3\.0\.0",
        ),
    ],
)
async def test_what_cannot_be_forwarded_as_it_came_is_permanent_and_not_sent(
    connector_context: ConnectorContext,
    schema_dir: Path,
    xta: Xta,
    tmp_path: Path,
    blobs: BlobStore,
    content: bytes,
    original: dict[str, Any],
    forward: dict[str, Any],
    refusal: str,
) -> None:
    context = dataclasses.replace(connector_context, schemas=schema_dir)
    app = await with_original(blobs, content, **original)
    sink = forward_sink(context, tmp_path, xta.url, **forward)
    store: dict[str, Any] = {}

    with pytest.raises(Permanent, match=refusal):
        await sink.deliver(default_record(app), delivery_context(app, blobs, store))
    assert xta.state.sent == [] and store == {}  # no message id reserved either


def test_forwarding_takes_no_template(tmp_path: Path) -> None:
    settings = make_config("http://127.0.0.1:9", write_template(tmp_path, "t.xml.j2", ""))
    settings["message"] = {"forward": "original", "template": "t.xml.j2"}
    with pytest.raises(ValidationError, match="template"):
        XoevSink.Config.model_validate(settings)
    settings["message"] = {"forward": "copy"}
    with pytest.raises(ValidationError, match="'original'"):
        XoevSink.Config.model_validate(settings)
