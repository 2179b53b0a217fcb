"""The enaio simulator is strict: what the real system refuses, it refuses, with a reason."""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from enaio_helpers import PASSWORD, USER, Enaio
from hub_enaio.simulator import CatalogueError, load_catalogue, make_app, staging
from hub_enaio.simulator.query import QueryError, parse_statement
from hub_enaio.simulator.search import like
from hub_enaio.simulator.staging import StagingFile
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.outbound import basic_authorization

AUTH = {"Authorization": basic_authorization(USER, PASSWORD)}
PERSON = {"Aktenzeichen": "32-1", "Nachname": "Groß", "Leistung": "Jagdschein"}


async def call(
    http: aiohttp.ClientSession, method: str, url: str, headers: dict[str, str] | None = None, **kwargs: Any
) -> tuple[int, Any]:
    async with http.request(method, url, headers=AUTH if headers is None else headers, **kwargs) as response:
        text = await response.text()
        try:
            return response.status, json.loads(text)
        except ValueError:
            return response.status, text


def properties(type_: str, parent: str | None = None, **fields: str) -> dict[str, Any]:
    props = {"system:objectTypeId": {"value": type_}, **{k: {"value": v} for k, v in fields.items()}}
    if parent is not None:
        props["system:parentId"] = {"value": parent}
    return {"objects": [{"properties": props}]}


async def dms_insert(http: aiohttp.ClientSession, enaio: Enaio, body: dict[str, Any]) -> tuple[int, Any]:
    return await call(http, "POST", enaio.url + "/api/dms/objects", json=body)


def document_upload(
    body: dict[str, Any], content: bytes, cid: str = "cid_doc1", header: str | None = None
) -> Any:
    writer = aiohttp.MultipartWriter("form-data")
    writer.append_json(body).set_content_disposition("form-data", name="data")
    part = writer.append(content, {"Content-Type": "application/pdf"})
    part.set_content_disposition("form-data", name=cid, filename="a.pdf")
    part.headers["Content-ID"] = header if header is not None else cid
    return writer


async def folder(
    http: aiohttp.ClientSession, enaio: Enaio, type_: str = "Personenakte", **fields: str
) -> str:
    status, answer = await dms_insert(http, enaio, properties(type_, **(fields or PERSON)))
    assert status == 200, answer
    object_id: str = answer["objects"][0]["properties"]["system:objectId"]["value"]
    return object_id


async def test_authentication(enaio: Enaio, http: aiohttp.ClientSession) -> None:
    url = enaio.url + "/api/dms/info/native"
    status, answer = await call(http, "GET", url, headers={})
    assert status == 401 and answer["message"] == "authentication required"
    wrong = {"Authorization": basic_authorization(USER, "wrong")}
    assert (await call(http, "GET", url, headers=wrong))[0] == 401
    async with http.get(url, headers=AUTH) as response:
        assert response.status == 200
        session = response.cookies["JSESSIONID"].value
    cookie = {"JSESSIONID": session}
    status, answer = await call(http, "GET", enaio.url + "/osrest/api/session", headers={}, cookies=cookie)
    assert status == 200 and answer["username"] == USER
    enaio.state.end_sessions()
    status, answer = await call(http, "GET", url, headers={}, cookies=cookie)
    assert status == 401 and "session expired" in answer["message"]


