"""Requests as third-party enaio clients send them, answered as the real server answers them.

The requests are those of EnaioMCPServer (DMS Service searches with aliases, ``SELECT *``, ``UNION``,
``system:SDSTA_ID IN (@p)``, the keys ``limit`` and ``options``, the text rendition), of the vendor's
ngx-enaio (OSRest session, serviceinfo, search with ``result_config`` beside the query) and of OZG-Hub's
EnaioClient (OSRest insert without a location, a ``data`` part without content type, a file part
named ``path``).
"""

from __future__ import annotations

import io
import time
from typing import Any

import aiohttp
from enaio_helpers import Enaio
from fpdf import FPDF
from test_enaio_simulator import AUTH, PERSON, call, document_upload, folder, properties

SEARCH = "/api/dms/objects/search"


async def document(
    http: aiohttp.ClientSession,
    enaio: Enaio,
    type_: str,
    parent: str,
    content: bytes,
    media_type: str,
    **fields: str,
) -> str:
    body = properties(type_, parent, **fields)
    body["objects"][0]["contentStreams"] = [{"cid": "cid_doc1", "fileName": "inhalt", "mimeType": media_type}]
    status, answer = await call(
        http, "POST", enaio.url + "/api/dms/objects", data=document_upload(body, content)
    )
    assert status == 200, answer
    object_id: str = answer["objects"][0]["properties"]["system:objectId"]["value"]
    return object_id


async def vorgang(http: aiohttp.ClientSession, enaio: Enaio, akte: str, betreff: str = "Antrag") -> str:
    body = properties("Vorgang", akte, Betreff=betreff, Eingangsdatum="2025-03-01")
    status, answer = await call(http, "POST", enaio.url + "/api/dms/objects", json=body)
    assert status == 200, answer
    object_id: str = answer["objects"][0]["properties"]["system:objectId"]["value"]
    return object_id


async def search(http: aiohttp.ClientSession, enaio: Enaio, **query: Any) -> tuple[int, Any]:
    return await call(http, "POST", enaio.url + SEARCH, json={"query": query})


def pdf_with_text(text: str) -> bytes:
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("helvetica", size=12)
    pdf.cell(text=text)
    out = io.BytesIO()
    pdf.output(out)
    return out.getvalue()


async def test_mcp_server_document_list_and_document(enaio: Enaio, http: aiohttp.ClientSession) -> None:
    akte = await folder(http, enaio)
    other = await folder(http, enaio, **{**PERSON, "Aktenzeichen": "32-9"})
    register = await vorgang(http, enaio, akte)
    antrag = await document(
        http, enaio, "Antrag", register, b"Text", "text/plain", Titel="Antrag", AktenhubID="A-1"
    )
    await document(
        http, enaio, "Antrag", await vorgang(http, enaio, other), b"x", "text/plain", Titel="Fremd"
    )

    # get_document_list: aliases, system dates, the children of one Akte through system:SDSTA_ID.
    status, answer = await search(
        http,
        enaio,
        statement="SELECT system:creationDate, system:lastModificationDate, "
        "AktenhubID AS documentIdentifier, Titel AS documentTitle "
        "FROM Antrag WHERE system:SDSTA_ID IN (@objectIds)",
        skipCount=0,
        options={"Rights": 0, "RegisterContext": 0},
        parameters={"objectIds": akte},
        handleDeletedDocuments="DELETED_DOCUMENTS_EXCLUDE",
    )
    assert status == 200, answer
    assert answer["totalNumItems"] == 1
    found = answer["objects"][0]["properties"]
    assert found["documentIdentifier"] == {"value": "A-1"} and found["documentTitle"] == {"value": "Antrag"}
    assert found["system:lastModificationDate"]["value"].startswith(
        found["system:creationDate"]["value"][:10]
    )
    assert found["system:objectTypeId"] == {"value": "262145", "localName": "Antrag"}
    assert "Titel" not in found  # answered under its alias only

    # get_document: SELECT * over a UNION of types, limit instead of maxItems, FileInfo option.
    status, answer = await search(
        http,
        enaio,
        statement="SELECT * FROM Antrag where AktenhubID=@objectId "
        "UNION SELECT * FROM Anlage where system:objectId=@objectId "
        "UNION SELECT * FROM Bauvorlage where system:objectId=@objectId",
        skipCount=0,
        options={"Rights": 0, "Baseparams": 1, "RegisterContext": 0, "FileInfo": 1},
        parameters={"objectId": "A-1"},
        limit=1,
    )
    assert status == 200, answer
    assert answer["numItems"] == 1
    (hit,) = answer["objects"]
    assert hit["properties"]["system:objectId"] == {"value": antrag}
    assert hit["properties"]["Titel"] == {"value": "Antrag"}
    assert hit["properties"]["system:SDSTA_ID"] == {"value": akte}
    assert hit["properties"]["system:SDREG_ID"] == {"value": register}
    assert hit["properties"]["system:parentId"] == {"value": register}
    assert hit["contentStreams"][0]["mimeType"] == "text/plain" and hit["contentStreams"][0]["length"] == 4

    # upload_document: POST objects?minimalResponse=true with job options per object.
    body = properties("Anlage", register, Titel="Notiz")
    body["objects"][0]["options"] = {"ARCHIVABLE": 1}
    body["objects"][0]["contentStreams"] = [
        {"cid": "cid_document", "fileName": "n.txt", "mimeType": "text/plain"}
    ]
    upload = document_upload(body, b"Notiz", cid="cid_document")
    status, answer = await call(
        http, "POST", enaio.url + "/api/dms/objects?minimalResponse=true", data=upload
    )
    assert status == 200, answer
    assert enaio.state.objects[int(answer["objects"][0]["properties"]["system:objectId"]["value"])].content


