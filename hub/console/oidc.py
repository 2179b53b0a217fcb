"""Login with OpenID Connect (authorization code flow with PKCE). (Skeleton: filled in by its owner.)"""

from __future__ import annotations

from aiohttp import web

from hub.console.config import ConsoleConfig
from hub.console.login import OIDC_LABEL


def add_oidc_routes(app: web.Application, config: ConsoleConfig) -> None:
    """Mount /ui/oidc/login and /ui/oidc/callback."""
    assert config.oidc is not None
    app[OIDC_LABEL] = config.oidc.display_name
