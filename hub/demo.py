"""`aktenhub demo`: the main job on the embedded default, one command.

Starts the Enaio simulator and a hub (SQLite journal and blob store under the data directory) with
FormCycle routes through the example mapping files into the e-file, posts about twenty applications of
several services of a Kreis the way FormCycle's HTTP-Request action sends them, shows their progress
and a summary (Aktenzeichen, DMS ids), then keeps serving until Ctrl-C.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import shutil
import signal
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn
from rich.table import Table

from hub.config import config_from_dict
from hub.errors import ConfigError, PluginError
from hub.http import make_runner
from hub.journal import ApplicationFilter
from hub.journal.lock import in_use
from hub.logs import TextFormatter
from hub.models import ApplicationState
from hub.plugins import load_plugins
from hub.runtime import Hub
from hub.schemas import require_schema_directory

console = Console()


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
SP_ENTITY_ID = "https://aktenhub.rhein-sieg-kreis.example/saml/sp"
XTA_ACCOUNT = "vbe:053820004"  # the Bauaufsicht's XTA mailbox
AUTHORITY = {"kennung": "vbe:053820004", "name": "Rhein-Sieg-Kreis, Untere Bauaufsichtsbehörde"}
BAUANTRAEGE: list[dict[str, Any]] = [
    {
        "bauherr": {"vorname": "Jürgen", "familienname": "Groß"},
        "ort": "Siegburg",
        "flurstueck": {"gemarkung": "Wolsdorf", "flur": "12", "zaehler": "345", "nenner": "2"},
        "bezeichnung": "Neubau eines Einfamilienhauses mit Garage",
    },
    {
        "bauherr": {"vorname": "Małgorzata", "familienname": "Wiśniewska"},
        "ort": "Alfter",
        "flurstueck": {"gemarkung": "Oedekoven", "flur": "3", "zaehler": "118"},
        "bezeichnung": "Anbau eines Wintergartens",
    },
    # one submitted without its mandatory Bauvorhaben: refused with an XBau 1100 back to the portal
    {"bauherr": {"vorname": "Theo", "familienname": "Kröger"}, "ort": "Troisdorf", "invalid": True},
]
ACS_URL = "https://formulare.rhein-sieg-kreis.example/bundid/acs"


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


def mappings_dir() -> Path:
    """The example mapping files: ./config/mappings, else the source tree's."""
    for candidate in (Path("config/mappings"), Path(__file__).resolve().parents[1] / "config" / "mappings"):
        if (candidate / "jagd-und-fischerei.yaml").is_file():
            return candidate.resolve()
    raise FileNotFoundError("config/mappings not found: run the demo from the Aktenhub source tree")


def schemas_dir() -> Path:
    """The official schemas (XTA, XBau, xdomea): $AKTENHUB_SCHEMAS, else ../shared/reference."""
    return require_schema_directory(containing="xta/XTA.wsdl", purpose="the demo")