async def test_conditions_order_paging_and_permissions(enaio: Enaio, http: aiohttp.ClientSession) -> None:
    names = ["Groß", "Klein", "Mittel", "Weiß"]
    ids = [
        await folder(http, enaio, **{**PERSON, "Aktenzeichen": f"32-{i}", "Nachname": n})
        for i, n in enumerate(names)
    ]
    await folder(http, enaio, **{**PERSON, "Aktenzeichen": "32-9", "Nachname": "Ohne", "Vorname": "Eva"})

    async def objects(statement: str, **query: Any) -> list[str]:
        status, answer = await search(http, enaio, statement=statement, **query)
        assert status == 200, (statement, answer)
        return [o["properties"]["system:objectId"]["value"] for o in answer["objects"]]

    base = "SELECT Nachname FROM Personenakte WHERE "
    assert await objects(base + "Nachname IN (@n)", parameters={"n": ["groß", "WEISS", "Weiß"]}) == [
        ids[0],
        ids[3],
    ]
    assert await objects(base + "Nachname LIKE 'M%' OR Nachname = 'klein'") == [ids[1], ids[2]]
    assert await objects(base + "NOT (Nachname LIKE '%e%') AND Vorname IS NULL") == [ids[0]]
    assert await objects(base + "Vorname IS NOT NULL") != ids
    assert (
        await objects(base + "Aktenzeichen >= '32-2' AND Aktenzeichen <> @x", parameters={"x": "32-9"})
        == ids[2:]
    )
    assert await objects(base + "Nachname NOT IN ('Groß', 'Ohne') ORDER BY Nachname DESC") == [
        ids[3],
        ids[2],
        ids[1],
    ]
    assert await objects(base + "system:objectId > 0 ORDER BY Nachname", skipCount=1, maxItems=2) == [
        ids[1],
        ids[2],
    ]
    union = (
        "SELECT Nachname FROM Personenakte WHERE Nachname='Klein' "
        "UNION {} SELECT Nachname FROM 1 WHERE Nachname LIKE 'K%'"
    )
    assert await objects(union.format("")) == [ids[1]]
    assert await objects(union.format("ALL")) == [ids[1], ids[1]]

    status, answer = await search(http, enaio, statement=base + "Nachname='Groß'", includePermissions=True)
    assert status == 200 and set(answer["objects"][0]["permissions"]) == {"read", "write", "delete"}
    status, answer = await search(
        http, enaio, statement=base + "Nachname='Groß'", handleDeletedDocuments="DELETED_DOCUMENTS_ONLY"
    )
    assert status == 200 and answer["objects"] == []  # nothing was deleted
    # ngx-enaio sends the enum as its ordinal: 0 = DELETED_DOCUMENTS_EXCLUDE.
    status, answer = await search(http, enaio, statement=base + "Nachname='Groß'", handleDeletedDocuments=0)
    assert status == 200 and len(answer["objects"]) == 1


