"""Helpers of the BundID tests: connectors and applications against the IdP simulator."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from hub_bundid.config import BundIdConfig
from hub_bundid.identity import BundIdIdentity
from hub_bundid.simulator import IdpSimulator

from hub import Application, ConnectorContext, utcnow

FIELD = "bundid_saml_response"


def saml_settings(idp: IdpSimulator, metadata: Path, **overrides: Any) -> dict[str, Any]:
    """Connector settings (as in the YAML) matching the simulator."""
    return {
        "type": "bundid",
        "mode": "saml",
        "idp_metadata": str(metadata),
        "sp_entity_id": idp.sp_entity_id,
        "acs_url": idp.acs_url,
        **overrides,
    }


def make_identity(context: ConnectorContext, settings: dict[str, Any]) -> BundIdIdentity:
    """A connector from settings, validated as the hub validates them."""
    return BundIdIdentity(BundIdConfig.model_validate(settings), context)


def application(
    form: dict[str, Any], *, app_id: str | None = None, received_at: datetime | None = None
) -> Application:
    """An application from the form server carrying `form`."""
    extra: dict[str, Any] = {"id": app_id} if app_id else {}
    return Application(
        source="formcycle",
        external_id=app_id or "ext-1",
        service="waffenschein",
        form=form,
        received_at=received_at or utcnow(),
        **extra,
    )


def with_response(response: str, **kwargs: Any) -> Application:
    """An application whose form carries the base64 SAML response in the default field."""
    return application({FIELD: response, "anliegen": "Waffenschein"}, **kwargs)
