"""A hub with webhook sources feeding a recording sink, and a form server posting to it."""

from __future__ import annotations

import base64
from typing import Any

from hub_webhook.config import HmacAuth
from hub_webhook.demo import NAMESPACES as NS  # the demo form server's XML namespace and signature
from hub_webhook.demo import SIGNATURE
from hub_webhook.simulator import DogRegistration

from hub import Application
from hub.journal import ApplicationFilter
from hub.testing import RunningHub

KEY = "fs-hmac-key-0123456789abcdef"
OLD_KEY = "fs-old-hmac-key-0123456789abc"
TOKEN = "portal-token-0123456789abcdef"
PDF = b"%PDF-1.4\n" + bytes(range(256)) * 600 + b"\n%%EOF\n"  # ~150 KiB: several chunks
HMAC = HmacAuth.model_validate({**SIGNATURE, "secrets": [KEY]})

JSON_CONNECTOR: dict[str, Any] = {
    "type": "webhook",
    "format": "json",
    "auth": {"hmac": {**SIGNATURE, "secrets": ["${FS_KEY}", "${FS_OLD_KEY}"]}},
    "external_id": "$.transactionId",
    "service": "$.service",
    "applicant": {
        "given_name": "$.secureData.FirstName",
        "family_name": "$.secureData.LastName",
        "birth_date": "$.secureData.DateOfBirth",
        "street": "$.secureData.Street",
        "postal_code": "$.secureData.ZipCode",
        "city": "$.secureData.City",
    },
    "fields": {"hund_name": "$.data.hund.name", "chipnummer": "$.data.hund.chipnummer"},
    "attachments": {
        "each": "$.attachments[*]",
        "name": "filename",
        "content": "content",
        "media_type": "mimeType",
    },
}
PERSON = "/a:Antrag/a:Antragsteller/a:"
XML_CONNECTOR: dict[str, Any] = {
    "type": "webhook",
    "format": "xml",
    "namespaces": NS,
    "auth": {"token": {"secrets": ["${PORTAL_TOKEN}"]}},
    "data_part": "xml",
    "external_id": "/a:Antrag/@transactionId",
    "applicant": {"given_name": PERSON + "FirstName", "family_name": PERSON + "LastName"},
    "attachments": {
        "each": "/a:Antrag/a:Anlagen/a:Anlage",
        "name": "@filename",
        "content": ".",
        "media_type": "@mimeType",
    },
}
FORM_CONNECTOR: dict[str, Any] = {
    "type": "webhook",
    "format": "form",
    "auth": {"token": {"header": "X-Api-Key", "scheme": None, "secrets": ["${PORTAL_TOKEN}"]}},
    "external_id": "antragsnummer",
    "applicant": {"given_name": "vorname", "family_name": "nachname"},
}


def settings(**overrides: dict[str, Any]) -> dict[str, Any]:
    """Connectors `fs` (signed JSON), `portal` (XML, multipart, token), `form` (fields) into `rec`."""
    connectors = {"fs": JSON_CONNECTOR, "portal": XML_CONNECTOR, "form": FORM_CONNECTOR}
    connectors = {name: {**cfg, **overrides.get(name, {})} for name, cfg in connectors.items()}
    return {
        "connectors": {**connectors, "rec": {"type": "test-recording"}},
        "routes": [
            {"name": f"{name}-dogs", "from": name, "when": {"service": "hundeanmeldung"}, "to": ["rec"]}
            for name in connectors
        ],
        "env": {"FS_KEY": KEY, "FS_OLD_KEY": OLD_KEY, "PORTAL_TOKEN": TOKEN},
    }


def registration(n: int = 1, **changes: Any) -> DogRegistration:
    """A dog registration; `n` makes its id (and chip) distinct."""
    values: dict[str, Any] = {
        "transaction_id": f"010040-test{n:04d}",
        "given_name": "Jürgen",
        "family_name": "Groß",
        "birth_date": "11.01.1971",
        "street": "Kaiserstraße 12",
        "postal_code": "45657",
        "city": "Recklinghausen",
        "email": "hund@example.org",
        "dog_name": "Bello",
        "breed": "Labrador",
        "chip": f"276098100{n:06d}",
        "since": "01.03.2026",
        "files": {"Haftpflicht.pdf": PDF},
    }
    return DogRegistration(**{**values, **changes})


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


async def count(running: RunningHub) -> int:
    return len(await running.journal.list_applications(ApplicationFilter(), limit=1000))


async def stored(running: RunningHub, body: Any) -> Application:
    app = await running.journal.get_application(body["application_id"])
    assert isinstance(app, Application)
    return app
