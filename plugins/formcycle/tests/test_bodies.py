"""Bodies as FormCycle really sends them: its request encoding, the `_charset_` field, JSON custom bodies."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from test_formcycle import (
    AUTH,
    JPEG,
    PDF,
    count,
    formdata,
    multipart_headers,
    raw_multipart,
    send,
    sha,
    start,
    stored,
)

from hub.errors import ConfigError
from hub.testing import RunningHub

# What a Windows client typing into a form produces and what ISO-8859-1 cannot hold: 0x80 €, 0x84,
# 0x93 and 0x94 quotes, 0x96 en dash, 0x97 em dash; plus ä ö ü ß, the same in both.
CP1252_TEXT = "Gebühr 12 € \u2013 \u201eJagd\u201c \u2014 Groß"  # en dash, „“ quotes, em dash
URLENCODED = "application/x-www-form-urlencoded"


def urlencoded_cp1252(**fields: str) -> bytes:
    """A body encoded by hand: windows-1252 bytes, percent-escaped as a browser does."""
    from urllib.parse import quote_from_bytes

    return "&".join(
        f"{name}={quote_from_bytes(value.encode('cp1252'))}" for name, value in fields.items()
    ).encode("ascii")


# -- character sets ---------------------------------------------------------------------------------


async def test_windows_1252_body_labelled_iso_8859_1_keeps_euro_quotes_and_dashes(hub_factory: Any) -> None:
    running = await start(hub_factory)
    body = urlencoded_cp1252(vorgang_id="fc-cs-1", betreff=CP1252_TEXT)
    headers = {**AUTH, "Content-Type": f"{URLENCODED}; charset=ISO-8859-1"}
    status, answer = await send(running, body, headers=headers)
    assert status == 202, answer
    assert (await stored(running, answer)).form["betreff"] == CP1252_TEXT


@pytest.mark.parametrize("encoding", ["windows-1252", "iso-8859-1", "latin1"])
async def test_unlabelled_bodies_decode_with_the_configured_encoding(hub_factory: Any, encoding: str) -> None:
    running = await start(hub_factory, encoding=encoding)
    body = urlencoded_cp1252(vorgang_id="fc-cs-2", betreff=CP1252_TEXT)
    status, answer = await send(running, body, headers={**AUTH, "Content-Type": URLENCODED})
    assert status == 202, answer
    assert (await stored(running, answer)).form["betreff"] == CP1252_TEXT
    # Names and file names travel in the form's encoding too (HTML's multipart/form-data algorithm).
    multipart = raw_multipart(
        [
            ('form-data; name="vorgang_id"', b"fc-cs-3"),
            ('form-data; name="straße"', "Hauptstraße 1 \u2013 Hof".encode("cp1252")),
            ('form-data; name="ausweis"; filename="Ausweis Rückseite.pdf"', PDF),
        ]
    )
    for text in ("straße", "Rückseite"):
        multipart = multipart.replace(text.encode(), text.encode("cp1252"), 1)
    status, answer = await send(running, multipart, headers=multipart_headers())
    assert status == 202, answer
    app = await stored(running, answer)
    assert app.form == {"vorgang_id": "fc-cs-3", "straße": "Hauptstraße 1 \u2013 Hof"}
    assert [a.name for a in app.attachments] == ["Ausweis Rückseite.pdf"]


async def test_the_default_encoding_is_utf_8_and_refuses_other_bytes(hub_factory: Any) -> None:
    running = await start(hub_factory)
    body = urlencoded_cp1252(vorgang_id="fc-cs-4", betreff=CP1252_TEXT)
    status, answer = await send(running, body, headers={**AUTH, "Content-Type": URLENCODED})
    assert status == 400, answer
    assert answer["error"] == "parameter 'betreff' is not valid utf-8"
    assert await count(running) == 0


async def test_a_windows_1252_body_decodes_every_byte(hub_factory: Any) -> None:
    # The five bytes windows-1252 leaves undefined are C1 controls (WHATWG), not a refusal.
    running = await start(hub_factory, encoding="windows-1252")
    body = b"vorgang_id=fc-cs-5&feld=%81%8D%8F%90%9D%80"
    status, answer = await send(running, body, headers={**AUTH, "Content-Type": URLENCODED})
    assert status == 202, answer
    assert (await stored(running, answer)).form["feld"] == "\x81\x8d\x8f\x90\x9d€"


@pytest.mark.parametrize("multipart", [True, False])
async def test_the_charset_field_names_the_body_encoding(hub_factory: Any, multipart: bool) -> None:
    running = await start(hub_factory)  # utf-8 configured: only _charset_ says otherwise
    if multipart:
        # _charset_ comes last: values before it are decoded with it all the same.
        body = raw_multipart(
            [
                ('form-data; name="vorgang_id"', b"fc-cs-6"),
                ('form-data; name="betreff"', CP1252_TEXT.encode("cp1252")),
                ('form-data; name="_charset_"', b"windows-1252"),
            ]
        )
        headers = multipart_headers()
    else:
        body = urlencoded_cp1252(vorgang_id="fc-cs-6", _charset_="windows-1252", betreff=CP1252_TEXT)
        headers = {**AUTH, "Content-Type": URLENCODED}
    status, answer = await send(running, body, headers=headers)
    assert status == 202, answer
    assert (await stored(running, answer)).form["betreff"] == CP1252_TEXT


async def test_a_part_label_wins_over_the_body_encoding(hub_factory: Any) -> None:
    running = await start(hub_factory, encoding="windows-1252")
    body = raw_multipart(
        [
            ('form-data; name="vorgang_id"', b"fc-cs-7"),
            ('form-data; name="utf8"\r\nContent-Type: text/plain; charset=UTF-8', "€ \u2013 ü".encode()),
            ('form-data; name="cp1252"', "€ \u2013 ü".encode("cp1252")),
        ]
    )
    status, answer = await send(running, body, headers=multipart_headers())
    assert status == 202, answer
    form = (await stored(running, answer)).form
    assert (form["utf8"], form["cp1252"]) == ("€ \u2013 ü", "€ \u2013 ü")


async def test_rfc_5987_file_names_are_read(hub_factory: Any) -> None:
    running = await start(hub_factory)
    body = raw_multipart(
        [
            ('form-data; name="vorgang_id"', b"fc-cs-8"),
            ("form-data; name=\"a\"; filename*=UTF-8''Geb%C3%BChr%20%E2%82%AC.pdf", PDF),
            ('form-data; name="b"; filename="x.jpg"; filename*=iso-8859-1\'\'%C4rger.jpg', JPEG),
        ]
    )
    status, answer = await send(running, body, headers=multipart_headers())
    assert status == 202, answer
    app = await stored(running, answer)
    assert [(a.field, a.name, a.sha256) for a in app.attachments] == [
        ("a", "Gebühr €.pdf", sha(PDF)),
        ("b", "Ärger.jpg", sha(JPEG)),
    ]


async def test_an_unknown_charset_is_refused(hub_factory: Any) -> None:
    running = await start(hub_factory)
    body = b"vorgang_id=fc-cs-9&_charset_=x-klingon"
    status, answer = await send(running, body, headers={**AUTH, "Content-Type": URLENCODED})
    assert status == 415, answer
    assert answer["error"] == "unsupported charset 'x-klingon'"
    assert await count(running) == 0


@pytest.mark.parametrize("encoding", ["x-klingon", "utf-16le"])
async def test_an_unusable_encoding_is_a_configuration_error(hub_factory: Any, encoding: str) -> None:
    with pytest.raises(ConfigError, match="encoding"):
        await start(hub_factory, encoding=encoding)


# -- JSON custom bodies ---------------------------------------------------------------------------


async def post_json(running: RunningHub, document: Any, **headers: str) -> tuple[int, Any]:
    raw = document if isinstance(document, bytes) else json.dumps(document).encode()
    return await send(running, raw, headers={**AUTH, "Content-Type": "application/json", **headers})


JSON_BODY = {
    "vorgang_id": "fc-json-1",
    "antragsteller": {"vorname": "Jürgen", "nachname": "Groß", "anschrift": {"ort": "Siegburg"}},
    "gueltigkeit_jahre": 3,
    "einwilligung": True,
    "versicherung": ["Haftpflicht", "Unfall"],
    "attachments": [
        {
            "name": "ausweis.pdf",
            "media_type": "application/pdf",
            "field": "ausweis",
            "content": base64.encodebytes(PDF).decode(),
        },  # with line breaks, as Java's MIME encoder
        {"name": "foto.jpg", "content": base64.b64encode(JPEG).decode()},
    ],
}


async def test_json_body_keeps_structure_and_decodes_attachments(hub_factory: Any) -> None:
    running = await start(
        hub_factory,
        body="any",
        applicant_fields={"given_name": "antragsteller.vorname", "city": "antragsteller.anschrift.ort"},
    )
    status, answer = await post_json(running, JSON_BODY)
    assert status == 202, answer
    app = await stored(running, answer)
    assert app.external_id == "fc-json-1"
    assert app.form == {k: v for k, v in JSON_BODY.items() if k != "attachments"}
    assert (app.applicant.given_name, app.applicant.address and app.applicant.address.city) == (
        "Jürgen",
        "Siegburg",
    )
    assert [(a.field, a.name, a.media_type, a.size, a.sha256) for a in app.attachments] == [
        ("ausweis", "ausweis.pdf", "application/pdf", len(PDF), sha(PDF)),
        (None, "foto.jpg", "application/octet-stream", len(JPEG), sha(JPEG)),
    ]
    assert await running.hub.blobs.read_bytes(app.attachments[0].blob) == PDF
    assert app.original is not None and app.original.media_type == "application/json"
    original = json.loads(await running.hub.blobs.read_bytes(app.original.blob))
    assert original["fields"]["antragsteller"]["nachname"] == "Groß"
    status, again = await post_json(running, JSON_BODY)
    assert (status, again["duplicate"]) == (200, True)


async def test_json_is_refused_unless_configured(hub_factory: Any) -> None:
    running = await start(hub_factory)
    status, answer = await post_json(running, {"vorgang_id": "fc-json-2"})
    assert status == 415, answer
    assert "body: form" in answer["error"]
    assert await count(running) == 0


async def test_forms_are_refused_where_only_json_is_configured(hub_factory: Any) -> None:
    running = await start(hub_factory, body="json")
    status, answer = await send(running, formdata([("vorgang_id", "fc-json-3")]))
    assert status == 415, answer
    assert "body: json" in answer["error"]
    assert await count(running) == 0


@pytest.mark.parametrize(
    ("raw", "status", "message"),
    [
        (b'{"vorgang_id": "x",', 400, "the body is not valid JSON"),
        (b'["vorgang_id"]', 400, "must be an object"),
        (b'{"a": 1, "a": 2}', 400, "member 'a' twice"),
        (b'{"a": NaN}', 400, "NaN"),
        (b'{"a": "\xe4"}', 400, "not valid UTF-8"),
        (b'{"a": ' + b"[" * 40 + b"]" * 40 + b"}", 400, "nested deeper than 16"),
        (b'{"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", 400, "nested"),
        (b'{"attachments": [{"name": "x.pdf", "content": "not base64!"}]}', 400, "not valid base64"),
        (b'{"attachments": [{"name": "x.pdf"}]}', 400, "attachment 1 must be an object"),
        (b'{"attachments": {"name": "x.pdf"}}', 400, "must be a list"),
        (b'{"vorgang_id": {"x": 1}}', 400, "must be a string"),
        (b'{"a": "\\ud800"}', 400, "lone surrogate"),
        (b'{"a": ["x", {"\\udfff": "y"}]}', 400, "lone surrogate"),
        (b'{"a": 1e999}', 400, "out of range"),
    ],
)
async def test_bad_json_is_refused_and_nothing_stored(
    hub_factory: Any, raw: bytes, status: int, message: str
) -> None:
    running = await start(hub_factory, body="json")
    got, answer = await post_json(running, raw)
    assert got == status, answer
    assert message in answer["error"]
    assert await count(running) == 0


async def test_json_limits(hub_factory: Any) -> None:
    running = await start(hub_factory, body="json", max_json_size=1000, max_file_size=10)
    status, answer = await post_json(running, {"a": "x" * 2000})
    assert status == 413, answer
    big = {"attachments": [{"name": "x", "content": base64.b64encode(b"y" * 11).decode()}]}
    status, answer = await post_json(running, big)
    assert status == 413 and "attachment 1 exceeds" in answer["error"], answer
    assert not running.hub.blobs.stored(f"sha256:{sha(b'y' * 11)}")
    status, answer = await post_json(
        running, {"a": "b"}, **{"Content-Type": "application/json; charset=latin1"}
    )
    assert status == 415, answer
    assert await count(running) == 0


async def test_json_id_by_dotted_path_and_any_json_media_type(hub_factory: Any) -> None:
    running = await start(hub_factory, body="json", id_field="vorgang.id")
    document = {"vorgang": {"id": 4711, "art": "Neuantrag"}, "name": "Groß"}
    status, answer = await post_json(running, document, **{"Content-Type": "application/vnd.antrag+json"})
    assert status == 202, answer
    app = await stored(running, answer)
    assert (app.external_id, app.correlations["formcycle"]) == ("4711", "4711")
    assert app.form == document
