"""Connectors built into the core, registered before any installed plugin.

- ``log`` (notifier): records each receipt as a log line (application id, kind, file number; never
  personal data). For routes whose applicant channel is not connected yet, so the step is visible.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from importlib import metadata
from typing import Any

from hub.connectors import Connector, ConnectorConfig, Manifest, Notifier, Simulator
from hub.hookspecs import hookimpl
from hub.models import Application, Receipt

log = logging.getLogger("hub.receipts")


def _version() -> str:
    try:
        return metadata.version("aktenhub")
    except metadata.PackageNotFoundError:
        return "0"


class LogNotifier(Notifier[ConnectorConfig]):
    """Writes receipts to the hub's log instead of sending them."""

    kind = "log"
    manifest = Manifest(name="Receipt log", version=_version(), standards=("Aktenhub structured log",))

    async def notify(self, application: Application, receipt: Receipt) -> None:
        log.info(
            "receipt application=%s service=%s kind=%s file_number=%s targets=%s",
            application.id,
            application.service,
            receipt.kind.value,
            receipt.file_number or "-",
            ",".join(d.target for d in receipt.deliveries) or "-",
        )


@hookimpl
def aktenhub_connector_types() -> Sequence[type[Connector[Any]]]:
    """The built-in connectors."""
    return [LogNotifier]


@hookimpl
def aktenhub_simulators() -> Sequence[Simulator]:
    """The core's own simulator: the identity provider the console logs people in with."""
    from hub.oidc_simulator import make_app

    return [
        Simulator(
            name="oidc",
            description="OpenID Connect provider (Keycloak-like) for the console's login: "
            "demo users, PKCE, strict token endpoint",
            make_app=make_app,
        )
    ]
