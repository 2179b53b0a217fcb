"""The importfolder transport: manifest by template or XSLT, atomic folders, result files back."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer
from hub_fachverfahren.importfolder import ImportFolderSink
from hub_fachverfahren.importfolder.simulator import STATE, make_app
from importfolder_helpers import (
    XML_MANIFEST,
    ReturnChannel,
    answering_context,
    delivered_folders,
    make_sink,
    simulator,
    write_template,
)
from lxml import etree
from pydantic import ValidationError

from hub import AnswerStatus, Application, ConnectorContext, Permanent, Sink
from hub.blobs import BlobStore
from hub.mapping import default_record
from hub.testing import Fault, SinkContract, make_application
from hub.testing.contracts import AnsweringSinkContract, delivery_context
from hub.testing.harness import RunningHub


class TestImportFolderContract(SinkContract):
    @pytest.fixture(autouse=True)
    def _environment(self, tmp_path: Path, connector_context: ConnectorContext) -> None:
        self.tmp_path = tmp_path
        self.context = connector_context

    @pytest_asyncio.fixture
    async def sink(self, tmp_path: Path, connector_context: ConnectorContext) -> ImportFolderSink:
        sink = make_sink(connector_context, tmp_path)
        await sink.start()
        return sink

    async def results(self, sink: Sink, application: Application) -> int:
        assert isinstance(sink, ImportFolderSink)
        return len(delivered_folders(sink.directory, application.id))

    async def faulty_sink(self, fault: Fault) -> Sink | None:
        if fault is Fault.VALIDATION:
            # A manifest template that cannot render this record: permanent, however often tried.
            broken = write_template(self.tmp_path, "broken.xml.j2", "<m>{{ record.nothing.here }}</m>")
            return make_sink(self.context, self.tmp_path, manifest={"template": str(broken)})
        return None  # a local folder has no timeouts or 5xx answers


@pytest.fixture
def channel() -> ReturnChannel:
    return ReturnChannel()


@pytest.fixture
def context(connector_context: ConnectorContext, channel: ReturnChannel) -> ConnectorContext:
    return answering_context(connector_context, channel)


def test_the_issue_configuration_works_as_written(tmp_path: Path) -> None:
    template = write_template(tmp_path, "k3-manifest.xml.j2", "<m>{{ folder }}</m>")
    config = ImportFolderSink.Config.model_validate(
        {
            "type": "importfolder",
            "path": "/srv/k3/import",
            "answers": "/srv/k3/export",
            "manifest": {"template": str(template)},
        }
    )
    assert config.manifest.file_name == "manifest.xml"
    assert config.answers == Path("/srv/k3/export")


@pytest.mark.parametrize(
    ("manifest", "problem"),
    [
        ({}, "exactly one of"),
        ({"template": "a.j2", "xslt": "b.xsl"}, "exactly one of"),
        ({"template": "/nonexistent/x.xml.j2"}, "cannot read manifest template"),
    ],
)
def test_manifest_settings_are_checked(tmp_path: Path, manifest: dict[str, str], problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        ImportFolderSink.Config.model_validate(
            {"type": "importfolder", "path": str(tmp_path), "manifest": manifest}
        )


async def test_xml_manifest_lists_the_files_and_escapes_applicant_data(
    context: ConnectorContext, tmp_path: Path, blobs: BlobStore
) -> None:
    sink = make_sink(context, tmp_path)
    app = await make_application(blobs, form={"vorname": "<Jürgen & Co>", "nachname": "Groß", "ort": "X"})

    delivery = await sink.deliver(default_record(app), delivery_context(app, blobs))

    folder = sink.directory / delivery.reference
    root = etree.fromstring((folder / "manifest.xml").read_bytes())
    assert root.findtext("reference") == delivery.reference == app.id
    assert root.findtext("applicant") == "<Jürgen & Co> Groß"  # escaped in the file, intact when read
    names = [f.get("name") for f in root.iter("file")]
    assert sorted([*names, "manifest.xml", ".aktenhub.json"]) == sorted(p.name for p in folder.iterdir())
    for f in root.iter("file"):
        assert f.get("sha256") and len((folder / f.get("name", "")).read_bytes()) > 0
    assert [p.name for p in sink.directory.iterdir()] == [app.id]  # no temporary folder left


async def test_json_and_csv_manifests(context: ConnectorContext, tmp_path: Path, blobs: BlobStore) -> None:
    app = await make_application(blobs)
    json_template = write_template(
        tmp_path,
        "m.json.j2",
        '{"ref": {{ folder|tojson }}, "files": {{ files|map(attribute="name")|list|tojson }}}',
    )
    sink = make_sink(
        context, tmp_path, path=str(tmp_path / "json"), manifest={"template": str(json_template)}
    )
    delivery = await sink.deliver(default_record(app), delivery_context(app, blobs))
    manifest = json.loads((sink.directory / delivery.reference / "manifest.json").read_bytes())
    assert manifest["ref"] == app.id and len(manifest["files"]) == len(default_record(app).documents)

    csv_template = write_template(
        tmp_path, "m.csv.j2", "ref;file\n{% for f in files %}{{ folder }};{{ f.name }}\n{% endfor %}"
    )
    sink = make_sink(
        context,
        tmp_path,
        path=str(tmp_path / "csv"),
        manifest={"template": str(csv_template), "name": "liste.csv"},
    )
    delivery = await sink.deliver(default_record(app), delivery_context(app, blobs))
    lines = (sink.directory / delivery.reference / "liste.csv").read_text().splitlines()
    assert lines[0] == "ref;file" and len(lines) == 1 + len(default_record(app).documents)


async def test_xslt_manifest_over_the_canonical_xml(
    context: ConnectorContext, tmp_path: Path, blobs: BlobStore
) -> None:
    stylesheet = write_template(
        tmp_path,
        "k3.xsl",
        """<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:template match="/aktenhub-import">
    <Antrag Referenz="{folder}" Leistung="{record/service}">
      <xsl:for-each select="files/item"><Datei><xsl:value-of select="name"/></Datei></xsl:for-each>
    </Antrag>
  </xsl:template>
