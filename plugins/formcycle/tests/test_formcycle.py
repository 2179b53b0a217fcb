"""The FormCycle source on a real hub over loopback, fed the way FormCycle's HTTP-Request action feeds it."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qsl

import aiohttp
import pytest
from hub_formcycle.source import FormCycleSource

from hub import Application, ApplicationState, IntakeOutcome
from hub.errors import ConfigError
from hub.formdata.submission import safe_filename
from hub.journal import ApplicationFilter
from hub.testing import RunningHub, SourceContract
from hub.testing.fakes import RecordingSink

TOKEN = "fc-test-token-0123456789abcdef"
AUTH = {"X-Aktenhub-Token": TOKEN}
PDF = b"%PDF-1.4\n" + bytes(range(256)) * 1200 + b"\n%%EOF\n"  # ~300 KiB: many chunks
JPEG = b"\xff\xd8\xff\xe0 kleines foto \xff\xd9"


def hub_settings(**formcycle: Any) -> dict[str, Any]:
    """Connectors, routes and env of a hub with the FormCycle source feeding a recording sink."""
    return {
        "connectors": {
            "formcycle": {
                "type": "formcycle",
                "token": "${FORMCYCLE_TOKEN}",
                "id_field": "vorgang_id",
                **formcycle,
            },
            "rec": {"type": "test-recording"},
        },
        "routes": [{"name": "all", "from": "formcycle", "to": ["rec"]}],
        "env": {"FORMCYCLE_TOKEN": TOKEN},
    }


async def start(hub_factory: Any, **formcycle: Any) -> RunningHub:
    running: RunningHub = await hub_factory(**hub_settings(**formcycle))
    return running


def formdata(
    fields: Sequence[tuple[str, str]] = (),
    files: Sequence[tuple[str, str, bytes, str]] = (),
    *,
    multipart: bool = True,
) -> aiohttp.FormData:
    """A body as FormCycle sends it: text parameters, then files (field, filename, content, type)."""
    data = aiohttp.FormData(default_to_multipart=multipart)
    for name, value in fields:
        data.add_field(name, value)
    for field, filename, content, media_type in files:
        data.add_field(field, content, filename=filename, content_type=media_type)
    return data


async def send(
    running: RunningHub,
    data: Any,
    *,
    headers: dict[str, str] | None = None,
    service: str = "jagdschein",
) -> tuple[int, Any]:
    return await running.post(
        f"/intake/formcycle/{service}", data=data, headers=AUTH if headers is None else headers
    )


async def count(running: RunningHub) -> int:
    return len(await running.journal.list_applications(ApplicationFilter(), limit=1000))


async def stored(running: RunningHub, body: Any) -> Application:
    app = await running.journal.get_application(body["application_id"])
    assert isinstance(app, Application)
    return app


def raw_multipart(
    parts: list[tuple[str, bytes]], boundary: str = "fcB0undary", *, close: bool = True
) -> bytes:
    """A multipart body built by hand: (Content-Disposition and further header lines, content)."""
    out = b""
    for headers, content in parts:
        out += f"--{boundary}\r\nContent-Disposition: {headers}\r\n\r\n".encode() + content + b"\r\n"
    if close:
        out += f"--{boundary}--\r\n".encode()
    return out


def multipart_headers(boundary: str = "fcB0undary") -> dict[str, str]:
    return {**AUTH, "Content-Type": f"multipart/form-data; boundary={boundary}"}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class TestFormCycleContract(SourceContract):
    """The contract every source passes, spoken in FormCycle's protocol."""

    @pytest.fixture
    async def source_hub(self, hub_factory: Any) -> RunningHub:
        return await start(hub_factory)

    async def submit(self, running: RunningHub, n: int) -> IntakeOutcome:
        data = formdata(
            [("vorgang_id", f"fc-contract-{n}"), ("vorname", "Jürgen"), ("nachname", "Groß")],
            [("ausweis", f"ausweis-{n}.pdf", f"%PDF-1.4 scan {n}".encode(), "application/pdf")],
        )
        status, body = await send(running, data)
        assert status in (200, 202), body
        return IntakeOutcome(application_id=body["application_id"], duplicate=body["duplicate"])

    async def submit_malformed(self, running: RunningHub) -> int:
        # The header announces one boundary, the body uses another.
        body = raw_multipart([('form-data; name="vorname"', "Jürgen".encode())], boundary="other")
        status, _ = await send(running, body, headers=multipart_headers("fcB0undary"))
        return status