async def test_unknown_syntax_and_bad_keys_are_refused(enaio: Enaio, http: aiohttp.ClientSession) -> None:
    await folder(http, enaio)
    refusals: dict[str, dict[str, Any]] = {
        "unexpected '(*)' at position 12": {"statement": "SELECT COUNT(*) FROM Personenakte"},
        "unexpected character at position 33": {
            "statement": "SELECT Nachname FROM Personenakte; DROP TABLE x"
        },
        "ends too early": {"statement": "SELECT Nachname FROM Personenakte WHERE Nachname ="},
        "nests deeper than 32": {"statement": "SELECT Nachname FROM 1 WHERE " + "NOT " * 40 + "Nachname='x'"},
        "unknown system property 'system:secret'": {"statement": "SELECT system:secret FROM 1"},
        "parameter @n has no value": {"statement": "SELECT Nachname FROM 1 WHERE Nachname=@n"},
        "only be used with IN": {
            "statement": "SELECT Nachname FROM 1 WHERE Nachname=@n",
            "parameters": {"n": ["a", "b"]},
        },
        "handleDeletedDocuments must be one of": {
            "statement": "SELECT * FROM 1",
            "handleDeletedDocuments": "ALL",
        },
        "includePermissions must be true or false": {
            "statement": "SELECT * FROM 1",
            "includePermissions": "yes",
        },
        "query.options must map option names to 1 or 0": {
            "statement": "SELECT * FROM 1",
            "options": {"Rights": 2},
        },
        "limit must be a whole number": {"statement": "SELECT * FROM 1", "limit": -1},
        "with the keys": {"statement": "SELECT * FROM 1", "orderBy": "x"},
    }
    for reason, query in refusals.items():
        status, answer = await search(http, enaio, **query)
        assert status == 400 and reason in answer["message"], (reason, answer)
        assert answer["status"] == 400 and answer["error"] == "Bad Request" and answer["path"] == SEARCH
    status, answer = await search(http, enaio, statement="SELECT Religion FROM 1")
    assert status == 422 and "no index field 'Religion'" in answer["message"]

    # A hostile LIKE pattern is answered at once (no regular-expression backtracking).
    started = time.monotonic()
    status, _ = await search(
        http, enaio, statement="SELECT * FROM 1 WHERE Nachname LIKE @p", parameters={"p": "%G" * 60 + "%x"}
    )
    assert status == 200 and time.monotonic() - started < 5


async def test_text_rendition(enaio: Enaio, http: aiohttp.ClientSession) -> None:
    akte = await folder(http, enaio)
    register = await vorgang(http, enaio, akte)
    text = await document(
        http, enaio, "Anlage", register, "Grüße aus dem Amt".encode(), "text/plain", Titel="T"
    )
    pdf = await document(
        http, enaio, "Anlage", register, pdf_with_text("Bauantrag Musterweg 5"), "application/pdf", Titel="P"
    )
    image = await document(http, enaio, "Anlage", register, b"\x89PNG\r\n\x1a\n", "image/png", Titel="B")

    def url(object_id: str) -> str:
        return f"{enaio.url}/api/dms/objects/{object_id}/contents/renditions/text"

    async with http.get(url(text), headers=AUTH) as response:
        assert response.status == 200 and response.content_type == "text/plain"
        assert await response.text() == "Grüße aus dem Amt"
    status, answer = await call(http, "GET", url(pdf))
    assert status == 200 and "Bauantrag Musterweg 5" in answer
    assert (await call(http, "GET", url(image)))[0] == 422  # no text can be made of it
    assert (await call(http, "GET", url(akte)))[0] == 422  # a folder has no content
    assert (await call(http, "GET", url("999999")))[0] == 404


