"""zeep on the shared session: a SOAP operation through `hub.soap.SoapTransport`, faults classified."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio
import zeep
from aiohttp import web
from aiohttp.test_utils import TestServer
from lxml import etree

from hub import Permanent, Retryable
from hub.outbound import HttpEndpoint, Outbound, Refusal, basic_authorization
from hub.soap import SoapTransport, fault_error, transient_fault

WSDL = """<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="http://schemas.xmlsoap.org/wsdl/" xmlns:soap="http://schemas.xmlsoap.org/wsdl/soap/"
    xmlns:tns="urn:fv" xmlns:xsd="http://www.w3.org/2001/XMLSchema" targetNamespace="urn:fv">
  <types>
    <xsd:schema targetNamespace="urn:fv" elementFormDefault="qualified">
      <xsd:element name="CreateCase"><xsd:complexType><xsd:sequence>
        <xsd:element name="aktenzeichen" type="xsd:string"/>
      </xsd:sequence></xsd:complexType></xsd:element>
      <xsd:element name="CreateCaseResponse"><xsd:complexType><xsd:sequence>
        <xsd:element name="caseNumber" type="xsd:string"/>
      </xsd:sequence></xsd:complexType></xsd:element>
    </xsd:schema>
  </types>
  <message name="In"><part name="parameters" element="tns:CreateCase"/></message>
  <message name="Out"><part name="parameters" element="tns:CreateCaseResponse"/></message>
  <portType name="Cases">
    <operation name="CreateCase"><input message="tns:In"/><output message="tns:Out"/></operation>
  </portType>
  <binding name="CasesBinding" type="tns:Cases">
    <soap:binding style="document" transport="http://schemas.xmlsoap.org/soap/http"/>
    <operation name="CreateCase">
      <soap:operation soapAction="urn:fv#CreateCase"/>
      <input><soap:body use="literal"/></input><output><soap:body use="literal"/></output>
    </operation>
  </binding>
  <service name="CaseService">
    <port name="CasesPort" binding="tns:CasesBinding"><soap:address location="http://unused.example/"/></port>
  </service>
</definitions>
"""

SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
ANSWER = f"""<s:Envelope xmlns:s="{SOAP11}"><s:Body>
<CreateCaseResponse xmlns="urn:fv"><caseNumber>K3-{{az}}</caseNumber></CreateCaseResponse>
</s:Body></s:Envelope>"""
FAULT = f"""<s:Envelope xmlns:s="{SOAP11}"><s:Body><s:Fault>
<faultcode>s:{{code}}</faultcode><faultstring>{{reason}}</faultstring>
</s:Fault></s:Body></s:Envelope>"""


class CaseService:
    """A SOAP 1.1 service: answers CreateCase, or a fault / an error page when told to."""

    def __init__(self) -> None:
        self.calls: list[tuple[str | None, str | None, str]] = []  # (SOAPAction, Authorization, az)
        self.next: tuple[int, str, str] | None = None  # (status, content type, body)

    async def handle(self, request: web.Request) -> web.Response:
        document = etree.fromstring(await request.read())
        az = document.findtext(".//{urn:fv}aktenzeichen") or ""
        self.calls.append((request.headers.get("SOAPAction"), request.headers.get("Authorization"), az))
        if self.next is not None:
            status, media, body = self.next
            return web.Response(status=status, text=body, content_type=media)
        return web.Response(text=ANSWER.format(az=az), content_type="text/xml")


@pytest_asyncio.fixture
async def service() -> AsyncIterator[tuple[CaseService, str]]:
    state = CaseService()
    app = web.Application()
    app.router.add_post("/cases", state.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield state, str(server.make_url("/cases"))
    await server.close()


@pytest_asyncio.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as http:
        yield http


def soap_client(session: aiohttp.ClientSession, url: str, tmp_path: Path) -> zeep.proxy.AsyncServiceProxy:
    wsdl = tmp_path / "cases.wsdl"
    wsdl.write_text(WSDL, encoding="utf-8")
    endpoint = HttpEndpoint.model_validate(
        {"base_url": url, "auth": {"type": "basic", "username": "hub", "password": "pw"}}
    )
    transport = SoapTransport(Outbound(lambda: session, endpoint, system="K3"), tmp_path, what="create case")
    client = zeep.AsyncClient(str(wsdl), transport=transport)
    binding = client.wsdl.bindings["{urn:fv}CasesBinding"]
    return zeep.proxy.AsyncServiceProxy(client, binding, address=url)


async def test_an_operation_goes_through_the_outbound(
    service: tuple[CaseService, str], session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    state, url = service
    cases = soap_client(session, url, tmp_path)
    assert await cases.CreateCase(aktenzeichen="61.2-0815/2026") == "K3-61.2-0815/2026"
    assert state.calls == [('"urn:fv#CreateCase"', basic_authorization("hub", "pw"), "61.2-0815/2026")]


@pytest.mark.parametrize(
    ("code", "error"), [("Server", Retryable), ("Client", Permanent)], ids=["server", "client"]
)
async def test_faults_are_classified_by_their_code(
    service: tuple[CaseService, str],
    session: aiohttp.ClientSession,
    tmp_path: Path,
    code: str,
    error: type[Exception],
) -> None:
    state, url = service
    state.next = (500, "text/xml", FAULT.format(code=code, reason="Aktenzeichen fehlt"))
    cases = soap_client(session, url, tmp_path)
    with pytest.raises(zeep.exceptions.Fault) as fault:
        await cases.CreateCase(aktenzeichen="x")
    classified = fault_error(fault.value, "create case", "K3")
    assert type(classified) is error
    assert str(classified).endswith("K3 answered a SOAP fault (s:" + code + "): Aktenzeichen fehlt")
    assert transient_fault(fault.value.code) is (error is Retryable)


@pytest.mark.parametrize(("status", "error"), [(502, Retryable), (404, Refusal)])
async def test_an_answer_that_is_no_soap_is_classified_as_http(
    service: tuple[CaseService, str],
    session: aiohttp.ClientSession,
    tmp_path: Path,
    status: int,
    error: type[Exception],
) -> None:
    state, url = service
    state.next = (status, "text/html", "<html><body>Proxy Error</body></html>")
    cases = soap_client(session, url, tmp_path)
    with pytest.raises(error, match=f"create case: K3 .*{status}.*Proxy Error"):
        await cases.CreateCase(aktenzeichen="x")


def test_the_wsdl_is_never_downloaded_nor_read_outside_its_directory(
    session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    endpoint = HttpEndpoint(base_url="http://127.0.0.1:9")
    transport = SoapTransport(Outbound(lambda: session, endpoint, system="K3"), tmp_path / "wsdl")
    with pytest.raises(Permanent, match="only local schema files"):
        zeep.AsyncClient("http://127.0.0.1:9/cases?wsdl", transport=transport)
    (tmp_path / "secret.wsdl").write_text(WSDL, encoding="utf-8")
    with pytest.raises(Permanent, match="outside"):
        zeep.AsyncClient(str(tmp_path / "secret.wsdl"), transport=transport)
