"""The simulated Fachverfahren are strict, as real ones: what they refuse, asked by a plain HTTP client."""

from __future__ import annotations

import aiohttp
from aiohttp.test_utils import TestServer
from hub_fachverfahren.soap.simulator import DEFAULT_USERS, PATH
from hub_fachverfahren.soap.simulator import make_app as make_soap_app
from rest_helpers import CLIENT_ID, CLIENT_SECRET, StartFv, start_fv

from hub.outbound import basic_authorization

__all__ = ["start_fv"]

GOOD = {"aktenhubId": "a-1", "leistung": "aufenthalt", "antragsteller": {"nachname": "Groß"}}


async def _token(http: aiohttp.ClientSession, url: str) -> str:
    headers = {"Authorization": basic_authorization(CLIENT_ID, CLIENT_SECRET)}
    async with http.post(
        f"{url}/oauth/token", data={"grant_type": "client_credentials"}, headers=headers
    ) as r:
        assert r.status == 200
        token: str = (await r.json())["access_token"]
        return token


async def test_rest_simulator_refuses_unknown_tokens_misfit_bodies_and_reused_keys(start_fv: StartFv) -> None:
    fv = await start_fv()
    api = f"{fv.url}/api/v1/vorgaenge"
    async with aiohttp.ClientSession() as http:
        headers = {"Authorization": "Bearer made-up", "Idempotency-Key": "key-00000001"}
        async with http.post(api, json=GOOD, headers=headers) as r:
            assert r.status == 401
        headers["Authorization"] = "Bearer " + await _token(http, fv.url)
        async with http.post(api, json={**GOOD, "farbe": "blau"}, headers=headers) as r:
            assert r.status == 400
            assert "farbe" in (await r.json())["detail"]
        async with http.post(api, json=GOOD, headers={"Authorization": headers["Authorization"]}) as r:
            assert r.status == 400  # no Idempotency-Key
        async with http.post(api, json=GOOD, headers=headers) as r:
            assert r.status == 201
            first = await r.json()
        async with http.post(api, json=GOOD, headers=headers) as r:
            assert r.status == 200 and r.headers["Idempotent-Replayed"] == "true"
            assert await r.json() == first
        async with http.post(api, json={**GOOD, "leistung": "anders"}, headers=headers) as r:
            assert r.status == 422
    assert len(fv.state.cases) == 1


async def test_soap_simulator_answers_client_faults_for_misfits() -> None:
    server = TestServer(make_soap_app(), host="127.0.0.1")
    await server.start_server()
    user, password = next(iter(DEFAULT_USERS.items()))
    envelope = (
        '<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>'
        '<fv:VorgangAnlegen xmlns:fv="urn:aktenhub:sim:fachverfahren:1"><fv:Leistung>x</fv:Leistung>'
        "</fv:VorgangAnlegen></soap:Body></soap:Envelope>"
    )
    headers = {
        "Authorization": basic_authorization(user, password),
        "Content-Type": "text/xml; charset=utf-8",
        "SOAPAction": '"urn:aktenhub:sim:fachverfahren:1:VorgangAnlegen"',
    }
    try:
        async with aiohttp.ClientSession() as http:
            url = f"http://127.0.0.1:{server.port}{PATH}"
            async with http.post(url, data=envelope, headers=headers) as r:
                assert r.status == 500
                text = await r.text()
                assert "<faultcode>soap:Client</faultcode>" in text and "Leistung" in text
            async with http.post(url, data=envelope, headers={**headers, "SOAPAction": '"other"'}) as r:
                assert r.status == 500 and "unknown SOAPAction" in await r.text()
            async with http.post(url, data=envelope, headers={**headers, "Authorization": "Basic eDp5"}) as r:
                assert r.status == 401
    finally:
        await server.close()