async def test_osrest_vendor_shapes(enaio: Enaio, http: aiohttp.ClientSession) -> None:
    base = enaio.url + "/osrest/api"
    status, info = await call(http, "GET", base + "/serviceinfo")
    assert status == 200 and {
        "apiVersion",
        "serverVersion",
        "services",
        "capabilities",
        "systemRoles",
    } <= set(info)
    status, session = await call(http, "GET", base + "/session?refresh=false")
    assert status == 200 and session["username"] == "aktenhub" and isinstance(session["userid"], int)
    assert len(session["osGuid"]) == 32 and session["groups"] == [] and session["language"] == "de"
    status, users = await call(http, "GET", base + "/organization/users")
    assert status == 200 and [(u["name"], u["locked"], u["guid"]) for u in users] == [
        ("aktenhub", "0", session["osGuid"])
    ]
    assert await call(http, "GET", base + "/workflows/running?verbose=true") == (200, [])
    for path in ("/session/systemroles", "/organization/groups"):
        assert await call(http, "GET", base + path) == (200, [])
    before = int(time.time() * 1000)
    status, now = await call(http, "GET", base + "/serviceinfo/ping")
    assert status == 200 and isinstance(now, int) and now >= before - 1000

    akte = await folder(http, enaio)
    register = await vorgang(http, enaio, akte)

    # OZG-Hub's EnaioClient: no location in the path, `data` without a content type, the file as `path`.
    boundary = "FormBoundary_tK9BqnVPoQD3JJ3fJwoB"
    raw = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="data"\r\n\r\n'
        '{\n  "objectTypeId": "Personenakte",\n  "fields": {"Aktenzeichen": {"value": "32-7"}, '
        '"Nachname": {"value": "Öz"}, "Leistung": {"value": "Jagdschein"}}\n}\r\n'
        f"--{boundary}--"
    ).encode()
    headers = {**AUTH, "Content-Type": f"multipart/form-data; boundary={boundary}"}
    async with http.post(base + "/documents/insert", data=raw, headers=headers) as response:
        assert response.status == 200, await response.text()
        new_folder = int(await response.text())
    assert enaio.state.objects[new_folder].fields["Nachname"] == "Öz"
    raw = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="data"\r\n\r\n'
        '{"objectTypeId": "262146", "fields": {"Titel": {"value": "Plan"}}}\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="path"; filename="plan.pdf"\r\n'
        "Content-Type: application/pdf\r\n\r\n%PDF-plan\r\n"
        f"--{boundary}--"
    ).encode()
    async with http.post(f"{base}/documents/insert/{register}", data=raw, headers=headers) as response:
        assert response.status == 200, await response.text()
        plan = int(await response.text())

    # Search as ngx-enaio sends it: result_config beside the query, paging in the query string.
    request = {
        "query": {"objectTypeId": "262146", "fields": {"Titel": {"value": "plan"}}},
        "result_config": {"fieldsschema": [{"internalName": "Titel"}], "pagesize": 10},
    }
    status, found = await call(http, "POST", base + "/documents/search?offset=0", json=request)
    assert status == 200, found
    (hit,) = found
    assert hit["osid"] == plan and hit["objectTypeId"] == 262146 and hit["objectType"] == "DOCUMENT"
    assert [f["internalName"] for f in hit["ecmSimpleFields"]] == ["Titel"]
    request["query"]["fields"] = {"Dateiname": {"null": True}}
    status, found = await call(http, "POST", base + "/documents/search", json=request)
    assert status == 200 and [o["osid"] for o in found] == [plan]
    request["result_config"] = {"fieldsList": ["Titel"]}
    status, answer = await call(http, "POST", base + "/documents/search", json=request)
    assert status == 400 and "result_config takes the keys" in answer["message"]
    paged = {"query": {"objectTypeId": "Personenakte"}, "result_config": {"pagesize": 1}}
    status, found = await call(http, "POST", base + "/documents/search?page=1", json=paged)
    assert status == 200 and [o["osid"] for o in found] == [new_folder]  # page 1 of size 1: the second
    status, answer = await call(http, "POST", base + "/documents/unknown/1", json={})
    assert status == 404 and answer["message"].startswith("no such endpoint")  # JSON, like every error
    status, answer = await call(http, "POST", f"{base}/documents/update/{plan}", json={})
    assert status == 415 and "multipart/form-data" in answer["message"]  # as ngx-enaio sends it, only
    status, answer = await call(http, "GET", f"{base}/documents/search/{new_folder}")
    assert status == 200 and answer["osid"] == new_folder and answer["objectTypeId"] == 1

    # documentfiles/[id] describes the files; documentfiles/[id]/[page] is the file itself.
    status, files = await call(http, "GET", f"{base}/documentfiles/{plan}")
    assert status == 200 and files["files"] == ["plan.pdf"] and files["pageCount"] == 1
    assert {"fav", "typeless", "contentviewerUrl", "oswebLinkUrl"} <= set(files)
    for page in ("1", "plan.pdf"):
        async with http.get(f"{base}/documentfiles/{plan}/{page}", headers=AUTH) as response:
            assert response.status == 200 and await response.read() == b"%PDF-plan"
    assert (await call(http, "GET", f"{base}/documentfiles/{plan}/2"))[0] == 404
    assert (await call(http, "GET", f"{base}/documentfiles/{akte}"))[0] == 400
    assert (await call(http, "GET", f"{base}/documentfiles/999999"))[0] == 404
