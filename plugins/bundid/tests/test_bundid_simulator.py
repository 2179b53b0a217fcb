"""The BundID IdP simulator over HTTP, its key and metadata files, and the plugin's registration."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer
from bundid_helpers import make_identity, saml_settings, with_response
from hub_bundid.identity import BundIdIdentity
from hub_bundid.metadata import parse_metadata
from hub_bundid.simulator import IDP, IdpSimulator, SimulatorError, make_app, render_template

from hub import ConnectorContext, Rejection, TrustLevel
from hub.plugins import load_plugins


@pytest_asyncio.fixture
async def server(schema_dir: Path, tmp_path: Path) -> AsyncIterator[TestServer]:
    app = make_app(reference=str(schema_dir), metadata_file=str(tmp_path / "idp.xml"))
    test_server = TestServer(app, host="127.0.0.1")
    await test_server.start_server()
    yield test_server
    await test_server.close()


async def test_metadata_and_responses_over_http(
    server: TestServer, tmp_path: Path, connector_context: ConnectorContext
) -> None:
    idp = server.app[IDP]
    async with ClientSession() as http:
        async with http.get(server.make_url("/metadata")) as resp:
            assert resp.status == 200
            metadata = parse_metadata(await resp.read())
        assert metadata.entity_id == idp.entity_id
        assert metadata.certificates == (idp.certificate,)
        assert (tmp_path / "idp.xml").read_bytes() == idp.metadata_xml()

        ask = {"person": "U04", "level": 3, "means": "Smart-eID"}
        async with http.post(server.make_url("/sim/response"), json=ask) as resp:
            assert resp.status == 200
            answer = await resp.json()
        async with http.post(server.make_url("/sim/response"), json={"fault": "unsigned"}) as resp:
            unsigned = (await resp.json())["response"]
        async with http.post(server.make_url("/sim/response"), json={"person": "U99"}) as resp:
            assert resp.status == 422
        async with http.post(server.make_url("/sim/response"), json={"fault": "nonsense"}) as resp:
            assert resp.status == 422
        async with http.get(server.make_url("/sim/persons")) as resp:
            persons = await resp.json()
        async with http.get(server.make_url("/sso"), params={"person": "U01", "RelayState": "r1"}) as resp:
            page = await resp.text()

    identity = make_identity(connector_context, saml_settings(idp, tmp_path / "idp.xml"))
    verification = await identity.verify(with_response(answer["response"]), None)
    assert verification.identity.assertion_id == answer["assertion_id"]
    assert verification.identity.level is TrustLevel.SUBSTANTIELL
    assert verification.applicant is not None
    assert verification.applicant.birth_name == "Sonnenmeier"
    with pytest.raises(Rejection):
        await identity.verify(with_response(unsigned), None)

    assert [p["id"] for p in persons] == list(idp.persons)
    assert {"U01", "U07", "U11", "U12"} <= {p["id"] for p in persons}
    assert f"action='{idp.acs_url}'" in page and "name='SAMLResponse'" in page and "value='r1'" in page


def test_key_file_keeps_the_key_across_restarts(schema_dir: Path, tmp_path: Path) -> None:
    first = IdpSimulator(schema_dir, key_file=tmp_path / "keys" / "idp.pem")
    second = IdpSimulator(schema_dir, key_file=tmp_path / "keys" / "idp.pem")
    assert first.certificate == second.certificate
    assert (tmp_path / "keys" / "idp.pem").stat().st_mode & 0o077 == 0


def test_responses_follow_the_reference_template(idp: IdpSimulator) -> None:
    document = base64.b64decode(idp.response("U12", level=2)).decode()
    assert 'NameFormat="urn:oasis:names:tc:SAML:2.0:attrname-format:uri"' in document
    assert "akdb:TrustLevel=" in document
    assert "STORK-QAA-Level-2" in document
    assert "urn:oasis:names:tc:SAML:2.0:ac:classes:Password" in document  # the template's 2nd statement
    assert ">Wien<" in document and ">BUNDIDSIM-U12<" in document
    assert "AssertionProvedBy" not in document  # no means of proof reaches exactly level 2


def test_template_values_are_escaped() -> None:
    text = render_template(
        '<a x="[(${p.v})]">[# th:each="i: ${items}"]<b>[(${i.n})]</b>[/]</a>',
        {"p": {"v": '"&<'}, "items": [{"n": "Müller & Söhne"}, {"n": "<x>"}]},
    )
    assert text == '<a x="&quot;&amp;&lt;"><b>Müller &amp; Söhne</b><b>&lt;x&gt;</b></a>'
    with pytest.raises(SimulatorError):
        render_template("[(${p.missing})]", {"p": {}})


def test_replay_needs_an_earlier_response(idp: IdpSimulator) -> None:
    with pytest.raises(SimulatorError):
        idp.response(fault="replayed")
    first = idp.response("U01")
    assert idp.response(fault="replayed") == first


def test_plugin_registers_connector_and_simulator() -> None:
    plugins = load_plugins()
    assert plugins.connector_type("bundid") is BundIdIdentity
    assert "bundid" in plugins.simulators()