# -- what arrives ---------------------------------------------------------------------------------


async def test_multipart_files_are_streamed_into_the_blob_store(hub_factory: Any) -> None:
    running = await start(hub_factory)
    data = formdata(
        [("vorgang_id", "fc-100"), ("vorname", "Jürgen")],
        [
            ("ausweis", "C:\\fakepath\\Ausweis Rückseite.pdf", PDF, "application/pdf"),
            ("foto", "../../etc/foto.jpg", JPEG, "image/jpeg"),
        ],
    )
    status, body = await send(running, data)
    assert status == 202, body
    app = await stored(running, body)
    assert app.external_id == "fc-100"
    assert app.service == "jagdschein"
    assert app.form == {"vorgang_id": "fc-100", "vorname": "Jürgen"}
    assert [(a.field, a.name, a.media_type, a.size, a.sha256) for a in app.attachments] == [
        ("ausweis", "Ausweis Rückseite.pdf", "application/pdf", len(PDF), sha(PDF)),
        ("foto", "foto.jpg", "image/jpeg", len(JPEG), sha(JPEG)),
    ]
    blobs = running.hub.blobs
    assert await blobs.read_bytes(app.attachments[0].blob) == PDF
    assert await blobs.read_bytes(app.attachments[1].blob) == JPEG
    # The original is the canonical submission, referencing the files by their hash.
    assert app.original is not None and app.original.media_type == "application/json"
    original = json.loads(await blobs.read_bytes(app.original.blob))
    assert original["fields"] == {"vorgang_id": "fc-100", "vorname": "Jürgen"}
    assert [a["sha256"] for a in original["attachments"]] == [sha(PDF), sha(JPEG)]


async def test_urlencoded_submission(hub_factory: Any) -> None:
    running = await start(hub_factory)
    fields = [("vorgang_id", "fc-200"), ("vorname", "Jürgen"), ("bemerkung", "a+b & c=d")]
    status, body = await send(running, fields)  # aiohttp sends a list of pairs urlencoded
    assert status == 202, body
    app = await stored(running, body)
    assert app.form == dict(fields)
    assert app.attachments == []
    assert app.original is not None
    assert app.original.media_type.startswith("application/x-www-form-urlencoded")
    sent = await running.hub.blobs.read_bytes(app.original.blob)
    assert parse_qsl(sent.decode(), keep_blank_values=True) == fields


@pytest.mark.parametrize("multipart", [True, False], ids=["multipart", "urlencoded"])
async def test_repeated_parameters_become_lists(hub_factory: Any, multipart: bool) -> None:
    running = await start(hub_factory)
    data = formdata(
        [
            ("vorgang_id", "fc-300"),
            ("staatsangehoerigkeit", "deutsch"),
            ("vorname", "Jürgen"),
            ("staatsangehoerigkeit", "italienisch"),
        ],
        multipart=multipart,
    )
    status, body = await send(running, data)
    assert status == 202, body
    app = await stored(running, body)
    assert app.form["staatsangehoerigkeit"] == ["deutsch", "italienisch"]
    assert app.form["vorname"] == "Jürgen"