async def test_hierarchy_is_enforced(enaio: Enaio, http: aiohttp.ClientSession) -> None:
    akte = await folder(http, enaio)
    bauakte = await folder(http, enaio, "Bauakte", Aktenzeichen="63-1", Bauherr="B")
    register = properties("Vorgang", akte, Betreff="B", Eingangsdatum="01.03.2025")
    status, answer = await dms_insert(http, enaio, register)
    assert status == 200
    vorgang = answer["objects"][0]["properties"]["system:objectId"]["value"]
    document = properties("Antrag", vorgang, Titel="T")
    document["objects"][0]["contentStreams"] = [{"cid": "cid_doc1", "fileName": "a.pdf"}]
    status, answer = await call(
        http, "POST", enaio.url + "/api/dms/objects", data=document_upload(document, b"%PDF")
    )
    assert status == 200, answer
    antrag = answer["objects"][0]["properties"]["system:objectId"]["value"]

    refusals = {
        "needs a parent folder": properties("Vorgang", Betreff="B", Eingangsdatum="2025-03-01"),
        "its parent must be a folder": properties(
            "Vorgang", vorgang, Betreff="B", Eingangsdatum="2025-03-01"
        ),
        "cannot be inserted under a document": properties("Anlage", antrag, Titel="T"),
        "unknown parent object 999999": properties("Anlage", "999999", Titel="T"),
        "belongs to cabinet 'Buergerdienste', parent object": properties("Anlage", bauakte, Titel="T"),
        "is inserted into its cabinet": properties("Personenakte", akte, **PERSON),
        "only documents can be put in the tray": properties("Personenakte", "system:tray", **PERSON),
        "unknown object type 'Steuerakte'": properties("Steuerakte", **PERSON),
        "has no index field 'Religion'": properties("Personenakte", **PERSON, Religion="x"),
        "mandatory index field 'Leistung'": properties("Personenakte", Aktenzeichen="1", Nachname="N"),
        "expects a date": properties("Vorgang", akte, Betreff="B", Eingangsdatum="März 2025"),
        "at most 50 characters": properties("Personenakte", **{**PERSON, "Aktenzeichen": "x" * 51}),
    }
    for reason, body in refusals.items():
        status, answer = await dms_insert(http, enaio, body)
        assert (status, reason in answer["message"]) == (422, True), (reason, answer)
    assert len(enaio.state.objects) == 4


async def test_types_are_accepted_by_id_and_internal_name(enaio: Enaio, http: aiohttp.ClientSession) -> None:
    akte = await folder(http, enaio, "1")
    assert enaio.state.objects[int(akte)].type.internal == "Personenakte"
    schema = (await call(http, "GET", enaio.url + "/api/dms/schema/native"))[1]
    (buergerdienste, bauaufsicht, *_others) = schema["asobjdef"]["cabinet"]
    assert [o["internal"] for o in buergerdienste["object"]] == [
        "Personenakte",
        "Vorgang",
        "Antrag",
        "Anlage",
        "Originalantrag",
        "Bescheid",
    ]
    assert [(o["ids"]["oid"], o["maintype"]) for o in bauaufsicht["object"]] == [
        ("2", "0"),
        ("6488066", "99"),
        ("262148", "4"),
    ]


async def test_content_streams_need_matching_parts(enaio: Enaio, http: aiohttp.ClientSession) -> None:
    akte = await folder(http, enaio)
    document = properties("Anlage", akte, Titel="T")
    document["objects"][0]["contentStreams"] = [{"cid": "cid_doc1", "fileName": "Groß.pdf"}]
    url = enaio.url + "/api/dms/objects"
    status, answer = await call(http, "POST", url, data=document_upload(document, b"x", cid="other"))
    assert status == 400 and "no part with that form-data name" in answer["message"]
    status, answer = await call(http, "POST", url, data=document_upload(document, b"x", header="<cid_doc1>"))
    assert status == 400 and "Content-ID header must equal its cid" in answer["message"]
    unreferenced = properties("Anlage", akte, Titel="T")
    status, answer = await call(http, "POST", url, data=document_upload(unreferenced, b"x"))
    assert status == 400 and "not referenced" in answer["message"]
    status, answer = await call(http, "POST", url, data=document_upload(document, b"%PDF-1.4 content"))
    assert status == 200
    object_id = answer["objects"][0]["properties"]["system:objectId"]["value"]
    stored = enaio.state.objects[int(object_id)]
    assert stored.content is not None and stored.content.file_name == "Groß.pdf"
    assert stored.content.sha256 == hashlib.sha256(b"%PDF-1.4 content").hexdigest()
    for path in (f"/api/dms/objects/{object_id}/contents/file", f"/osrest/api/documentfiles/{object_id}/1"):
        async with http.get(enaio.url + path, headers=AUTH) as response:
            assert response.status == 200 and await response.read() == b"%PDF-1.4 content"
            assert response.content_type == "application/pdf"
    assert (await call(http, "GET", f"{enaio.url}/api/dms/objects/{akte}/contents/file/1"))[0] == 404
    twice = properties("Anlage", akte, Titel="T")
    twice["objects"] *= 2  # both objects name the one file part
    twice["objects"][0]["contentStreams"] = twice["objects"][1]["contentStreams"] = [{"cid": "cid_doc1"}]
    status, answer = await call(http, "POST", url, data=document_upload(twice, b"twice"))
    assert status == 400 and "two objects name the same content stream" in answer["message"]
    # Nothing left over: every file is a stored document's (the refused uploads' are gone).
    kept = {o.content.path for o in enaio.state.objects.values() if o.content is not None}
    assert set(enaio.state.content_dir.iterdir()) == kept


