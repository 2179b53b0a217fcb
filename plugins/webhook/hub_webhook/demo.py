"""The webhook part of `aktenhub demo`: dog registrations from a form server, into the e-file.

Two senders, two connectors of `type: webhook`:

- ``formsolutions``: a Form Solutions form server posting the registration as JSON with base64
  attachments, signed with HMAC-SHA256 over ``"{timestamp}.{body}"`` (headers ``X-Signature:
  sha256=<hex>`` and ``X-Timestamp``), the applicant from ``secureData``;
- ``serviceportal``: a service portal posting multipart/form-data (its XML data record as part ``xml``,
  the form as PDF, the attachments), authenticated by a bearer token.

Both route service ``hundeanmeldung`` through ``config/mappings/hundeanmeldung.yaml`` into enaio. One
registration is re-sent (a lost answer): it stays one application.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

from hub import ApplicationState, DemoRun, DemoScenario, DemoSite, Expectation

from .config import HmacAuth
from .simulator import DogRegistration, FormServer, json_body, multipart_body

FORMSOLUTIONS = "formsolutions"
PORTAL = "serviceportal"
SERVICE = "hundeanmeldung"
NAMESPACES = {"a": "urn:aktenhub:demo:formserver"}
SIGNATURE = {
    "header": "X-Signature",
    "algorithm": "sha256",
    "encoding": "hex",
    "prefix": "sha256=",
    "timestamp_header": "X-Timestamp",
    "signed": "{timestamp}.{body}",
}
PEOPLE = [
    ("Jürgen", "Groß", "11.01.1971", "Kaiserstraße 12", "45657", "Recklinghausen", "Bello", "Labrador"),
    ("Zoë", "Łukasiewicz-Öztürk", "02.06.1988", "Am Markt 3", "45768", "Marl", "Fiete", "Mischling"),
    ("Ayşe", "Çelik", "14.04.1974", "Lindenweg 7", "45699", "Herten", "Luna", "Beagle"),
    ("Hans-Peter", "Müßig", "13.03.1973", "Bahnhofstraße 20", "45964", "Gladbeck", "Rex", "Schäferhund"),
    (
        "Marie-Thérèse",
        "d'Aubigné",
        "30.09.1965",
        "Rathausplatz 1",
        "45721",
        "Haltern am See",
        "Kira",
        "Pudel",
    ),
    ("Øystein", "Ðorđević", "24.12.1990", "Waldweg 22", "45739", "Oer-Erkenschwick", "Balu", "Bernhardiner"),
]


def _pdf(title: str) -> bytes:
    """A tiny PDF standing in for an attachment."""
    return b"%PDF-1.4\n% " + title.encode("utf-8") + b"\n%%EOF\n"


def registrations() -> list[DogRegistration]:
    """Six dog registrations of Kreis Recklinghausen's residents."""
    return [
        DogRegistration(
            transaction_id=f"010040-hund{n:04d}",
            given_name=given,
            family_name=family,
            birth_date=born,
            street=street,
            postal_code=plz,
            city=city,
            email=f"hund{n}@example.org",
            dog_name=dog,
            breed=breed,
            chip=f"276098100{n:06d}",
            since="01.03.2026",
            files={"Haftpflichtnachweis.pdf": _pdf(f"Hundehaftpflicht {dog}")},
        )
        for n, (given, family, born, street, plz, city, dog, breed) in enumerate(PEOPLE, start=1)
    ]