async def test_files_in_one_field_and_same_names_stay_apart(hub_factory: Any) -> None:
    running = await start(hub_factory)
    data = formdata(
        [("vorgang_id", "fc-310")],
        [
            ("anlagen", "scan.pdf", b"%PDF-1.4 erste", "application/pdf"),
            ("anlagen", "scan.pdf", b"%PDF-1.4 zweite", "application/pdf"),
        ],
    )
    status, body = await send(running, data)
    assert status == 202, body
    app = await stored(running, body)
    assert [(a.field, a.name) for a in app.attachments] == [
        ("anlagen", "scan.pdf"),
        ("anlagen", "scan-2.pdf"),
    ]


async def test_empty_file_element_is_no_attachment(hub_factory: Any) -> None:
    running = await start(hub_factory)
    body = raw_multipart(
        [
            ('form-data; name="vorgang_id"', b"fc-320"),
            ('form-data; name="ausweis"; filename=""\r\nContent-Type: application/octet-stream', b""),
        ]
    )
    status, answer = await send(running, body, headers=multipart_headers())
    assert status == 202, answer
    assert (await stored(running, answer)).attachments == []


async def test_application_is_delivered_to_the_sink(hub_factory: Any) -> None:
    running = await start(hub_factory)
    data = formdata([("vorgang_id", "fc-400")], [("ausweis", "ausweis.pdf", PDF, "application/pdf")])
    status, body = await send(running, data)
    assert status == 202, body
    app_id = body["application_id"]
    assert await running.wait_for_state(app_id) == ApplicationState.COMPLETED
    sink = running.hub.connectors["rec"]
    assert isinstance(sink, RecordingSink)
    record = sink.delivered[app_id]
    documents = {d.type: d for d in record.documents}
    assert documents["attachment"].name == "ausweis.pdf"
    assert documents["attachment"].blob == f"sha256:{sha(PDF)}"
    assert documents["original"].media_type == "application/json"


async def test_applicant_fields_are_mapped(hub_factory: Any) -> None:
    running = await start(
        hub_factory,
        applicant_fields={
            "given_name": "vorname",
            "family_name": "nachname",
            "email": "email",
            "street": "strasse",
            "postal_code": "plz",
            "city": "ort",
        },
    )
    fields = [
        ("vorgang_id", "fc-500"),
        ("vorname", " Jürgen "),
        ("nachname", "Groß"),
        ("email", ""),
        ("strasse", "Kaiserstraße 1"),
        ("plz", "53721"),
        ("ort", "Siegburg"),
    ]
    status, body = await send(running, formdata(fields))
    assert status == 202, body
    applicant = (await stored(running, body)).applicant
    assert (applicant.given_name, applicant.family_name, applicant.email) == ("Jürgen", "Groß", None)
    assert applicant.address is not None
    assert (applicant.address.street, applicant.address.postal_code, applicant.address.city) == (
        "Kaiserstraße 1",
        "53721",
        "Siegburg",
    )


# -- external id and duplicates ---------------------------------------------------------------------


async def test_without_id_field_the_hash_dedupes_a_resent_submission(hub_factory: Any) -> None:
    running = await start(hub_factory)

    def submission(vorname: str) -> aiohttp.FormData:  # a fresh body (and boundary) for every send
        return formdata(
            [("vorname", vorname), ("vorgang_id", "")], [("foto", "foto.jpg", JPEG, "image/jpeg")]
        )

    status, first = await send(running, submission("Jürgen"))
    assert status == 202 and first["duplicate"] is False, first
    status, again = await send(running, submission("Jürgen"))
    assert status == 200, again
    assert again == {"application_id": first["application_id"], "duplicate": True}
    status, other = await send(running, submission("Jürgen Anton"))
    assert status == 202 and other["application_id"] != first["application_id"]
    app = await stored(running, first)
    assert app.external_id.startswith("sha256:")
    assert await count(running) == 2


# -- refusals: 4xx and nothing stored -------------------------------------------------------------


async def test_missing_token_is_refused_and_nothing_stored(hub_factory: Any) -> None:
    running = await start(hub_factory)
    status, body = await send(running, formdata([("vorgang_id", "fc-700")]), headers={})
    assert status == 401
    assert "X-Aktenhub-Token" in body["error"]
    assert await count(running) == 0


