"""The FormCycle part of `aktenhub demo`: about twenty applications of a Kreis, as FormCycle posts them.

Hunting and fishing licences (with a BundID login, at level "substantiell"), excavation permits and
child day care, each routed through its example mapping file into enaio; the BundID services answer
the applicant's mailbox. One citizen logs in with user name and password only and is refused; the last
application renews the first one's Jagdschein and lands in the same Akte.

A scenario that `requires` this one may route further services from the ``formcycle`` connector and post
its own samples as FormCycle's HTTP-Request action does: multipart to
``{site.hub_url}/intake/formcycle/<service>`` with header ``X-Aktenhub-Token:
site.secret("FORMCYCLE_TOKEN")``, the id in field ``vorgang_id`` and the applicant in ``vorname``,
``nachname``, ``geburtsdatum``, ``strasse``, ``plz``, ``ort``, ``email``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import aiohttp

from hub import ApplicationState, DemoRun, DemoScenario, DemoSite, Expectation

SOURCE = "formcycle"


@dataclass(frozen=True)
class Sample:
    """One sample submission as FormCycle would post it."""

    service: str
    vorgang_id: str
    fields: dict[str, str | list[str]]
    files: dict[str, tuple[str, bytes]]  # form element -> (file name, content)
    bundid_person: str | None = None  # BundID test person who logged in (services that need BundID)
    bundid_means: str = "eID"


def _pdf(title: str, lines: list[str]) -> bytes:
    """A minimal one-page PDF with a few lines of text (Latin-1), for sample attachments."""
    text = "BT /F1 14 Tf 56 780 Td (" + _pdf_escape(title) + ") Tj ET\n"
    for i, line in enumerate(lines):
        text += f"BT /F1 11 Tf 56 {750 - 16 * i} Td (" + _pdf_escape(line) + ") Tj ET\n"
    stream = text.encode("latin-1", "replace")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"endstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for n, obj in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{n} 0 obj\n".encode() + obj + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def _pdf_escape(s: str) -> str:
    return s.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


PEOPLE = [
    # given name, family name, birth date, street, postal code, city
    ("Jürgen", "Groß", "1971-01-11", "Kaiserstraße 12", "53721", "Siegburg"),
    ("Zoë", "Łukasiewicz-Öztürk", "1988-06-02", "Am Markt 3", "53773", "Hennef (Sieg)"),
    ("Hans-Peter", "Müßig", "1973-03-13", "Bonner Straße 101", "53757", "Sankt Augustin"),
    ("Ayşe", "Çelik", "1974-04-14", "Lindenweg 7", "53797", "Lohmar"),
    ("Marie-Thérèse", "d'Aubigné", "1965-09-30", "Rathausplatz 1", "53840", "Troisdorf"),
    ("Øystein", "Ðorđević", "1990-12-24", "Waldweg 22", "53819", "Neunkirchen-Seelscheid"),
    ("Jörg", "Schäfer", "1959-05-17", "Mühlenstraße 4", "53604", "Bad Honnef"),
    ("Anna-Lena", "Köhler", "1995-02-28", "Am Burgweiher 9", "53332", "Bornheim"),
    ("Dragoş", "Ţepeş", "1982-08-08", "Hauptstraße 130", "53359", "Rheinbach"),
    ("Renée", "Brückner-Ñúñez", "1979-11-03", "Siegstraße 45", "53783", "Eitorf"),
    ("Małgorzata", "Wiśniewska", "1986-10-19", "Kirchweg 2", "53347", "Alfter"),
    ("Friedrich", "von der Heydt", "1948-04-01", "Schloßallee 1", "53639", "Königswinter"),
    ("Svenja", "Öztürk", "1992-03-21", "Ringstraße 18", "53773", "Hennef (Sieg)"),
    ("Luca", "Dell'Acqua", "1984-07-07", "Markt 11", "53340", "Meckenheim"),
    ("Ingeborg", "Läufer", "1961-12-12", "Auf dem Acker 5", "53809", "Ruppichteroth"),
    ("Kübra", "Yılmaz", "1998-01-30", "Bahnhofstraße 20", "53721", "Siegburg"),
    ("Theo", "Kröger", "1977-09-09", "Heideweg 3", "53844", "Troisdorf"),
    ("Éléonore", "Fähnrich", "1969-05-25", "Zur Linde 6", "53577", "Neustadt (Wied)"),
    ("Mehmet", "Şahin", "1987-02-14", "Industriestraße 77", "53757", "Sankt Augustin"),
]
SERVICES = ["jagdschein", "fischereischein", "grabungserlaubnis", "kindertagespflege"]
# Services a citizen uses with the BundID account, at level "substantiell" (ELSTER, Smart-eID, eID).
BUNDID_SERVICES = ("jagdschein", "fischereischein")
BUNDID_PERSONS = ["U01", "U02", "U03", "U04", "U05", "U06", "U07", "U11", "U12"]


def samples() -> list[Sample]:
    """About twenty applications of a Kreis: hunting and fishing licences, excavation, child day care.

    The last one is Jürgen Groß again, renewing his Jagdschein: it lands in the Akte of his first one.
    """
    plan = [(person, SERVICES[n % len(SERVICES)]) for n, person in enumerate(PEOPLE)]
    plan.append((PEOPLE[0], "jagdschein"))
    out: list[Sample] = []
    for n, ((vorname, nachname, geburt, strasse, plz, ort), service) in enumerate(plan, start=1):
        fields: dict[str, str | list[str]] = {
            "vorgang_id": f"FC-2026-{4710 + n:06d}",
            "vorname": vorname,
            "nachname": nachname,
            "geburtsdatum": geburt,
            "strasse": strasse,
            "plz": plz,
            "ort": ort,
            "email": f"antrag{n}@example.org",
            "einwilligung": "ja",
        }
        files = {
            "ausweis": (
                f"Personalausweis_{nachname.replace(' ', '_')}.pdf",
                _pdf("Personalausweis (Kopie)", [f"{vorname} {nachname}", f"{plz} {ort}"]),
            ),
        }
        if service == "jagdschein":
            fields["jagdschein_art"] = "Jahresjagdschein" if n % 3 else "Dreijahresjagdschein"
            fields["versicherung"] = ["Jagdhaftpflicht", "Unfallversicherung"]
            files["nachweis"] = (
                "Versicherungsnachweis.pdf",
                _pdf("Jagdhaftpflichtversicherung", ["Deckungssumme 5 Mio EUR Personenschaeden"]),
            )
        elif service == "fischereischein":
            fields["gueltigkeit_jahre"] = "5" if n % 2 else "1"
            files["pruefung"] = ("Fischerpruefung.pdf", _pdf("Zeugnis Fischerpruefung", ["bestanden"]))
        elif service == "grabungserlaubnis":
            fields["gemarkung"] = ort.split(" ")[0]
            fields["flur"] = str(n)
            fields["flurstueck"] = f"{100 + n}/2"
            files["lageplan"] = (
                "Lageplan.pdf",
                _pdf("Lageplan 1:1000", [f"Flur {n}, Flurstueck {100 + n}/2"]),
            )
        else:
            fields["kinder"] = str(1 + n % 5)
            files["qualifikation"] = (
                "Qualifizierung_Tagespflege.pdf",
                _pdf("Qualifizierung 300 UE", ["QHB-Zertifikat"]),
            )
        person = means = None
        if service in BUNDID_SERVICES:
            person = BUNDID_PERSONS[len([x for x in out if x.bundid_person]) % len(BUNDID_PERSONS)]
            if n == len(plan):
                person = BUNDID_PERSONS[0]  # the renewal: the same citizen as the first Jagdschein
            # One citizen logs in with user name and password only: too weak for these services.
            means = "Benutzername" if n == 6 else ("ELSTER" if n % 2 else "eID")
        out.append(
            Sample(
                service=service,
                vorgang_id=str(fields["vorgang_id"]),
                fields=fields,
                files=files,
                bundid_person=person,
                bundid_means=means or "eID",
            )
        )
    return out


async def _post(session: aiohttp.ClientSession, url: str, token: str, sample: Sample, idp_url: str) -> str:
    form = aiohttp.FormData()
    if sample.bundid_person is not None:
        # As FormCycle's BundID login would: the form carries the person's names and the signed response.
        async with session.post(
            f"{idp_url}/sim/response", json={"person": sample.bundid_person, "means": sample.bundid_means}
        ) as resp:
            login = await resp.json()
        form.add_field("bundid_saml_response", login["response"])
    for name, value in sample.fields.items():
        for v in value if isinstance(value, list) else [value]:
            form.add_field(name, v)
    for element, (filename, content) in sample.files.items():
        form.add_field(element, content, filename=filename, content_type="application/pdf")
    async with session.post(
        f"{url}/intake/{SOURCE}/{sample.service}", data=form, headers={"X-Aktenhub-Token": token}
    ) as resp:
        body = await resp.json()
        if resp.status not in (200, 202):
            raise RuntimeError(f"intake answered {resp.status}: {body.get('error')}")
        return str(body["application_id"])


class FormCycleScenario(DemoScenario):
    """FormCycle posting the samples; routes per service group into enaio, BundID services notified."""

    name = "formcycle"
    requires = ("bundid", "enaio", "zbp")
    inbound = "FormCycle + BundID"

    def connectors(self, site: DemoSite) -> dict[str, dict[str, Any]]:
        applicant = {
            "given_name": "vorname",
            "family_name": "nachname",
            "birth_date": "geburtsdatum",
            "street": "strasse",
            "postal_code": "plz",
            "city": "ort",
            "email": "email",
        }
        return {
            SOURCE: {
                "type": "formcycle",
                "token": site.secret_reference("FORMCYCLE_TOKEN"),
                "id_field": "vorgang_id",
                "applicant_fields": applicant,
            },
            "receipts": {"type": "log"},
            "enaio": {"object_types": ["Personenakte", "Vorgang", "Antrag", "Anlage", "Originalantrag"]},
            "postfach": {"services": {"jagdschein": "Jagdschein", "fischereischein": "Fischereischein"}},
        }

    def routes(self, site: DemoSite) -> list[dict[str, Any]]:
        bundid = {
            "name": "jagd-und-fischerei",
            "from": SOURCE,
            "when": {"service": list(BUNDID_SERVICES)},
            "identity": {"via": "bundid", "min_level": "substantiell"},
            "map": str(site.mapping("jagd-und-fischerei.yaml")),
            "to": ["enaio"],
            "notify": ["postfach", "receipts"],
        }
        # The services without a BundID login: one route each, named after the service and its mapping.
        return [bundid] + [
            {
                "name": service,
                "from": SOURCE,
                "when": {"service": service},
                "map": str(site.mapping(f"{service}.yaml")),
                "to": ["enaio"],
                "notify": ["receipts"],
            }
            for service in SERVICES
            if service not in BUNDID_SERVICES
        ]

    async def submit(self, run: DemoRun) -> None:
        todo = samples()
        first, renewal = todo[:-1], todo[-1:]
        sent = run.tally("FormCycle submissions received", total=len(todo))
        token = run.site.secret("FORMCYCLE_TOKEN")
        gate = asyncio.Semaphore(4)  # a few citizens at once, like a busy morning

        async def one(sample: Sample) -> Expectation:
            async with gate:
                application_id = await _post(
                    run.http, run.site.hub_url, token, sample, run.site.url("bundid")
                )
            sent.advance()
            # refused: the BundID login with user name and password only
            refused = sample.bundid_means == "Benutzername"
            state = ApplicationState.REJECTED if refused else ApplicationState.COMPLETED
            name = f"{sample.fields['vorname']} {sample.fields['nachname']}"
            return run.expect(Expectation(state=state, application_id=application_id, applicant=name))

        await run.settled(await asyncio.gather(*(one(s) for s in first)))
        # The renewal of a licence comes later and finds the applicant's existing Akte.
        await asyncio.gather(*(one(s) for s in renewal))

    def links(self, site: DemoSite) -> list[tuple[str, str]]:
        token = site.secret("FORMCYCLE_TOKEN")
        return [
            ("FormCycle", f"POST {site.hub_url}/intake/{SOURCE}/<service> (header X-Aktenhub-Token: {token})")
        ]
