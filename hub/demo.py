"""`aktenhub demo`: the hub on the embedded default with sample FormCycle submissions, one command.

Starts a hub (SQLite journal, blob store and import directory under the data directory) with the
FormCycle → file-drop route, posts sample applications of several services of a Kreis the way FormCycle's
HTTP-Request action sends them, shows their progress and a summary, then keeps serving until Ctrl-C.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import shutil
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn
from rich.table import Table

from hub.config import config_from_dict
from hub.errors import ConfigError, PluginError
from hub.http import make_app
from hub.journal import ApplicationFilter
from hub.models import ApplicationState
from hub.plugins import load_plugins
from hub.runtime import Hub

console = Console()


@dataclass(frozen=True)
class Sample:
    """One sample submission as FormCycle would post it."""

    service: str
    vorgang_id: str
    fields: dict[str, str | list[str]]
    files: dict[str, tuple[str, bytes]]  # form element -> (file name, content)


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


def samples() -> list[Sample]:
    """About twenty applications of a Kreis: hunting and fishing licences, excavation, child day care.

    The last one is Jürgen Groß again, renewing his Jagdschein: it lands in the Akte of his first one.
    """
    plan = [(person, SERVICES[n % len(SERVICES)]) for n, person in enumerate(PEOPLE)]
    plan.append((PEOPLE[0], "jagdschein"))
    out = []
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
        out.append(Sample(service=service, vorgang_id=str(fields["vorgang_id"]), fields=fields, files=files))
    return out


def demo_settings(data: Path, port: int) -> dict[str, Any]:
    """The demo's configuration: the example configuration's shape, under the data directory."""
    return {
        "store": f"sqlite:///{data / 'journal.db'}",
        "blobs": str(data / "blobs"),
        "server": {
            "listen": f"127.0.0.1:{port}",
            "admin_tokens": [{"name": "demo", "token": "${AKTENHUB_DEMO_ADMIN_TOKEN}", "role": "admin"}],
        },
        "connectors": {
            "formcycle": {"type": "formcycle", "token": "${FORMCYCLE_TOKEN}", "id_field": "vorgang_id"},
            "import": {"type": "filedrop", "path": str(data / "import")},
        },
        "routes": [{"name": "all-forms", "from": "formcycle", "to": ["import"]}],
    }


async def _post(session: aiohttp.ClientSession, url: str, token: str, sample: Sample) -> str:
    form = aiohttp.FormData()
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


def _log_to_file(path: Path) -> None:
    # The console shows progress and the summary; the hub's own log lines go to a file beside them.
    root = logging.getLogger()
    handler = logging.FileHandler(path, encoding="utf-8")
    if root.handlers:
        handler.setFormatter(root.handlers[0].formatter)
    root.handlers[:] = [handler]


def _fresh_directory(path: Path) -> None:
    # Each demo run starts from an empty journal, so its applications are new, not duplicates.
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)


async def run_demo(data_dir: Path, port: int, once: bool) -> int:
    """Run the demo; returns the process exit code."""
    await asyncio.to_thread(_fresh_directory, data_dir)
    _log_to_file(data_dir / "hub.log")
    form_token = secrets.token_urlsafe(24)
    admin_token = secrets.token_urlsafe(24)
    env = {**os.environ, "FORMCYCLE_TOKEN": form_token, "AKTENHUB_DEMO_ADMIN_TOKEN": admin_token}
    try:
        plugins = load_plugins()
        config = config_from_dict(demo_settings(data_dir, port), plugins, env=env)
    except (ConfigError, PluginError) as exc:
        console.print(f"[red]demo cannot start:[/] {exc}")
        return 2
    hub = Hub(config, plugins)
    await hub.start()
    runner = web.AppRunner(make_app(hub), access_log=None, handle_signals=False)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", port).start()
    except OSError as exc:
        await runner.cleanup()
        await hub.stop()
        console.print(f"[red]cannot listen on 127.0.0.1:{port}:[/] {exc.strerror} (try --port)")
        return 1
    url = f"http://127.0.0.1:{port}"
    console.rule("[bold]Aktenhub demo")
    console.print(f"hub running at {url}; journal, files and log (hub.log) under {data_dir}/")
    try:
        return await _drive(hub, url, form_token, admin_token, data_dir, once)
    finally:
        await runner.cleanup()
        await hub.stop()


async def _drive(hub: Hub, url: str, form_token: str, admin_token: str, data: Path, once: bool) -> int:
    todo = samples()
    ids: dict[str, Sample] = {}
    async with aiohttp.ClientSession() as session:
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            console=console,
        ) as progress:
            sent = progress.add_task("FormCycle submissions sent", total=len(todo))
            filed = progress.add_task("delivered to the import directory", total=len(todo))
            for sample in todo:
                ids[await _post(session, url, form_token, sample)] = sample
                progress.advance(sent)
            while True:
                rows = await hub.journal.list_applications(ApplicationFilter(ids=tuple(ids)), limit=len(ids))
                final = [
                    r
                    for r in rows
                    if r.state
                    in (ApplicationState.COMPLETED, ApplicationState.DEAD, ApplicationState.REJECTED)
                ]
                progress.update(filed, completed=len(final))
                if len(final) == len(ids):
                    break
                await asyncio.sleep(0.1)  # display refresh, not synchronisation
    table = Table("service", "applicant", "FormCycle id", "state", "import folder", title="Applications")
    ok = True
    for row in sorted(rows, key=lambda r: r.received_at):
        sample = ids[row.id]
        folder = data / "import" / row.id
        ok &= row.state == ApplicationState.COMPLETED and folder.is_dir()
        table.add_row(
            sample.service,
            f"{sample.fields['vorname']} {sample.fields['nachname']}",
            sample.vorgang_id,
            f"[green]{row.state}[/]" if row.state == ApplicationState.COMPLETED else f"[red]{row.state}[/]",
            str(folder.relative_to(data)) if folder.is_dir() else "-",
        )
    console.print(table)
    console.print(f"admin API: curl -H 'Authorization: Bearer {admin_token}' {url}/api/v1/applications")
    console.print(f"metrics:   {url}/metrics    health: {url}/readyz")
    console.print(
        f"FormCycle: POST {url}/intake/formcycle/<service> with header X-Aktenhub-Token: {form_token}"
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