async def test_a_large_upload_is_stored_whole_and_hashed_only_when_asked(
    enaio: Enaio, http: aiohttp.ClientSession
) -> None:
    content = hashlib.sha256(b"seed").digest() * (40 * 2**20 // 32) + b"tail"  # several write-out windows
    akte = await folder(http, enaio)
    document = properties("Anlage", akte, Titel="T")
    document["objects"][0]["contentStreams"] = [{"cid": "cid_doc1", "fileName": "plan.pdf"}]
    status, answer = await call(
        http, "POST", enaio.url + "/api/dms/objects", data=document_upload(document, content)
    )
    assert status == 200, answer
    stored = enaio.state.objects[int(answer["objects"][0]["properties"]["system:objectId"]["value"])]
    assert stored.content is not None and stored.content.size == len(content)
    assert "sha256" not in vars(stored.content)  # not taken while the upload streamed in
    assert stored.content.sha256 == hashlib.sha256(content).hexdigest()
    assert hashlib.sha256(stored.content.path.read_bytes()).hexdigest() == stored.content.sha256


async def test_an_upload_is_written_in_order_on_another_thread_than_the_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writers: set[int] = set()
    writev = os.writev

    def watched(fd: int, buffers: Any) -> int:  # the real writev, noting which thread called it
        writers.add(threading.get_ident())
        return writev(fd, buffers)

    monkeypatch.setattr(staging.os, "writev", watched)
    path = tmp_path / "upload"
    file = StagingFile(path)
    pieces = [bytes([i % 251]) * (3 * 2**20 + i) for i in range(12)]  # ~36 MiB: several batches
    for piece in pieces:
        await file.write(piece)
    await file.close()
    assert path.read_bytes() == b"".join(pieces)
    assert writers and threading.get_ident() not in writers


async def test_a_small_upload_is_written_on_the_loop_without_a_thread_hand_over(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writers: set[int] = set()
    writev = os.writev

    def watched(fd: int, buffers: Any) -> int:
        writers.add(threading.get_ident())
        return writev(fd, buffers)

    monkeypatch.setattr(staging.os, "writev", watched)
    path = tmp_path / "upload"
    file = StagingFile(path)
    pieces = [b"a" * 1000, b"b" * 300_000, b"c" * 7]  # complete before a batch is full
    for piece in pieces:
        await file.write(piece)
    await file.close()
    assert path.read_bytes() == b"".join(pieces)
    assert writers == {threading.get_ident()}


async def test_an_upload_refused_past_the_limit_after_batches_went_to_the_thread_leaves_no_file(
    enaio: Enaio, http: aiohttp.ClientSession
) -> None:
    enaio.state.knobs.max_content_bytes = 20 * 2**20
    akte = await folder(http, enaio)
    document = properties("Anlage", akte, Titel="T")
    document["objects"][0]["contentStreams"] = [{"cid": "cid_doc1", "fileName": "plan.pdf"}]
    content = b"p" * (30 * 2**20)
    status, answer = await call(
        http, "POST", enaio.url + "/api/dms/objects", data=document_upload(document, content)
    )
    assert status == 413 and "content larger than" in answer["message"]
    assert list(enaio.state.content_dir.iterdir()) == []


async def test_search_statements_are_parsed_strictly(enaio: Enaio, http: aiohttp.ClientSession) -> None:
    akte = await folder(http, enaio)
    await folder(http, enaio, **{**PERSON, "Aktenzeichen": "32-2", "Nachname": "Klein"})
    url = enaio.url + "/api/dms/objects/search"

    async def search(statement: str, **parameters: str) -> tuple[int, Any]:
        return await call(
            http, "POST", url, json={"query": {"statement": statement, "parameters": parameters}}
        )

    status, answer = await search(
        "select system:objectId, Aktenzeichen from Personenakte where Nachname=@n AND Leistung=@l",
        n="GROß",  # enaio compares without regard to case
        l="Jagdschein",
    )
    assert status == 200 and answer["totalNumItems"] == 1
    assert answer["objects"][0]["properties"] == {
        "system:objectId": {"value": akte},
        "system:objectTypeId": {"value": "1", "localName": "Personenakte"},
        "system:baseTypeId": {"value": "FOLDER"},
        "Aktenzeichen": {"value": "32-1"},
    }
    status, answer = await search("SELECT system:objectId FROM 1")
    assert (status, answer["numItems"]) == (200, 2)
    for statement in (
        "DELETE FROM Personenakte",
        "SELECT COUNT(*) FROM Personenakte",
        "SELECT system:objectId FROM Personenakte WHERE CONTAINS('Groß')",
        "SELECT system:objectId FROM Personenakte; DROP TABLE x",
    ):
        status, answer = await search(statement, n="x")
        assert status == 400 and "statement not understood" in answer["message"], statement
    assert (await search("SELECT system:objectId FROM Personenakte WHERE Nachname=@n"))[0] == 400
    status, answer = await search("SELECT Religion FROM Personenakte")
    assert status == 422 and "no index field 'Religion'" in answer["message"]
    status, answer = await search("SELECT system:objectId FROM Steuerakte")
    assert status == 422 and "unknown object type" in answer["message"]


async def test_osrest_insert_and_search(enaio: Enaio, http: aiohttp.ClientSession) -> None:
    def insert(type_: str, fields: dict[str, str], content: bytes | None = None) -> aiohttp.MultipartWriter:
        writer = aiohttp.MultipartWriter("form-data")
        data = {"objectTypeId": type_, "fields": {k: {"value": v} for k, v in fields.items()}}
        writer.append_json(data).set_content_disposition("form-data", name="data")
        if content is not None:
            writer.append(content).set_content_disposition("form-data", name="file", filename="a.txt")
        return writer

    base = enaio.url + "/osrest/api/documents"
    status, akte = await call(http, "POST", base + "/insert/0", data=insert("1", PERSON))
    assert status == 200 and isinstance(akte, int)
    status, answer = await call(
        http, "POST", f"{base}/insert/{akte}", data=insert("262146", {"Titel": "T"}, b"a")
    )
    assert status == 200
    status, answer = await call(http, "POST", base + "/insert/0", data=insert("Anlage", {"Titel": "T"}, b"a"))
    assert status == 422 and "needs a parent folder or register" in answer["message"]
    status, tray = await call(
        http, "POST", base + "/insert/0?inusertray=true", data=insert("Anlage", {"Titel": "T"}, b"a")
    )
    assert status == 200 and enaio.state.objects[tray].in_tray
    status, answer = await call(
        http, "POST", f"{base}/insert/{akte}?inusertray=true", data=insert("Anlage", {"Titel": "T"})
    )
    assert status == 400
    status, answer = await call(http, "POST", base + "/insert/0", json={"objectTypeId": "1"})
    assert status == 415

    query = {"objectTypeId": "Anlage", "fields": {"Titel": {"value": "t"}}, "result_config": {"pagesize": 1}}
    status, found = await call(http, "POST", base + "/search", json={"query": query})
    assert status == 200 and len(found) == 1
    assert found[0]["objectType"] == "DOCUMENT" and found[0]["objectTypeId"] == 262146
    titel = next(f for f in found[0]["ecmSimpleFields"] if f["internalName"] == "Titel")
    assert titel["displayName"] == "Titel" and titel["value"] == "T"
    query["objectTypeId"] = "Steuerakte"
    assert (await call(http, "POST", base + "/search", json={"query": query}))[0] == 422


async def test_operator_endpoints(enaio: Enaio, http: aiohttp.ClientSession) -> None:
    await folder(http, enaio)
    await folder(http, enaio, "Bauakte", Aktenzeichen="63-1", Bauherr="B")
    status, answer = await call(http, "GET", enaio.url + "/_sim/objects?type=Bauakte", headers={})
    assert status == 200 and [o["fields"]["Bauherr"] for o in answer["objects"]] == ["B"]
    status, answer = await call(http, "GET", enaio.url + "/_sim/objects?Aktenzeichen=32-1", headers={})
    assert [o["type"] for o in answer["objects"]] == ["Personenakte"]

    knobs = await enaio.set_faults(fail_next=1, latency_seconds=0)
    assert knobs["fail_next"] == 1
    status, answer = await call(http, "GET", enaio.url + "/api/dms/info/native")
    assert status == 503
    assert (await call(http, "GET", enaio.url + "/api/dms/info/native"))[0] == 200
    status, answer = await call(http, "POST", enaio.url + "/_sim/faults", headers={}, json={"fail_next": -1})
    assert status == 400 and "fail_next" in answer["message"]
    status, answer = await call(http, "POST", enaio.url + "/_sim/faults", headers={}, json={"explode": True})
    assert status == 400
    status, answer = await call(http, "DELETE", enaio.url + "/_sim/sessions", headers={})
    assert status == 200 and answer["ended"] >= 1
    status, answer = await call(http, "GET", enaio.url + "/_sim/stats", headers={})
    assert answer["objects"] == 2 and answer["auth"]["basic"] >= 3


def test_statement_parser() -> None:
    parsed = parse_statement("SELECT system:objectId, A FROM T WHERE A=@a AND system:parentId=@p")
    (select,) = parsed.selects
    assert [c.name for c in select.columns or ()] == ["system:objectId", "A"] and select.object_type == "T"
    assert parsed.parameters() == {"a", "p"}
    for bad in (
        "",
        "SELECT",
        "SELECT A FROM",
        "SELECT A FROM T WHERE",
        "SELECT A FROM T WHERE A=@a AND",
        "SELECT A, FROM T",
    ):
        with pytest.raises(QueryError):
            parse_statement(bad)


def test_catalogue_files(tmp_path: Path) -> None:
    catalogue = load_catalogue()
    assert catalogue.get("Personenakte") is catalogue.get("1") is catalogue.get(1)
    personenakte = catalogue.get("Personenakte")
    assert personenakte is not None
    assert [f for f, d in personenakte.fields.items() if d.mandatory] == [
        "Aktenzeichen",
        "Nachname",
        "Leistung",
    ]
    custom = tmp_path / "types.yaml"
    custom.write_text(
        "cabinets:\n  - {internal: Ordnungsamt, number: 3, types: [{id: 3, internal: Akte, kind: folder}]}\n"
    )
    app = make_app(types=str(custom))
    assert [t.internal for t in load_catalogue(custom).types] == ["Akte"]
    assert app is not None
    custom.write_text("cabinets:\n  - {internal: X, number: 3, types: []}\n")
    with pytest.raises(CatalogueError, match="exactly one folder type"):
        load_catalogue(custom)
    with pytest.raises(CatalogueError, match="cannot read"):
        load_catalogue(tmp_path / "missing.yaml")


@settings(max_examples=300, deadline=None)
@given(st.text("ab%_", max_size=8), st.text("abAB", max_size=10))
def test_like_matches_as_sql_does(pattern: str, value: str) -> None:
    expected = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)
    assert like(value, pattern) == bool(re.fullmatch(expected, value, re.IGNORECASE | re.DOTALL))


WORDS = ["SELECT", "*", "a", "system:objectId", "AS", "FROM", "T", "1", "WHERE", "AND", "OR", "NOT", "(", ")"]
WORDS += ["=", "<>", "IN", "LIKE", "IS", "NULL", "@p", "'x''y'", ",", "UNION", "ALL", "ORDER", "BY", "DESC"]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(WORDS), max_size=25) | st.text(max_size=60).map(lambda t: [t]))
def test_any_statement_parses_or_is_refused_with_a_reason(words: list[str]) -> None:
    try:
        parsed = parse_statement(" ".join(words))
    except QueryError as exc:
        assert str(exc)
    else:
        assert parsed.selects


