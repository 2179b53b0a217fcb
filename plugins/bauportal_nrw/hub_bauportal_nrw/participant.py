"""What the source and the answers share: the XTA client and the XBau schemas, and their check."""

from __future__ import annotations

from hub_xta import XtaClient, XtaSettings

from hub import CheckResult, ConnectorContext, Permanent

from .xbau import XBauSchemas, load_schemas


class XBauParticipant:
    """A connector that exchanges XBau messages over the Bauaufsicht's XTA account."""

    context: ConnectorContext
    _client: XtaClient | None = None

    @property
    def xta_settings(self) -> XtaSettings:
        """The XTA server and account (from the connector's configuration)."""
        raise NotImplementedError

    @property
    def client(self) -> XtaClient:
        """The XTA client (created on first use: it needs the schema directory)."""
        if self._client is None:
            self._client = XtaClient.from_context(self.xta_settings, self.context)
        return self._client

    @property
    def schemas(self) -> XBauSchemas:
        """The compiled XBau schemas (once per process)."""
        if self.context.schemas is None:
            raise Permanent("no schema directory configured (`schemas:` or $AKTENHUB_SCHEMAS): XBau needs it")
        return load_schemas(self.context.schemas)

    async def check(self) -> CheckResult:
        """Are the XBau schemas there, is the XTA server reachable and our account active?"""
        try:
            self.schemas  # noqa: B018 - compiles them, or says why not
            client = self.client
        except Permanent as exc:
            return CheckResult(ok=False, message=str(exc))
        return await client.check()