</xsl:stylesheet>""",
    )
    sink = make_sink(context, tmp_path, manifest={"xslt": str(stylesheet), "name": "antrag.xml"})
    app = await make_application(blobs)

    delivery = await sink.deliver(default_record(app), delivery_context(app, blobs))

    root = etree.fromstring((sink.directory / delivery.reference / "antrag.xml").read_bytes())
    assert root.tag == "Antrag" and root.get("Referenz") == app.id and root.get("Leistung") == app.service
    assert len(root.findall("Datei")) == len(default_record(app).documents)


async def test_a_stylesheet_reading_files_is_refused(
    context: ConnectorContext, tmp_path: Path, blobs: BlobStore
) -> None:
    secret = tmp_path / "secret.xml"
    secret.write_text("<s>geheim</s>")
    stylesheet = write_template(
        tmp_path,
        "evil.xsl",
        f"""<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:template match="/"><m><xsl:copy-of select="document('{secret}')"/></m></xsl:template>
</xsl:stylesheet>""",
    )
    sink = make_sink(context, tmp_path, manifest={"xslt": str(stylesheet)})
    app = await make_application(blobs)

    with pytest.raises(Permanent, match="stylesheet"):
        await sink.deliver(default_record(app), delivery_context(app, blobs))
    assert list(sink.directory.iterdir()) == []


async def test_manifest_that_is_not_well_formed_is_permanent_and_leaves_nothing(
    context: ConnectorContext, tmp_path: Path, blobs: BlobStore
) -> None:
    broken = write_template(tmp_path, "broken.xml.j2", "<m><unclosed></m>")
    sink = make_sink(context, tmp_path, manifest={"template": str(broken)})
    app = await make_application(blobs)

    with pytest.raises(Permanent, match="not valid XML"):
        await sink.deliver(default_record(app), delivery_context(app, blobs))
    assert list(sink.directory.iterdir()) == []


async def test_round_trip_with_the_simulated_fachverfahren(
    context: ConnectorContext, channel: ReturnChannel, tmp_path: Path, blobs: BlobStore
) -> None:
    sink = make_sink(context, tmp_path)
    fv = simulator(tmp_path)
    app = await make_application(blobs)
    delivery = await sink.deliver(default_record(app), delivery_context(app, blobs))
    channel.known[delivery.reference] = app.id

    assert fv.take_imports() == {"imported": [app.id], "refused": []}
    assert await sink.poll_answers() == 1
    (accepted,) = channel.answers.values()
    case_number = fv.cases[app.id].case_number
    assert (accepted.reference, accepted.status, accepted.case_number) == (
        app.id,
        AnswerStatus.ACCEPTED,
        case_number,
    )
    assert accepted.status_text == "eingegangen"

    fv.decide(app.id, "beschieden", "Bitte Gebühr überweisen", pdf=True)
    assert await sink.poll_answers() == 1
    decided = next(a for a in channel.answers.values() if a.status is AnswerStatus.DECIDED)
    assert decided.case_number == case_number and decided.message == "Bitte Gebühr überweisen"
    assert decided.decision is not None
    assert (await blobs.read_bytes(decided.decision.blob)).startswith(b"%PDF-1.4")
    assert decided.answer_id.startswith(app.id) and decided.answer_id != accepted.answer_id

    export = tmp_path / "export"
    assert sorted(p.name for p in export.iterdir()) == ["done"]  # every result (and the PDF) moved
    assert len(list((export / "done").iterdir())) == 3
    assert await sink.poll_answers() == 0
    assert channel.calls == 2


@pytest.mark.parametrize("answer_format", ["json", "csv"])
async def test_json_and_csv_result_files(
    context: ConnectorContext, channel: ReturnChannel, tmp_path: Path, blobs: BlobStore, answer_format: str
) -> None:
    sink = make_sink(context, tmp_path)
    fv = simulator(tmp_path, answer_format=answer_format)
    app = await make_application(blobs)
    delivery = await sink.deliver(default_record(app), delivery_context(app, blobs))
    channel.known[delivery.reference] = app.id
    fv.take_imports()
    fv.decide(app.id, "beschieden", None, pdf=True)

    assert await sink.poll_answers() == 2
    statuses = sorted(a.status for a in channel.answers.values())
    assert statuses == sorted([AnswerStatus.ACCEPTED, AnswerStatus.DECIDED])
    assert all(a.case_number == fv.cases[app.id].case_number for a in channel.answers.values())


async def test_a_refused_import_is_a_failed_answer_with_the_error(
    context: ConnectorContext, channel: ReturnChannel, tmp_path: Path, blobs: BlobStore
) -> None:
    # The manifest names no reference where the Fachverfahren expects one.
    template = write_template(tmp_path, "no-ref.xml.j2", "<manifest><ref>{{ folder }}</ref></manifest>")
    sink = make_sink(context, tmp_path, manifest={"template": str(template)})
    fv = simulator(tmp_path)
    app = await make_application(blobs)
    delivery = await sink.deliver(default_record(app), delivery_context(app, blobs))
    channel.known[delivery.reference] = app.id

    assert fv.take_imports() == {"imported": [], "refused": [app.id]}
    assert await sink.poll_answers() == 1
    (failed,) = channel.answers.values()
    assert failed.status is AnswerStatus.FAILED
    assert failed.error == "manifest names no reference" and failed.case_number is None


async def test_an_unreadable_result_goes_to_failed_with_a_reason_once(
    context: ConnectorContext, channel: ReturnChannel, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sink = make_sink(context, tmp_path)
    export = tmp_path / "export"
    export.mkdir()
    (export / "kaputt.xml").write_bytes(b"<result><reference>x</reference>")
    (export / "unbekannt.xml").write_bytes(
        b"<result><reference>nobody</reference><status>eingegangen</status></result>"
    )
    (export / "status.xml").write_bytes(b"<result><reference>x</reference><status>verloren</status></result>")

    assert await sink.poll_answers() == 0
    assert await sink.poll_answers() == 0  # never tried again

    failed = export / "failed"
    assert sorted(p.name for p in failed.iterdir()) == sorted(
        [
            "kaputt.xml",
            "kaputt.xml.reason",
            "unbekannt.xml",
            "unbekannt.xml.reason",
            "status.xml",
            "status.xml.reason",
        ]
    )
    assert "not readable as XML" in (failed / "kaputt.xml.reason").read_text()
    assert "no such application" in (failed / "unbekannt.xml.reason").read_text()
    assert "not in status_map" in (failed / "status.xml.reason").read_text()
    assert channel.calls == 1 and channel.answers == {}
    assert [r.levelname for r in caplog.records if "not taken" in r.getMessage()] == ["WARNING"] * 3


async def test_a_result_stays_until_the_return_channel_took_it(
    context: ConnectorContext, channel: ReturnChannel, tmp_path: Path, blobs: BlobStore
) -> None:
    sink = make_sink(context, tmp_path)
    fv = simulator(tmp_path)
    app = await make_application(blobs)
    delivery = await sink.deliver(default_record(app), delivery_context(app, blobs))
    channel.known[delivery.reference] = app.id
    fv.take_imports()
    channel.fail_next = OSError("journal not writable")

    with pytest.raises(OSError):
        await sink.poll_answers()
    assert [p.suffix for p in (tmp_path / "export").iterdir()] == [".xml"]  # still there

    assert await sink.poll_answers() == 1
    assert len(channel.answers) == 1


async def test_a_result_still_being_written_is_left_for_the_next_poll(
    context: ConnectorContext, channel: ReturnChannel, tmp_path: Path
) -> None:
    sink = make_sink(context, tmp_path, answer_format={"settle_seconds": 60})
    export = tmp_path / "export"
    export.mkdir()
    (export / "neu.xml").write_bytes(b"<result><reference>x</reference>")
    assert await sink.poll_answers() == 0
    assert channel.calls == 0 and [p.name for p in export.iterdir()] == ["neu.xml"]
    old = os.stat(export / "neu.xml").st_mtime - 120
    os.utime(export / "neu.xml", (old, old))
    assert await sink.poll_answers() == 0
    assert (export / "failed" / "neu.xml").exists()


async def test_simulator_control_endpoints(
    tmp_path: Path, context: ConnectorContext, blobs: BlobStore
) -> None:
    sink = make_sink(context, tmp_path)
    app = await make_application(blobs)
    await sink.deliver(default_record(app), delivery_context(app, blobs))
    fv_app = make_app(tmp_path / "import", tmp_path / "export", tmp_path / "fv-work")
    async with TestClient(TestServer(fv_app)) as client:
        taken = await (await client.post("/control/import")).json()
        assert taken == {"imported": [app.id], "refused": []}
        response = await client.post("/control/decide", json={"reference": app.id, "status": "beschieden"})
        assert response.status == 200
        assert (await response.json())["status"] == "beschieden"
        assert (await client.post("/control/decide", json={"reference": "nope"})).status == 404
        cases = await (await client.get("/control/cases")).json()
    assert [c["reference"] for c in cases["cases"]] == [app.id]
    assert fv_app[STATE].cases[app.id].status == "beschieden"
    assert len(list((tmp_path / "export").glob("*.xml"))) == 2
    assert len(list((tmp_path / "export").glob("*.pdf"))) == 1


async def test_an_answer_stored_before_a_crash_is_handed_again_and_recognised(
    context: ConnectorContext,
    channel: ReturnChannel,
    tmp_path: Path,
    blobs: BlobStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sink = make_sink(context, tmp_path)
    fv = simulator(tmp_path)
    app = await make_application(blobs)
    delivery = await sink.deliver(default_record(app), delivery_context(app, blobs))
    channel.known[delivery.reference] = app.id
    fv.take_imports()
    # The hub dies after the answer is stored and before the file is moved to done/.
    monkeypatch.setattr(os, "rename", _dies)
    with pytest.raises(SystemExit):
        await sink.poll_answers()
    monkeypatch.undo()

    assert await sink.poll_answers() == 1

    assert [o.duplicate for o in channel.outcomes] == [False, True]
    assert len(channel.answers) == 1
    assert [p.name for p in (tmp_path / "export").iterdir()] == ["done"]


def _dies(*args: Any) -> None:
    raise SystemExit("killed")


async def test_a_result_naming_a_missing_decision_goes_to_failed(
    context: ConnectorContext, channel: ReturnChannel, tmp_path: Path
) -> None:
    channel.known["app_x"] = "app_x"
    sink = make_sink(context, tmp_path)
    export = tmp_path / "export"
    export.mkdir()
    (export / "r.json").write_text(
        json.dumps({"reference": "app_x", "status": "beschieden", "decision": "B.pdf"})
    )
    outside = tmp_path / "outside.pdf"  # not the answer folder's: never read, never moved
    outside.write_bytes(b"%PDF-1.4 not yours")
    (export / "s.json").write_text(json.dumps({"reference": "app_x", "decision": "../outside.pdf"}))

    assert await sink.poll_answers() == 0

    assert outside.read_bytes() == b"%PDF-1.4 not yours"
    assert sorted(p.name for p in (export / "failed").iterdir()) == [
        "r.json",
        "r.json.reason",
        "s.json",
        "s.json.reason",
    ]

    assert "decision file" in (export / "failed" / "r.json.reason").read_text()
    assert "not a plain file name" in (export / "failed" / "s.json.reason").read_text()
    assert channel.answers == {}


async def test_delivered_through_the_hub_and_taken_by_the_fachverfahren(
    hub_factory: Any, tmp_path: Path
) -> None:
    template = write_template(tmp_path, "k3-manifest.xml.j2", XML_MANIFEST)
    running = await hub_factory(
        connectors={
            "json": {"type": "test-json"},
            "umwelt-fv": {
                "type": "importfolder",
                "path": str(tmp_path / "import"),
                "answers": str(tmp_path / "export"),
                "manifest": {"template": str(template)},
            },
        },
        routes=[{"name": "r", "from": "json", "to": ["umwelt-fv"]}],
    )
    status, body = await running.post(
        "/intake/json/jagdschein", json={"id": "x1", "form": {"vorname": "Erika", "nachname": "Mustermann"}}
    )
    assert status in (200, 201, 202), body
    app_id = body["application_id"]

    assert await running.wait_for_state(app_id) == "completed"

    stored = await running.journal.get_application(app_id)
    assert stored.correlations["umwelt-fv"] == app_id  # the folder: the reference answers come back with
    assert simulator(tmp_path).take_imports() == {"imported": [app_id], "refused": []}
    (result,) = (tmp_path / "export").glob("*.xml")
    assert etree.parse(str(result)).findtext("reference") == app_id


async def test_check_names_a_missing_answer_folder(context: ConnectorContext, tmp_path: Path) -> None:
    sink = make_sink(context, tmp_path)

    missing = await sink.check()
    (tmp_path / "export").mkdir()
    present = await sink.check()

    assert not missing.ok and "answer folder" in missing.message
    assert present.ok


class TestImportFolderAnswers(AnsweringSinkContract):
    """The return channel's contract, through a hub and the answer folder."""

    @pytest_asyncio.fixture
    async def answering_hub(self, hub_factory: Any, tmp_path: Path) -> RunningHub:
        self.export = tmp_path / "export"
        self.export.mkdir()
        template = write_template(tmp_path, "k3-manifest.xml.j2", XML_MANIFEST)
        running: RunningHub = await hub_factory(
            {
                "json": {"type": "test-json"},
                "fv": {
                    "type": "importfolder",
                    "path": str(tmp_path / "import"),
                    "answers": str(self.export),
                    "manifest": {"template": str(template)},
                    "poll_seconds": 0.1,
                    "answer_format": {"settle_seconds": 0},
                },
            },
            [{"name": "r", "from": "json", "to": ["fv"]}],
        )
        return running

    async def submit(self, running: RunningHub, n: int) -> str:
        status, body = await running.post("/intake/json/jagdschein", json={"id": f"folder-{n}", "form": {}})
        assert status == 202, body
        return str(body["application_id"])

    async def give_answer(
        self, running: RunningHub, application_id: str, n: int, status: AnswerStatus
    ) -> None:
        app = await running.journal.get_application(application_id)
        result = {"reference": app.correlations["fv"], "status": status.value, "case_number": f"FV-{n}"}
        temp = self.export / f".answer-{n}.json.part"  # written as a Fachverfahren should: then renamed
        temp.write_text(json.dumps(result))
        os.rename(temp, self.export / f"answer-{n}.json")

    async def acknowledgements(self, running: RunningHub, application_id: str, n: int) -> int:
        done = self.export / "done"
        return len(list(done.glob(f"answer-{n}.*json"))) if done.is_dir() else 0