def demo_settings(
    data: Path, port: int, sims: dict[str, str], mappings: Path, schemas: Path
) -> dict[str, Any]:
    """The demo's configuration: FormCycle -> (BundID) -> mapping -> Enaio -> mailbox, per service group."""
    enaio_url = sims["enaio"]
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
        "store": f"sqlite:///{data / 'journal.db'}",
        "schemas": str(schemas),
        "blobs": str(data / "blobs"),
        "server": {
            "listen": f"127.0.0.1:{port}",
            "admin_tokens": [{"name": "demo", "token": "${AKTENHUB_DEMO_ADMIN_TOKEN}", "role": "admin"}],
        },
        "connectors": {
            "formcycle": {
                "type": "formcycle",
                "token": "${FORMCYCLE_TOKEN}",
                "id_field": "vorgang_id",
                "applicant_fields": applicant,
            },
            "enaio": {
                "type": "enaio",
                "base_url": enaio_url,
                "api": "dms",
                "username": "aktenhub",
                "password": "${ENAIO_PASSWORD}",
                "object_types": [
                    "Personenakte",
                    "Vorgang",
                    "Antrag",
                    "Anlage",
                    "Originalantrag",
                    "Bauakte",
                    "Bauantrag",
                    "Bauvorlage",
                ],
                "max_concurrency": 4,
            },
            "bundid": {
                "type": "bundid",
                "mode": "saml",
                "idp_metadata": str(data / "bundid-idp-metadata.xml"),
                "sp_entity_id": SP_ENTITY_ID,
                "acs_url": ACS_URL,
            },
            "postfach": {
                "type": "zbp",
                "base_url": sims["zbp"],
                "author_key": f"file:{data / 'zbp-author.key.pem'}",
                "author_certificate": str(data / "zbp-author.crt.pem"),
                "sender_name": "Rhein-Sieg-Kreis",
                "services": {"jagdschein": "Jagdschein", "fischereischein": "Fischereischein"},
            },
            "bauportal": {
                "type": "bauportal-nrw",
                "poll_seconds": 1,
                "authority": AUTHORITY,
                "xta": {"url": sims["xta"], "account": {"identifier": XTA_ACCOUNT}},
            },
            "antworten": {
                "type": "bauportal-nrw-answers",
                "authority": AUTHORITY,
                "xta": {"url": sims["xta"], "account": {"identifier": XTA_ACCOUNT}},
            },
            "xdomea": {
                "type": "xdomea",
                "mode": "http",
                "url": f"{sims['xdomea']}/xdomea/import",
                # The DMS confirms each import (0629/0630); the delivery completes on its 0630.
                "receipt_requested": True,
                "answers_url": f"{sims['xdomea']}/xdomea/answers",
                "username": "aktenhub",
                "password": "${XDOMEA_PASSWORD}",
                "sender": {
                    "behoerdenschluessel": "05382000",
                    "institution": "Rhein-Sieg-Kreis",
                    "organisationseinheit": "Amt 63 Bauaufsicht",
                },
                "receiver": {
                    "behoerdenschluessel": "05382000",
                    "institution": "Rhein-Sieg-Kreis",
                    "organisationseinheit": "Amt 10 Zentrale Dienste (DMS)",
                },
            },
            "receipts": {"type": "log"},
        },
        "routes": [
            {
                "name": "jagd-und-fischerei",
                "from": "formcycle",
                "when": {"service": list(BUNDID_SERVICES)},
                "identity": {"via": "bundid", "min_level": "substantiell"},
                "map": str(mappings / "jagd-und-fischerei.yaml"),
                "to": ["enaio"],
                "notify": ["postfach", "receipts"],
            },
            {
                "name": "grabungserlaubnis",
                "from": "formcycle",
                "when": {"service": "grabungserlaubnis"},
                "map": str(mappings / "grabungserlaubnis.yaml"),
                "to": ["enaio"],
                "notify": ["receipts"],
            },
            {
                "name": "bauantrag",
                "from": "bauportal",
                "map": str(mappings / "bauantrag.yaml"),
                "to": ["enaio", "xdomea"],
                "notify": ["antworten", "receipts"],
            },
            {
                "name": "kindertagespflege",
                "from": "formcycle",
                "when": {"service": "kindertagespflege"},
                "map": str(mappings / "kindertagespflege.yaml"),
                "to": ["enaio"],
                "notify": ["receipts"],
            },
        ],
    }


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
        f"{url}/intake/formcycle/{sample.service}", data=form, headers={"X-Aktenhub-Token": token}
    ) as resp:
        body = await resp.json()
        if resp.status not in (200, 202):
            raise RuntimeError(f"intake answered {resp.status}: {body.get('error')}")
        return str(body["application_id"])


def _log_to_file(path: Path) -> list[logging.Handler]:
    """Send the hub's log lines to a file; returns the handlers it replaced.

    The console shows progress and the summary; the log goes beside the journal.
    """
    root = logging.getLogger()
    previous = list(root.handlers)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(root.handlers[0].formatter if root.handlers else TextFormatter())
    root.handlers[:] = [handler]
    return previous


def _fresh_directory(path: Path) -> None:
    # Each demo run starts from an empty journal, so its applications are new, not duplicates.
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)


@dataclass
class _Services:
    hub: Hub
    hub_url: str
    sims: dict[str, str]  # simulator name -> URL
    form_token: str
    admin_token: str
    runners: list[web.AppRunner]


def _author_key(directory: Path) -> None:
    """A key pair and self-signed certificate for the mailbox messages' signed envelope."""
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Aktenhub Demo Rhein-Sieg-Kreis")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    key_path = directory / "zbp-author.key.pem"
    key_path.touch(mode=0o600)
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    (directory / "zbp-author.crt.pem").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))


