"""The console's configuration: `console:` in the hub's YAML."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, HttpUrl

from hub.secret import Secret


class OidcConfig(BaseModel):
    """The Kreis' identity provider (Keycloak, ADFS, Entra ID/Azure AD) as an OpenID Connect client."""

    model_config = ConfigDict(extra="forbid")

    issuer: HttpUrl = Field(description="the provider's issuer; its discovery document is read from there")
    client_id: str
    client_secret: Secret | None = Field(None, description="confidential client's secret (${ENV} or file:)")
    scopes: list[str] = Field(default_factory=lambda: ["openid", "profile", "email"])
    display_name: str = Field("Anmelden mit dem Kreis-Konto", description="the login button's label")


class ConsoleConfig(BaseModel):
    """The operator console at /ui/."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    public_url: HttpUrl | None = Field(
        None,
        description="the console's address as browsers reach it (behind a reverse proxy); https:// makes "
        "the session cookie Secure and is the base of the OpenID Connect redirect address",
    )
    session_secret: Secret | None = Field(
        None,
        description="key of the session cookies (${ENV} or file:); without it each start makes a new one, "
        "so a restart logs everybody out and several hub processes cannot share sessions",
    )
    session_minutes: int = Field(480, ge=5, le=7 * 24 * 60, description="how long a login lasts")
    token_login: bool = Field(
        True, description="allow logging in with an admin API token (the fallback beside OpenID Connect)"
    )
    oidc: OidcConfig | None = None