async def test_a_result_the_hub_refuses_goes_to_failed_not_round_again(
    context: ConnectorContext, channel: ReturnChannel, tmp_path: Path
) -> None:
    sink = make_sink(context, tmp_path)
    export = tmp_path / "export"
    export.mkdir()
    (export / "r.json").write_text(json.dumps({"reference": "app_x", "status": "beschieden"}))
    channel.fail_next = Permanent("the answer's decision is not a PDF")

    assert await sink.poll_answers() == 0
    assert await sink.poll_answers() == 0

    assert "refused: the answer's decision is not a PDF" in (export / "failed" / "r.json.reason").read_text()
    assert channel.calls == 1


async def test_a_profile_with_its_own_result_format(
    context: ConnectorContext, channel: ReturnChannel, tmp_path: Path, blobs: BlobStore
) -> None:
    # A K3-like profile: German names in a namespace-free XML result, read by configured XPaths.
    german = {
        "reference": "Referenz",
        "case_number": "Aktenzeichen",
        "status": "Status",
        "decision": "Bescheid",
    }
    fv = simulator(tmp_path, answer_root="Rueckmeldung", answer_names=german)
    fields = {key: f"/Rueckmeldung/{name}" for key, name in german.items()}
    sink = make_sink(
        context,
        tmp_path,
        answer_format={
            "fields": fields,
            "status_map": {"eingegangen": "accepted", "beschieden": "decided"},
            "settle_seconds": 0,
        },
    )
    app = await make_application(blobs)
    delivery = await sink.deliver(default_record(app), delivery_context(app, blobs))
    channel.known[delivery.reference] = app.id
    fv.take_imports()
    fv.decide(app.id, "beschieden", None, pdf=True)

    assert await sink.poll_answers() == 2

    results = sorted((tmp_path / "export" / "done").glob("*.xml"))
    assert {etree.parse(str(r)).getroot().tag for r in results} == {"Rueckmeldung"}
    decided = next(a for a in channel.answers.values() if a.status is AnswerStatus.DECIDED)
    assert decided.case_number == fv.cases[app.id].case_number and decided.decision is not None