def _listen(port: int, what: str) -> socket.socket:
    """A listening socket on 127.0.0.1 (port 0: one the system picks), raising OSError naming it.

    Binding before anything is built lets a simulator know its own URL (BundID puts it into its
    metadata) and leaves no gap between choosing a free port and taking it.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        sock.listen(128)
    except (OSError, OverflowError) as exc:
        sock.close()
        cause = exc.strerror if isinstance(exc, OSError) else "no such port"
        raise OSError(f"cannot listen on 127.0.0.1:{port} for {what}: {cause}") from None
    return sock


def _url(sock: socket.socket) -> str:
    return f"http://127.0.0.1:{sock.getsockname()[1]}"


async def _serve(
    app: web.Application | web.AppRunner, sock: socket.socket, runners: list[web.AppRunner]
) -> str:
    """Serve an application on a bound socket; returns its URL."""
    runner = (
        app if isinstance(app, web.AppRunner) else web.AppRunner(app, access_log=None, handle_signals=False)
    )
    await runner.setup()
    await web.SockSite(runner, sock).start()
    runners.append(runner)
    return _url(sock)


async def _start(data_dir: Path, port: int, sim_ports: dict[str, int]) -> _Services | str:
    """Start the simulators and the hub; a message instead when that is not possible."""
    form_token = secrets.token_urlsafe(24)
    admin_token = secrets.token_urlsafe(24)
    enaio_password = secrets.token_urlsafe(16)
    try:
        plugins = load_plugins()
        offered = plugins.simulators()
        missing = [
            n for n in ("enaio", "bundid", "zbp", "xta", "xdomea", "bauportal-nrw") if n not in offered
        ]
        if missing:
            return f"plugins missing for the simulators {', '.join(missing)}: run `make demo`"
        mappings = mappings_dir()
        schemas = schemas_dir()
    except (PluginError, FileNotFoundError) as exc:
        return str(exc)
    xdomea_password = secrets.token_urlsafe(16)
    await asyncio.to_thread(_author_key, data_dir)
    socks: dict[str, socket.socket] = {}
    try:
        for name, sim_port in sim_ports.items():
            socks[name] = _listen(sim_port, f"the {name} simulator")
        hub_sock = _listen(port, "the hub")
    except OSError as exc:
        for sock in socks.values():
            sock.close()
        return f"{exc} (ports: --port, --enaio-port; the others follow it; 0 picks free ones)"
    runners: list[web.AppRunner] = []
    sims: dict[str, str] = {}
    apps = {
        "enaio": offered["enaio"].make_app(
            users={"aktenhub": enaio_password}, content_dir=str(data_dir / "enaio")
        ),
        "bundid": offered["bundid"].make_app(
            sp_entity_id=SP_ENTITY_ID,
            acs_url=ACS_URL,
            base_url=_url(socks["bundid"]),
            metadata_file=str(data_dir / "bundid-idp-metadata.xml"),
        ),
        "zbp": offered["zbp"].make_app(),
        "xta": offered["xta"].make_app(schemas=str(schemas), data_dir=str(data_dir / "xta")),
        "xdomea": offered["xdomea"].make_app(schemas=str(schemas), users={"aktenhub": xdomea_password}),
        "bauportal-nrw": offered["bauportal-nrw"].make_app(xta_url=_url(socks["xta"]), reader=XTA_ACCOUNT),
    }
    for name, app in apps.items():
        sims[name] = await _serve(app, socks[name], runners)
    port = hub_sock.getsockname()[1]
    env = {
        **os.environ,
        "FORMCYCLE_TOKEN": form_token,
        "AKTENHUB_DEMO_ADMIN_TOKEN": admin_token,
        "ENAIO_PASSWORD": enaio_password,
        "XDOMEA_PASSWORD": xdomea_password,
    }
    try:
        config = config_from_dict(demo_settings(data_dir, port, sims, mappings, schemas), plugins, env=env)
    except ConfigError as exc:
        hub_sock.close()
        for runner in runners:
            await runner.cleanup()
        return f"demo configuration invalid: {exc}"
    hub = Hub(config, plugins)
    await hub.start()
    hub_url = await _serve(make_runner(hub), hub_sock, runners)
    runners.insert(0, runners.pop())  # the hub stops taking submissions first
    return _Services(hub, hub_url, sims, form_token, admin_token, runners)


async def run_demo(data_dir: Path, port: int, once: bool, enaio_port: int = 8095) -> int:
    """Run the demo; returns the process exit code."""
    busy = in_use(data_dir / "journal.db")
    if busy is not None:
        # Wiping the directory would pull the journal from under the hub that owns it.
        console.print(f"[red]demo cannot start:[/] {escape(str(busy))} (try --data)", highlight=False)
        return 2
    await asyncio.to_thread(_fresh_directory, data_dir)
    previous = _log_to_file(data_dir / "hub.log")
    try:
        return await _run(data_dir, port, once, enaio_port)
    finally:
        for handler in logging.getLogger().handlers:
            handler.close()
        logging.getLogger().handlers[:] = previous


async def _run(data_dir: Path, port: int, once: bool, enaio_port: int) -> int:
    # The other simulators take the ports after Enaio's; with 0 each gets one the system picks.
    names = ("enaio", "bundid", "zbp", "xta", "xdomea", "bauportal-nrw")
    ports = {name: enaio_port + i if enaio_port else 0 for i, name in enumerate(names)}
    started = await _start(data_dir, port, ports)
    if isinstance(started, str):
        console.print(f"[red]demo cannot start:[/] {started}")
        return 2
    console.rule("[bold]Aktenhub demo: FormCycle + BundID → Aktenhub → Enaio (e-file) + Postfach")
    sims = " · ".join(f"{name} {url}" for name, url in started.sims.items())
    console.print(f"hub {started.hub_url} · simulators: {sims}")
    console.print(f"journal, files and log under {data_dir}/")
    try:
        return await _drive(started, once)
    finally:
        for runner in started.runners:
            await runner.cleanup()
        await started.hub.stop()


FINAL = (ApplicationState.COMPLETED, ApplicationState.DEAD, ApplicationState.REJECTED)


async def _drive(svc: _Services, once: bool) -> int:
    todo = samples()
    first, renewal = todo[:-1], todo[-1:]
    ids: dict[str, Sample] = {}
    portal: dict[str, bool] = {}  # XBau message id -> submitted invalid on purpose
    columns = (
        TextColumn("{task.description:<38}"),
        BarColumn(),
        TextColumn("{task.completed:>2}/{task.total}"),
    )
    async with aiohttp.ClientSession() as session:
        with Progress(*columns, console=console) as progress:
            sent = progress.add_task("FormCycle submissions received", total=len(todo))
            filed = progress.add_task("filed in the e-file (Enaio)", total=len(todo))

            async def submit(batch: list[Sample]) -> None:
                gate = asyncio.Semaphore(4)  # a few citizens at once, like a busy morning

                async def one(sample: Sample) -> None:
                    async with gate:
                        app_id = await _post(session, svc.hub_url, svc.form_token, sample, svc.sims["bundid"])
                        ids[app_id] = sample
                        progress.advance(sent)

                await asyncio.gather(*(one(s) for s in batch))

            async def settle() -> None:
                while True:
                    rows = await svc.hub.journal.list_applications(
                        ApplicationFilter(ids=tuple(ids)), limit=len(ids)
                    )
                    progress.update(filed, completed=sum(r.state in FINAL for r in rows))
                    if all(r.state in FINAL for r in rows):
                        return
                    await asyncio.sleep(0.1)  # display refresh, not synchronisation

            arriving = progress.add_task("Bauportal.NRW → XTA → filed", total=len(BAUANTRAEGE))
            for antrag in BAUANTRAEGE:  # the portal delivers into the Bauaufsicht's XTA mailbox
                async with session.post(f"{svc.sims['bauportal-nrw']}/sim/bauantrag", json=antrag) as resp:
                    if resp.status != 201:
                        raise RuntimeError(f"Bauportal simulator: {resp.status} {await resp.text()}")
                    # the XBau message id becomes the application's external id
                    portal[(await resp.json())["nachricht_uuid"]] = bool(antrag.get("invalid"))
            await submit(first)
            await settle()
            # The renewal of a licence comes later and finds the applicant's existing Akte.
            await submit(renewal)
            await settle()
            while True:  # the Bauanträge arrive by polling the XTA mailbox
                arrived = await svc.hub.journal.list_applications(ApplicationFilter(service="bauantrag"))
                done = sum(r.state in FINAL for r in arrived)
                progress.update(arriving, completed=done)
                if done == len(BAUANTRAEGE):
                    break
                await asyncio.sleep(0.1)  # display refresh, not synchronisation
    return await _summary(svc, ids, portal, once)


async def _mailbox_count(session: aiohttp.ClientSession, zbp_url: str, handle: str | None) -> str:
    if not handle:
        return "-"
    async with session.get(f"{zbp_url}/_sim/mailboxes/{handle}") as resp:
        if resp.status != 200:
            return "0"
        box = await resp.json()
    messages = box.get("messages", [])
    statuses = box.get("status_updates", box.get("statuses", []))
    return f"{len(messages)} msg, {len(statuses)} status"


async def _summary(svc: _Services, ids: dict[str, Sample], portal: dict[str, bool], once: bool) -> int:
    table = Table(
        "service",
        "applicant",
        "identity",
        "state",
        "Aktenzeichen",
        "Akte",
        "Vorgang",
        "docs",
        "answer",
        title="Applications",
        title_justify="left",
    )
    ok = True
    akten: set[str] = set()
    rows = await svc.hub.journal.list_applications(ApplicationFilter(ids=tuple(ids)), limit=len(ids))
    rows += await svc.hub.journal.list_applications(ApplicationFilter(service="bauantrag"))
    async with aiohttp.ClientSession() as session:
        for summary in sorted(rows, key=lambda r: (r.service == "bauantrag", r.received_at)):
            app = await svc.hub.journal.get_application(summary.id)
            assert app is not None
            sample = ids.get(summary.id)
            # refused: the BundID login with user name only, the Bauantrag without Bauvorhaben
            refused = (
                (sample.bundid_means == "Benutzername") if sample else portal.get(app.external_id, False)
            )
            expected = ApplicationState.REJECTED if refused else ApplicationState.COMPLETED
            ok &= summary.state == expected
            correlations = app.correlations
            documents = correlations.get("enaio.documents", "")
            akte = correlations.get("enaio.akte", "-")
            shown_akte = f"{akte} (existing)" if akte in akten and akte != "-" else akte
            akten.add(akte)
            if summary.state == ApplicationState.COMPLETED:
                state = f"[green]{summary.state}[/]"
            elif summary.state == ApplicationState.REJECTED:
                state = f"[yellow]{summary.state}[/]: {summary.error}"
            else:
                state = f"[red]{summary.state}[/]: {summary.error}"
            identity = app.identity
            level = f"{identity.level.value} ({identity.means})" if identity.level else "-"
            fallback = f"{sample.fields['vorname']} {sample.fields['nachname']}" if sample else "-"
            if summary.service != "bauantrag":
                answer = await _mailbox_count(session, svc.sims["zbp"], app.applicant.mailbox)
            else:
                answer = "XBau 1100" if summary.state == ApplicationState.REJECTED else "XBau 1120, 1121"
            table.add_row(
                summary.service,
                app.applicant.display_name or fallback,
                level,
                state,
                app.file_number or "-",
                shown_akte,
                correlations.get("enaio.vorgang", "-"),
                str(len(documents.split(","))) if documents else "0",
                answer,
            )
    console.print(table)
    console.print(f"Enaio objects:    curl {svc.sims['enaio']}/_sim/objects")
    console.print(f"BundID mailboxes: curl {svc.sims['zbp']}/_sim/mailboxes")
    console.print(f"XBau answers:     curl {svc.sims['bauportal-nrw']}/sim/answers")
    console.print(f"xdomea imports:   curl {svc.sims['xdomea']}/_sim/imports")
    console.print(
        f"admin API:        curl -H 'Authorization: Bearer {svc.admin_token}' "
        f"{svc.hub_url}/api/v1/applications"
    )
    console.print(f"metrics:          {svc.hub_url}/metrics    health: {svc.hub_url}/readyz")
    console.print(
        f"FormCycle:        POST {svc.hub_url}/intake/formcycle/<service> "
        f"(header X-Aktenhub-Token: {svc.form_token})"
    )
    if once:
        return 0 if ok else 1
    console.print("[bold]serving; Ctrl-C stops the demo[/]")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    return 0 if ok else 1