async def test_wrong_token_is_refused(hub_factory: Any) -> None:
    running = await start(hub_factory)
    headers = {"X-Aktenhub-Token": TOKEN[:-1] + "X"}
    status, _ = await send(running, formdata([("vorgang_id", "fc-701")]), headers=headers)
    assert status == 401
    assert await count(running) == 0


async def test_token_header_is_configurable(hub_factory: Any) -> None:
    running = await start(hub_factory, token_header="X-FormCycle-Secret")
    status, _ = await send(running, formdata([("vorgang_id", "fc-702")]))
    assert status == 401
    status, body = await send(
        running, formdata([("vorgang_id", "fc-702")]), headers={"X-FormCycle-Secret": TOKEN}
    )
    assert status == 202, body


async def test_oversized_file_is_refused_and_nothing_stored(hub_factory: Any) -> None:
    running = await start(hub_factory, max_file_size=1024)
    big = b"x" * 4096
    data = formdata([("vorgang_id", "fc-800")], [("ausweis", "gross.pdf", big, "application/pdf")])
    status, body = await send(running, data)
    assert status == 413
    assert "'ausweis'" in body["error"] and "1024" in body["error"]
    assert await count(running) == 0
    assert not running.hub.blobs.stored(f"sha256:{sha(big)}")


async def test_oversized_text_parameter_is_refused(hub_factory: Any) -> None:
    running = await start(hub_factory, max_field_size=100)
    status, body = await send(running, formdata([("vorgang_id", "fc-801"), ("bemerkung", "x" * 101)]))
    assert status == 413
    assert "'bemerkung'" in body["error"]
    assert await count(running) == 0


@pytest.mark.parametrize("multipart", [True, False], ids=["multipart", "urlencoded"])
async def test_too_many_parameters_are_refused(hub_factory: Any, multipart: bool) -> None:
    running = await start(hub_factory, max_fields=5)
    fields = [("vorgang_id", "fc-802")] + [(f"feld{i}", "x") for i in range(9)]
    status, body = await send(running, formdata(fields, multipart=multipart))
    assert 400 <= status < 500
    assert "too many parameters" in body["error"]
    assert await count(running) == 0


async def test_too_many_files_are_refused(hub_factory: Any) -> None:
    running = await start(hub_factory, max_files=1)
    files = [("anlage", f"a{i}.pdf", f"%PDF {i}".encode(), "application/pdf") for i in range(2)]
    status, body = await send(running, formdata([("vorgang_id", "fc-803")], files))
    assert status == 413
    assert "too many files" in body["error"]
    assert await count(running) == 0


@pytest.mark.parametrize(
    "content_type", ["application/json", "text/plain", "application/xml", "multipart/mixed; boundary=x"]
)
async def test_wrong_content_type_is_refused(hub_factory: Any, content_type: str) -> None:
    running = await start(hub_factory)
    headers = {**AUTH, "Content-Type": content_type}
    status, body = await send(running, b'{"vorgang_id": "fc-900"}', headers=headers)
    assert status == 415
    assert "multipart/form-data" in body["error"]
    assert await count(running) == 0


async def test_multipart_without_boundary_is_refused(hub_factory: Any) -> None:
    running = await start(hub_factory)
    body = raw_multipart([('form-data; name="vorgang_id"', b"fc-901")])
    headers = {**AUTH, "Content-Type": "multipart/form-data"}
    status, answer = await send(running, body, headers=headers)
    assert status == 400, answer
    assert await count(running) == 0


async def test_truncated_body_is_refused_and_the_partial_file_not_kept(hub_factory: Any) -> None:
    running = await start(hub_factory)
    content = b"%PDF-1.4 " + b"y" * 100_000
    body = raw_multipart(
        [
            ('form-data; name="vorgang_id"', b"fc-902"),
            ('form-data; name="ausweis"; filename="a.pdf"\r\nContent-Type: application/pdf', content),
        ]
    )
    cut = body[: body.index(content) + 50_000]  # ends in the middle of the file
    status, answer = await send(running, cut, headers=multipart_headers())
    assert status == 400, answer
    assert "'ausweis'" in answer["error"]
    assert await count(running) == 0
    assert not running.hub.blobs.stored(f"sha256:{sha(content[:50_000])}")