async def test_equality_searches_compare_as_enaio_does_after_updates_too(
    enaio: Enaio, http: aiohttp.ClientSession
) -> None:
    # Found through the simulator's index of values, not a scan: the same rules must hold.
    müller = await folder(
        http, enaio, Aktenzeichen="32-7", Nachname="Müller", Leistung="J", Geburtsdatum="1970-03-01"
    )
    await folder(
        http, enaio, Aktenzeichen="32-8", Nachname="Schmidt", Leistung="J", Geburtsdatum="1971-03-01"
    )
    number = await folder(http, enaio, Aktenzeichen="7", Nachname="Ohne", Leistung="J")

    async def ids(where: str, **parameters: str) -> list[str]:
        statement = f"SELECT system:objectId FROM Personenakte WHERE {where}"
        status, answer = await call(
            http,
            "POST",
            enaio.url + "/api/dms/objects/search",
            json={"query": {"statement": statement, "parameters": parameters}},
        )
        assert status == 200, answer
        return [o["properties"]["system:objectId"]["value"] for o in answer["objects"]]

    assert await ids("Nachname=@p1", p1="MÜLLER") == [müller]  # texts without regard to case
    assert await ids("Geburtsdatum=@p1 AND Leistung=@p2", p1="01.03.1970", p2="j") == [
        müller
    ]  # dates as dates
    assert await ids("Aktenzeichen=@p1", p1="7.0") == [number]  # numbers as numbers
    assert await ids("Vorname=@p1", p1="") == []  # empty is NULL
    # Several equalities: candidates come from the one holding the fewest, the others still decide.
    assert await ids("Leistung=@p1 AND Geburtsdatum=@p2", p1="J", p2="01.03.1971") == [
        (await ids("Nachname=@p1", p1="Schmidt"))[0]
    ]
    assert await ids("Leistung=@p1 AND Aktenzeichen=@p2", p1="j", p2="7.0") == [number]
    assert await ids("Leistung=@p1 AND Nachname=@p2", p1="J", p2="Niemand") == []
    assert await ids("Nachname=@p1 AND Leistung=@p2", p1="müller", p2="K") == []

    status, answer = await dms_insert(
        http,
        enaio,
        {"objects": [{"properties": {"system:objectId": {"value": müller}, "Nachname": {"value": "Meier"}}}]},
    )
    assert status == 200, answer
    assert await ids("Nachname=@p1", p1="Müller") == []
    assert await ids("Nachname=@p1", p1="meier") == [müller]
    # A field is indexed when first searched: objects stored or updated before and after are all found.
    later = await folder(http, enaio, Aktenzeichen="32-9", Nachname="Meier", Leistung="J", Ort="Hennef")
    assert await ids("Nachname=@p1", p1="MEIER") == [müller, later]
    status, answer = await dms_insert(
        http,
        enaio,
        {"objects": [{"properties": {"system:objectId": {"value": müller}, "Ort": {"value": "Siegburg"}}}]},
    )
    assert status == 200, answer
    assert await ids("Ort=@p1", p1="siegburg") == [müller]
    assert await ids("Ort=@p1 AND Leistung=@p2", p1="Hennef", p2="J") == [later]
