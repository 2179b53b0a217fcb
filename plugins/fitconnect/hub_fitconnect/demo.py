"""The FIT-Connect part of `aktenhub demo`: Wohngeld applications of an EfA online service.

An online service (the plugin's `Sender`, encrypting to the destination's key as any FIT-Connect sender
does) submits Wohngeld applications to the Kreis's destination on the FIT-Connect simulator. The
simulator calls the hub back; the hub (source ``efa``) takes each submission, files it into the
applicant's Personenakte (Leistung Wohngeld) in enaio and into the Wohngeld Fachverfahren's import
folder (generic ``filedrop`` transport), and accepts it. One submission carries a data hash that does
not match: it is rejected with FIT-Connect's ``hash-mismatch`` problem and nothing is filed
(``aktenhub messages list`` shows it).
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

import aiohttp

from hub import Application, ApplicationState, DemoRun, DemoScenario, DemoSite, Expectation

from .sender import Attachment, Sender, SenderFaults

SIMULATOR = "fitconnect"
SOURCE = "efa"
# The simulator's destination offers this LeiKa service with this data schema (its default).
WOHNGELD = "urn:de:fim:leika:leistung:99108008252000"
DATA_SCHEMA = "https://schema.fitko.de/fim/s00000000009_1.0.0.schema.json"
CALLBACK_SECRET = "FITCONNECT_CALLBACK_SECRET"  # noqa: S105 - the name of the ${ENV} setting, not a secret
ANTRAEGE: list[dict[str, Any]] = [
    {
        "antragsart": "Erstantrag",
        "antragsteller": {"vorname": "Dragana", "nachname": "Petrović", "geburtsdatum": "1986-09-23"},
        "haushalt": {"personen": 3},
        "wohnung": {
            "strasse": "Mühlenstraße 12",
            "plz": "53721",
            "ort": "Siegburg",
            "bruttokaltmiete": 735.5,
        },
    },
    {
        "antragsart": "Weiterleistungsantrag",
        "antragsteller": {"vorname": "Heinz-Günter", "nachname": "Schäfer", "geburtsdatum": "1951-02-11"},
        "haushalt": {"personen": 1},
        "wohnung": {"strasse": "Am Rosenhang 4", "plz": "53773", "ort": "Hennef", "bruttokaltmiete": 512.0},
    },
]
# Sent with a data hash that does not match: rejected, never filed.
VERFAELSCHT = {
    **ANTRAEGE[0],
    "antragsteller": {"vorname": "Mira", "nachname": "Falk", "geburtsdatum": "1990-01-01"},
}
MIETBESCHEINIGUNG = b"%PDF-1.4\n% Mietbescheinigung des Vermieters (Demo)\n%%EOF\n"


def _secrets_dir(site: DemoSite) -> Path:
    return site.data_dir / "fitconnect"


def _read(site: DemoSite, name: str) -> str:
    return (_secrets_dir(site) / name).read_text(encoding="utf-8").strip()


class FitConnectScenario(DemoScenario):
    """Wohngeld through FIT-Connect: two applications filed and accepted, one rejected (hash mismatch)."""

    name = "fitconnect"
    requires = ("enaio",)
    simulators = (SIMULATOR,)
    inbound = "FIT-Connect (EfA)"
    columns = ("FIT-Connect",)

    def simulator_options(self, simulator: str, site: DemoSite) -> dict[str, Any]:
        # 2048-bit keys keep the demo's start quick; production destinations have 4096-bit keys.
        return {"default_destination": True, "secrets_dir": str(_secrets_dir(site)), "key_size": 2048}

    def connectors(self, site: DemoSite) -> dict[str, dict[str, Any]]:
        site.env.setdefault(CALLBACK_SECRET, secrets.token_urlsafe(32))
        keys = _secrets_dir(site)
        return {
            SOURCE: {
                "type": "fitconnect",
                "api": {
                    "base_url": site.url(SIMULATOR),
                    "auth": {
                        "type": "oauth2",
                        "token_url": f"{site.url(SIMULATOR)}/token",
                        "client_id": _read(site, "subscriber-client-id"),
                        "client_secret": f"file:{keys / 'subscriber-client-secret'}",
                    },
                },
                "destinations": [
                    {
                        "id": _read(site, "destination-id"),
                        "decryption_keys": [str(keys / "encryption-key.jwk.json")],
                        "signing_key": str(keys / "signature-key.jwk.json"),
                        "callback_secret": site.secret_reference(CALLBACK_SECRET),
                    }
                ],
                "services": [{"service": "wohngeld", "leika": WOHNGELD}],
                "poll_seconds": 30,
            },
            "wohngeld-fachverfahren": {
                "type": "filedrop",
                "path": str(site.data_dir / "wohngeld-fachverfahren"),
            },
            "enaio": {"object_types": ["Personenakte", "Vorgang", "Antrag", "Anlage", "Originalantrag"]},
        }

    def routes(self, site: DemoSite) -> list[dict[str, Any]]:
        return [
            {
                "name": "wohngeld",
                "from": SOURCE,
                "when": {"service": "wohngeld"},
                "map": str(site.mapping("wohngeld.yaml")),
                "to": ["enaio", "wohngeld-fachverfahren"],
            }
        ]

    async def prepare(self, site: DemoSite) -> None:
        (site.data_dir / "wohngeld-fachverfahren").mkdir(parents=True, exist_ok=True)

    async def submit(self, run: DemoRun) -> None:
        site = run.site
        url = site.url(SIMULATOR)
        destination = _read(site, "destination-id")
        callback = {"url": f"{site.hub_url}/intake/{SOURCE}/callback", "secret": site.secret(CALLBACK_SECRET)}
        await run.json(
            "PUT", f"{url}/_sim/destinations/{destination}/callback", "set the callback", json=callback
        )
        sender = Sender(
            run.http,
            f"{url}/v1",
            f"{url}/token",
            _read(site, "sender-client-id"),
            _read(site, "sender-client-secret"),
        )
        for antrag in ANTRAEGE:
            sent = await _send(sender, destination, antrag)
            person = antrag["antragsteller"]
            run.expect(
                Expectation(
                    state=ApplicationState.COMPLETED,
                    source=SOURCE,
                    external_id=sent.submission_id,
                    applicant=f"{person['vorname']} {person['nachname']}",
                )
            )
        await _send(sender, destination, VERFAELSCHT, SenderFaults(wrong_data_hash=True))

    async def describe(
        self, application: Application, state: ApplicationState, run: DemoRun
    ) -> dict[str, str]:
        if application.source != SOURCE:
            return {}
        return {"FIT-Connect": await _status(run, application.external_id)}

    async def check(self, application: Application, state: ApplicationState, run: DemoRun) -> list[str]:
        if application.source != SOURCE:
            return []
        status = await _status(run, application.external_id)
        return [] if status == "accepted" else [f"FIT-Connect shows the submission {status}, not accepted"]

    def links(self, site: DemoSite) -> list[tuple[str, str]]:
        return [
            ("FIT-Connect submissions and events", f"curl {site.url(SIMULATOR)}/_sim/submissions"),
            ("Wohngeld Fachverfahren import folder", str(site.data_dir / "wohngeld-fachverfahren")),
        ]


async def _send(
    sender: Sender, destination: str, antrag: dict[str, Any], faults: SenderFaults | None = None
) -> Any:
    name = antrag["antragsteller"]["nachname"]
    return await sender.send(
        destination,
        WOHNGELD,
        service_name="Wohngeld",
        data=json.dumps(antrag, ensure_ascii=False).encode("utf-8"),
        data_schema_uri=DATA_SCHEMA,
        attachments=[Attachment(content=MIETBESCHEINIGUNG, filename=f"Mietbescheinigung-{name}.pdf")],
        faults=faults or SenderFaults(),
    )


async def _status(run: DemoRun, submission_id: str) -> str:
    try:
        view = await run.json(
            "GET", f"{run.site.url(SIMULATOR)}/_sim/submissions/{submission_id}", "FIT-Connect"
        )
    except (aiohttp.ClientError, RuntimeError):
        return "-"
    return str(view.get("status", "-"))
