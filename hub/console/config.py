"""The console's configuration: `console:` in the hub's YAML."""

from __future__ import annotations

from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, HttpUrl, model_validator

from hub.outbound import ClientTls
from hub.secret import Secret

# Signature algorithms an ID token may carry; never "none" nor an HMAC (HS*) over a public key.
SignatureAlgorithm = Literal["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"]


class RoleMap(BaseModel):
    """Which values of the role claim give which console role (the highest one found wins)."""

    model_config = ConfigDict(extra="forbid")

    admin: list[str] = Field(default_factory=list)
    operator: list[str] = Field(default_factory=list)
    viewer: list[str] = Field(default_factory=list)


def _issuer(value: str) -> str:
    parts = urlsplit(value)
    local = parts.hostname in ("127.0.0.1", "::1", "localhost")
    if parts.scheme != "https" and not (parts.scheme == "http" and local):
        raise ValueError("the issuer must be an https:// address (http:// only on the loopback)")
    if parts.query or parts.fragment or not parts.hostname:
        raise ValueError("the issuer is an address without query or fragment")
    return value


class OidcConfig(BaseModel):
    """The Kreis' identity provider (Keycloak, ADFS, Entra ID/Azure AD) as an OpenID Connect client."""

    model_config = ConfigDict(extra="forbid")

    issuer: Annotated[str, AfterValidator(_issuer)] = Field(
        description="the provider's issuer exactly as in its tokens (Keycloak: https://host/realms/NAME, "
        "Entra ID: https://login.microsoftonline.com/TENANT/v2.0); discovery is read from there"
    )
    client_id: str = Field(min_length=1)
    client_secret: Secret | None = Field(None, description="confidential client's secret (${ENV} or file:)")
    scopes: list[str] = Field(default_factory=lambda: ["openid", "profile", "email"])
    display_name: str = Field("Anmelden mit dem Kreis-Konto", description="the login button's label")
    algorithms: list[SignatureAlgorithm] = Field(
        default_factory=lambda: list[SignatureAlgorithm](["RS256"]),
        min_length=1,
        description="ID token signatures accepted",
    )
    role_claim: str = Field(
        "roles",
        description="where the roles are, a dotted path: roles (Entra ID app roles), realm_access.roles or "
        "resource_access.CLIENT.roles (Keycloak), role or groups (ADFS)",
    )
    role_map: RoleMap = Field(description="claim values per console role; nobody else gets in")
    name_claim: str = Field(
        "preferred_username", description="the claim naming the person in the audit trail (upn, email, ...)"
    )
    userinfo: bool = Field(False, description="also read the claims from the userinfo endpoint")
    leeway_seconds: int = Field(60, ge=0, le=300, description="clock skew allowed for exp and iat")
    timeout_seconds: float = Field(10.0, gt=0, le=120, description="for each call to the provider")
    tls: ClientTls | None = Field(None, description="whom to trust (the Kreis' own CA, say)")

    @model_validator(mode="after")
    def _openid_scope(self) -> OidcConfig:
        if "openid" not in self.scopes:
            raise ValueError("scopes must contain openid")
        if not (self.role_map.admin or self.role_map.operator or self.role_map.viewer):
            raise ValueError(
                "role_map gives no role to anybody: name claim values under admin, operator or viewer"
            )
        return self


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