async def test_simulator_refuses_a_control_request_that_is_no_decision(tmp_path: Path) -> None:
    fv_app = make_app(tmp_path / "import", tmp_path / "export", tmp_path / "fv-work")
    async with TestClient(TestServer(fv_app)) as client:
        not_json = await client.post("/control/decide", data=b"{reference")
        no_reference = await client.post("/control/decide", json={"status": "beschieden"})
        assert (not_json.status, no_reference.status) == (400, 400)
        assert "not JSON" in (await not_json.json())["error"]
    assert not (tmp_path / "export").exists()  # nothing answered


async def test_the_mappings_payload_fields_reach_the_manifest(
    context: ConnectorContext, tmp_path: Path, blobs: BlobStore
) -> None:
    template = write_template(
        tmp_path,
        "k3.xml.j2",
        "<m>{% for k, v in fields|dictsort %}<f n='{{ k }}'>{{ v }}</f>{% endfor %}</m>",
    )
    sink = make_sink(context, tmp_path, manifest={"template": str(template)})
    app = await make_application(blobs)
    record = default_record(app).model_copy(
        update={"payloads": {sink.name: {"fields": {"Flur": "12", "Gemarkung": "Siegburg"}}}}
    )

    delivery = await sink.deliver(record, delivery_context(app, blobs))

    root = etree.fromstring((sink.directory / delivery.reference / "manifest.xml").read_bytes())
    assert [(f.get("n"), f.text) for f in root] == [("Flur", "12"), ("Gemarkung", "Siegburg")]
