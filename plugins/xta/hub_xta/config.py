"""Settings of an XTA account: where the XTA server is, who we are, how TLS is set up.

`XtaSettings` is meant to be embedded in the configuration of connectors that talk XTA (Bauportal.NRW,
ADVIS, ...), e.g. as ``xta:`` in their ``Config``.
"""

from __future__ import annotations

from typing import Self
from urllib.parse import urlsplit

from pydantic import BaseModel, ByteSize, ConfigDict, Field, field_validator, model_validator

from hub import BackOff, CertificateInfo, ConfigPath, ConnectorConfig, Secret
from hub.outbound import ClientTls, HttpEndpoint

from .models import PartyId
from .wsdl import MANAGEMENT, MSGBOX, SEND


def _http_url(value: str | None) -> str | None:
    if value is None:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("expected an http(s) URL, e.g. https://xta.example/XTA-WS")
    if parts.username or parts.password or parts.fragment:
        raise ValueError("the URL takes no credentials or fragment")
    return value.rstrip("/")


class XtaSettings(BaseModel):
    """One XTA account on one XTA server."""

    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(
        None,
        description="root of the XTA web service; the ports are <url>/MsgBoxPort, <url>/SendXtaPort and "
        "<url>/ManagementPort unless given one by one",
    )
    msgbox_url: str | None = Field(None, description="address of the MsgBoxPort (default <url>/MsgBoxPort)")
    send_url: str | None = Field(None, description="address of the SendXtaPort (default <url>/SendXtaPort)")
    management_url: str | None = Field(
        None, description="address of the ManagementPort (default <url>/ManagementPort)"
    )
    account: PartyId = Field(
        description="our XTA identity: the Author of requests, the reader of our mailbox"
    )
    client_cert: ConfigPath | None = Field(
        None, description="PEM client certificate for TLS (XTA requires one)"
    )
    client_key: ConfigPath | None = Field(None, description="PEM private key of the client certificate")
    client_key_password: Secret | None = Field(None, description="password of the key, if encrypted")
    ca_file: ConfigPath | None = Field(
        None, description="PEM CA bundle to verify the server (default: system)"
    )
    timeout_seconds: float = Field(
        60.0, gt=0, le=3600, description="longest wait for a connection or for the next data of an answer"
    )
    max_envelope: ByteSize = Field(
        ByteSize(16 * 1024**2), description="largest SOAP envelope (inline base64 content counts here)"
    )
    max_content: ByteSize | None = Field(
        None, description="largest single content (MTOM part); default: the blob store's limit"
    )
    max_message: ByteSize | None = Field(
        None,
        description="largest message, all contents together. A larger one is not taken: decided from its "
        "MsgSize before the download, or when the download passes it. Default: `max_content`",
    )
    page_size: int = Field(100, ge=1, le=10000, description="maxListItems of a status list page")

    @field_validator("url", "msgbox_url", "send_url", "management_url")
    @classmethod
    def _urls(cls, value: str | None) -> str | None:
        return _http_url(value)

    @model_validator(mode="after")
    def _complete(self) -> Self:
        missing = [
            name for name in ("msgbox_url", "send_url", "management_url") if getattr(self, name) is None
        ]
        if missing and self.url is None:
            raise ValueError(f"set `url` (or each of {', '.join(missing)})")
        if (self.client_key is not None or self.client_key_password is not None) and self.client_cert is None:
            raise ValueError("client_key given without client_cert")
        return self

    def address(self, port: str) -> str:
        """The address of a WSDL port."""
        explicit = {MSGBOX: self.msgbox_url, SEND: self.send_url, MANAGEMENT: self.management_url}[port]
        if explicit is not None:
            return explicit
        assert self.url is not None  # the validator guarantees it
        return f"{self.url}/{port}"

    def endpoint(self) -> HttpEndpoint:
        """The XTA server as the hub's outbound helper takes it: addresses, client certificate, timeout."""
        tls = None
        if self.client_cert is not None or self.ca_file is not None:
            tls = ClientTls(
                ca=self.ca_file,
                cert=self.client_cert,
                key=self.client_key,
                key_password=self.client_key_password,
            )
        base = self.url or self.address(MANAGEMENT)  # every port's address is absolute
        return HttpEndpoint(base_url=base, tls=tls, timeout_seconds=self.timeout_seconds)

    def certificates(self) -> list[CertificateInfo]:
        """Our XTA client certificate (`xta-client`) and the CAs trusted for the server (`xta-ca`)."""
        tls = self.endpoint().tls
        return tls.certificates("xta") if tls is not None else []


class MailboxSourceConfig(ConnectorConfig):
    """What every source reading an XTA mailbox is configured with (`type: xta`, Bauportal.NRW, ...)."""

    xta: XtaSettings = Field(description="the XTA server and our account (whose mailbox is read)")
    poll_seconds: float = Field(60.0, gt=0, le=86400, description="how often the mailbox is read")
    max_per_poll: int = Field(
        50,
        ge=1,
        le=10000,
        description="messages fetched per poll at most (held ones passed over do not count)",
    )
    fetch_backoff: BackOff = Field(
        default_factory=BackOff,
        description="a message failing to download (or to be read) is fetched again after 60 s, 120 s, ... "
        "up to `max_seconds`, and quarantined after `max_fetches` tries",
    )