async def test_missing_final_boundary_is_refused(hub_factory: Any) -> None:
    running = await start(hub_factory)
    body = raw_multipart([('form-data; name="vorgang_id"', b"fc-903")], close=False)
    status, answer = await send(running, body, headers=multipart_headers())
    assert status == 400, answer
    assert await count(running) == 0


@pytest.mark.parametrize("multipart", [True, False], ids=["multipart", "urlencoded"])
async def test_invalid_utf8_is_refused(hub_factory: Any, multipart: bool) -> None:
    running = await start(hub_factory)
    if multipart:
        body = raw_multipart(
            [('form-data; name="vorgang_id"', b"fc-904"), ('form-data; name="vorname"', b"J\xfcrgen")]
        )
        headers = multipart_headers()
    else:
        body = b"vorgang_id=fc-904&vorname=J%FCrgen"
        headers = {**AUTH, "Content-Type": "application/x-www-form-urlencoded"}
    status, answer = await send(running, body, headers=headers)
    assert status == 400, answer
    assert "'vorname'" in answer["error"] and "utf-8" in answer["error"]
    assert await count(running) == 0


async def test_empty_submission_is_refused(hub_factory: Any) -> None:
    running = await start(hub_factory)
    headers = {**AUTH, "Content-Type": "application/x-www-form-urlencoded"}
    status, _ = await send(running, b"", headers=headers)
    assert status == 400
    assert await count(running) == 0


async def test_id_field_sent_twice_is_refused(hub_factory: Any) -> None:
    running = await start(hub_factory)
    status, body = await send(running, formdata([("vorgang_id", "a"), ("vorgang_id", "b")]))
    assert status == 400
    assert "'vorgang_id'" in body["error"]
    assert await count(running) == 0


# -- operations ------------------------------------------------------------------------------------


async def test_check_reports_the_token_without_showing_it(hub_factory: Any) -> None:
    running = await start(hub_factory)
    source = running.hub.connectors["formcycle"]
    assert isinstance(source, FormCycleSource)
    result = await source.check()
    assert result.ok
    assert "token" in result.message and "X-Aktenhub-Token" in result.message
    assert TOKEN not in json.dumps(await source.diagnostics()) + result.model_dump_json()


async def test_short_token_is_a_configuration_error(hub_factory: Any) -> None:
    settings = hub_settings()
    settings["env"] = {"FORMCYCLE_TOKEN": "kurz"}
    with pytest.raises(ConfigError) as caught:
        await hub_factory(**settings)
    assert "connectors.formcycle.token" in str(caught.value)
    assert "kurz" not in str(caught.value)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("antrag.pdf", "antrag.pdf"),
        ("C:\\fakepath\\antrag.pdf", "antrag.pdf"),
        ("../../etc/passwd", "passwd"),
        ("/", "anhang-1"),
        ("..", "anhang-1"),
        (".bashrc", "bashrc"),
        ("rechnung\u202efdp.exe", "rechnungfdp.exe"),
        ("a\x00b\nc.pdf", "abc.pdf"),
        ("Antrag %22neu%22%0D%0A.pdf", 'Antrag "neu".pdf'),
        ("R%C3%BCckseite.pdf", "Rückseite.pdf"),
        ("100%.pdf", "100%.pdf"),
        ("%FF.pdf", "%FF.pdf"),
        ("Gru\u0308n.pdf", "Grün.pdf"),
        ("x" * 300 + ".pdf", "x" * 196 + ".pdf"),
    ],
)
def test_safe_filename(raw: str, expected: str) -> None:
    assert safe_filename(raw, "anhang-1") == expected