class FormSolutionsScenario(DemoScenario):
    """A Form Solutions form server (signed JSON) and a service portal (multipart + XML) into enaio."""

    name = "webhook"
    requires = ("enaio",)
    inbound = "Form server (webhook)"

    def connectors(self, site: DemoSite) -> dict[str, dict[str, Any]]:
        applicant_json = {
            "given_name": "$.secureData.FirstName",
            "family_name": "$.secureData.LastName",
            "birth_date": "$.secureData.DateOfBirth",
            "street": "$.secureData.Street",
            "postal_code": "$.secureData.ZipCode",
            "city": "$.secureData.City",
            "email": "$.secureData.Email",
        }
        person = "/a:Antrag/a:Antragsteller/a:"
        applicant_xml = {
            "given_name": person + "FirstName",
            "family_name": person + "LastName",
            "birth_date": person + "DateOfBirth",
            "street": person + "Street",
            "postal_code": person + "ZipCode",
            "city": person + "City",
            "email": person + "Email",
        }
        dog = "/a:Antrag/a:Hund/a:"
        return {
            FORMSOLUTIONS: {
                "type": "webhook",
                "format": "json",
                "auth": {"hmac": {**SIGNATURE, "secrets": [site.secret_reference("FORMSOLUTIONS_KEY")]}},
                "external_id": "$.transactionId",
                "service": "$.service",
                "applicant": applicant_json,
                "fields": {
                    "vorgang_id": "$.transactionId",
                    "hund_name": "$.data.hund.name",
                    "hund_rasse": "$.data.hund.rasse",
                    "chipnummer": "$.data.hund.chipnummer",
                    "haltung_seit": "$.data.hund.haltungSeit",
                },
                "attachments": {
                    "each": "$.attachments[*]",
                    "name": "filename",
                    "content": "content",
                    "media_type": "mimeType",
                },
            },
            PORTAL: {
                "type": "webhook",
                "format": "xml",
                "namespaces": NAMESPACES,
                "auth": {"token": {"secrets": [site.secret_reference("SERVICEPORTAL_TOKEN")]}},
                "data_part": "xml",
                "external_id": "/a:Antrag/@transactionId",
                "applicant": applicant_xml,
                "fields": {
                    "vorgang_id": "/a:Antrag/@transactionId",
                    "hund_name": dog + "name",
                    "hund_rasse": dog + "rasse",
                    "chipnummer": dog + "chipnummer",
                    "haltung_seit": dog + "haltungSeit",
                },
            },
            "enaio": {"object_types": ["Personenakte", "Vorgang", "Antrag", "Anlage", "Originalantrag"]},
        }

    def routes(self, site: DemoSite) -> list[dict[str, Any]]:
        return [
            {
                "name": f"hundeanmeldung-{source}",
                "from": source,
                "when": {"service": SERVICE},
                "map": str(site.mapping("hundeanmeldung.yaml")),
                "to": ["enaio"],
            }
            for source in (FORMSOLUTIONS, PORTAL)
        ]

    async def submit(self, run: DemoRun) -> None:
        todo = registrations()
        sent = run.tally("form server submissions received", total=len(todo) + 1)
        signed = FormServer(
            run.http,
            f"{run.site.hub_url}/intake/{FORMSOLUTIONS}/{SERVICE}",
            run.site.secret("FORMSOLUTIONS_KEY"),
            HmacAuth.model_validate({**SIGNATURE, "secrets": ["x" * 16]}),
        )
        portal = FormServer(
            run.http, f"{run.site.hub_url}/intake/{PORTAL}/{SERVICE}", run.site.secret("SERVICEPORTAL_TOKEN")
        )

        async def one(n: int, registration: DogRegistration) -> Expectation:
            form = _pdf(
                f"Anmeldung {registration.transaction_id}"
            )  # the filled form, as the sender renders it
            if n % 2:
                body, content_type = multipart_body(registration, form)
                status, answer = await portal.post(body, content_type)
            else:
                # In JSON the form's PDF travels as the first base64 attachment.
                files = {f"{registration.transaction_id}.pdf": form, **registration.files}
                status, answer = await signed.post(
                    json_body(replace(registration, files=files)), "application/json"
                )
            if status not in (200, 202):
                raise RuntimeError(f"webhook intake answered {status}: {answer.get('error')}")
            sent.advance()
            return run.expect(
                Expectation(
                    state=ApplicationState.COMPLETED,
                    application_id=str(answer["application_id"]),
                    applicant=f"{registration.given_name} {registration.family_name}",
                )
            )

        expectations = await asyncio.gather(*(one(n, r) for n, r in enumerate(todo)))
        # A lost answer: the form server sends the first registration again; it stays one application.
        files = {
            f"{todo[0].transaction_id}.pdf": _pdf(f"Anmeldung {todo[0].transaction_id}"),
            **todo[0].files,
        }
        status, answer = await signed.post(json_body(replace(todo[0], files=files)), "application/json")
        if status != 200 or answer.get("application_id") != expectations[0].application_id:
            raise RuntimeError(f"the re-sent registration was not recognised: {status} {answer}")
        sent.advance()
        await run.settled(list(expectations))

    def links(self, site: DemoSite) -> list[tuple[str, str]]:
        return [
            ("Form Solutions", f"POST {site.hub_url}/intake/{FORMSOLUTIONS}/{SERVICE} (HMAC X-Signature)"),
            ("Service portal", f"POST {site.hub_url}/intake/{PORTAL}/{SERVICE} (Authorization: Bearer)"),
        ]
