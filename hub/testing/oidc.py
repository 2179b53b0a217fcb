"""The OpenID Connect provider simulator on a loopback port, for tests of the console's login.

async with running_provider(auto_login="anna.admin") as idp:
    settings["console"] = {"oidc": idp.console_settings()}
    ...
    async with ConsoleClient(hub.url) as browser:
        await browser.login_with_oidc()           # auto_login, or:
        await browser.login_with_oidc("vera.viewer")  # picks the user on the provider's form
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from hub.oidc_simulator import DEMO_ROLE_MAP, PROVIDER, ProviderState, make_app

CLIENT_ID = "aktenhub"
CLIENT_SECRET = "simulator-secret"  # noqa: S105 - the simulator's default client, loopback only


@dataclass
class RunningProvider:
    """A simulated identity provider serving on 127.0.0.1."""

    issuer: str
    url: str  # scheme://host:port
    state: ProviderState  # its keys, users, clients, logins and logouts; `state.knobs` for faults

    def console_settings(self, **overrides: Any) -> dict[str, Any]:
        """The hub's `console.oidc` settings for this provider (Keycloak realm roles), with `overrides`."""
        return {
            "issuer": self.issuer,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "role_claim": "realm_access.roles",
            "role_map": DEMO_ROLE_MAP,
            **overrides,
        }


@asynccontextmanager
async def running_provider(
    realm: str = "kreis", host: str = "127.0.0.1", **options: Any
) -> AsyncIterator[RunningProvider]:
    """Serve the simulator (`hub.oidc_simulator.make_app` options) on a free loopback port while the
    block runs. `host` is the name in its issuer: ``localhost`` makes it another site than a console
    on 127.0.0.1 (ports do not make sites), as a real provider is, for SameSite in a browser."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    url = f"http://{host}:{sock.getsockname()[1]}"
    issuer = f"{url}/realms/{realm}"
    app = make_app(issuer=issuer, **options)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.SockSite(runner, sock).start()
        yield RunningProvider(issuer=issuer, url=url, state=app[PROVIDER])
    finally:
        await runner.cleanup()
        sock.close()
