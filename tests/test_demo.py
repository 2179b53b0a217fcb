"""`aktenhub demo`: the composed plugin scenarios file every application; the core names no plugin."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import hub.builtins
import hub.demo
from hub import hookimpl
from hub.cli import main
from hub.demo import ScenarioError, compose, demo_settings, run_demo
from hub.journal import ApplicationFilter, SqliteJournal
from hub.models import Application, ApplicationState
from hub.plugins import load_plugins
from hub.scenarios import DemoRun, DemoScenario, DemoSite, Expectation
from hub.testing import fakes


async def filed(journal_path: Path) -> list[Application]:
    journal = SqliteJournal(journal_path)
    await journal.open()
    try:
        rows = await journal.list_applications(ApplicationFilter(), limit=100)
        states = sorted(r.state for r in rows)
        # 25 FormCycle/XTA applications; issue 13's ways in: 2 FIT-Connect, 3 e-mail, 5 scanned, 6 webhook
        assert states == sorted([ApplicationState.COMPLETED] * 41 + [ApplicationState.REJECTED] * 2)
        xbau, login = sorted(
            (r for r in rows if r.state == ApplicationState.REJECTED), key=lambda r: r.service
        )
        assert login.error == "Vertrauensniveau zu niedrig: untergeordnet erreicht, substantiell erforderlich"
        assert xbau.service == "bauantrag" and "schemakonform" in (xbau.error or "")
        apps = [await journal.get_application(r.id) for r in sorted(rows, key=lambda r: r.received_at)]
        return [a for a in apps if a is not None and a.id not in (login.id, xbau.id)]
    finally:
        await journal.close()


def test_demo_files_every_application(tmp_path: Path) -> None:
    args = ["demo", "--once", "--port", "0", "--enaio-port", "0"]
    result = CliRunner().invoke(main, [*args, "--data", str(tmp_path / "demo")], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    # The console and how to log in at the demo's identity provider, whose address is listed too.
    output = " ".join(result.output.split())
    assert re.search(
        r"console: http://127\.0\.0\.1:\d+/ui/ · „Anmelden mit dem Kreis-Konto“ as anna\.admin", output
    )
    assert re.search(r"oidc http://127\.0\.0\.1:\d+", output)
    apps = asyncio.run(filed(tmp_path / "demo" / "journal.db"))
    assert {a.service for a in apps} == {
        "jagdschein",
        "fischereischein",
        "grabungserlaubnis",
        "kindertagespflege",
        "bauantrag",
        "wasserrecht",
        "awsv-anlage",
        "verpflichtungserklaerung",
        "aufenthaltstitel",
        "wohngeld",
        "email",
        "posteingang-scan",
        "posteingang-widerspruch",
        "posteingang-korb",
        "hundeanmeldung",
    }
    # FIT-Connect: an EfA service's Wohngeld submissions, accepted upstream only after the intake, filed
    # into the Wohngeldakte and the Wohngeld Fachverfahren's import folder.
    wohngeld = [a for a in apps if a.source == "efa"]
    assert len(wohngeld) == 2
    for app in wohngeld:
        assert (app.file_number or "").startswith("50.3-")
        assert {"fitconnect.case", "fitconnect.submission", "wohngeld-fachverfahren"} <= set(app.correlations)
    # The Funktionspostfach: three e-mails, two into the Ausländerakte their subject names.
    mails = [a for a in apps if a.source == "funktionspostfach"]
    assert len(mails) == 3 and sum((a.file_number or "").startswith("32.1-AT-") for a in mails) == 2
    # The scan station: three documents into existing Ausländerakten, two into the tray, none opened an Akte.
    scanned = [a for a in apps if a.source == "scanstation"]
    assert len(scanned) == 5 and all("enaio-scan.documents" in a.correlations for a in scanned)
    assert sum(a.service == "posteingang-korb" for a in scanned) == 1  # no key at all: the source's tray
    # Form Solutions (signed JSON) and a service portal (multipart + XML): the re-send was no 7th.
    dogs = [a for a in apps if a.service == "hundeanmeldung"]
    assert sorted(a.source for a in dogs) == ["formsolutions"] * 3 + ["serviceportal"] * 3
    assert all((a.file_number or "").startswith("22.3-") for a in dogs)
    apps = [a for a in apps if a.source in ("formcycle", "bauportal", "abh-posteingang")]
    bauantraege = [a for a in apps if a.service == "bauantrag"]
    assert len(bauantraege) == 2
    for app in bauantraege:  # from Bauportal.NRW over XTA into the Bauakte and the xdomea DMS
        # Mikropro, the Bauaufsicht's Fachverfahren, assigned the Aktenzeichen (its own format)
        assert app.file_number and app.file_number.startswith("63-BA-")
        assert app.correlations["mikropro.case_number"] == app.file_number
        assert len(app.correlations["enaio.documents"].split(",")) == 5  # PDF, 3 Anlagen, original XML
        assert any(key.startswith("xdomea") for key in app.correlations)
    # The Umweltamt's two services went into K3's import folder and its answers came back: the case
    # number as a correlation, the Aktenzeichen the hub's own (the scenario's check verified enaio and
    # the mailbox; a problem there would have failed the demo).
    umweltamt = {a.service: a for a in apps if a.service in ("wasserrecht", "awsv-anlage")}
    assert {a.correlations["umwelt-fv.case_number"] for a in umweltamt.values()} == {"UWB-00001", "UWB-00002"}
    assert (umweltamt["wasserrecht"].file_number or "").startswith("66.2-")
    assert (umweltamt["awsv-anlage"].file_number or "").startswith("66.3-")
    for app in umweltamt.values():
        assert any(k.startswith("enaio.answer-") for k in app.correlations)  # the decision filed
    # The Verpflichtungserklärung went to ADVIS over XTA as XAusländer; ADVIS's case number came back.
    (ve,) = [a for a in apps if a.service == "verpflichtungserklaerung"]
    assert ve.correlations["advis.case_number"].startswith("ABH-")
    assert ve.file_number and ve.file_number.startswith("32.1-VE-")
    # The OZG service's residence-title application (XAusländer over XTA): in the Ausländerakte, forwarded
    # to ADVIS as it came (ADVIS's answer named it by its own id), ADVIS's case number back.
    (aufenthalt,) = [a for a in apps if a.service == "aufenthaltstitel"]
    assert aufenthalt.correlations["advis.original"] == aufenthalt.external_id
    assert aufenthalt.correlations["advis.case_number"].startswith("ABH-")
    assert aufenthalt.file_number and aufenthalt.file_number.startswith("32.1-AT-")
    apps = [a for a in apps if a.service != "bauantrag"]
    for app in apps:
        assert app.file_number
        assert len(app.correlations["enaio.documents"].split(",")) == 4  # rendition, 2 attachments, original
        if app.service in ("jagdschein", "fischereischein"):  # BundID services: verified identity
            assert app.identity.verified and app.identity.level in ("substantiell", "hoch")
            assert app.applicant.mailbox
    # Maria Neumann (BundID test person U01) applied for a Jagdschein and later for its renewal
    first, renewal = [a for a in apps if a.applicant.family_name == "Neumann" and a.service == "jagdschein"]
    assert renewal.correlations["enaio.akte"] == first.correlations["enaio.akte"]
    assert renewal.correlations["enaio.vorgang"] != first.correlations["enaio.vorgang"]
    assert renewal.file_number == first.file_number
    log = (tmp_path / "demo" / "hub.log").read_text(encoding="utf-8")
    for name in ("Weber", "Bittel", "Neumann", "Çelik", "Müßig", "Kovalenko", "Petrović", "Nowak"):  # no PII
        assert name not in log


class _Scenario(DemoScenario):
    def __init__(self, name: str, requires: tuple[str, ...] = (), **connectors: Any) -> None:
        self.name = name
        self.requires = requires
        self._connectors = connectors

    def connectors(self, site: DemoSite) -> dict[str, dict[str, Any]]:
        return self._connectors

    def routes(self, site: DemoSite) -> list[dict[str, Any]]:
        return [{"name": f"{self.name}-route", "from": "x", "to": ["y"]}]


def test_scenarios_run_after_those_they_require_ties_by_name() -> None:
    scenarios = [
        _Scenario("formcycle", ("enaio", "bundid")),
        _Scenario("zbp"),
        _Scenario("enaio"),
        _Scenario("fv-rest", ("formcycle",)),
        _Scenario("bundid"),
    ]
    assert [s.name for s in compose(scenarios)] == ["bundid", "enaio", "formcycle", "fv-rest", "zbp"]
    # one scenario and what it needs, directly or not
    assert [s.name for s in compose(scenarios, only=["fv-rest"])] == [
        "bundid",
        "enaio",
        "formcycle",
        "fv-rest",
    ]
    with pytest.raises(ScenarioError, match=r"no demo scenario named fv-soap \(installed: bundid, enaio"):
        compose(scenarios, only=["fv-soap"])


def test_scenarios_that_do_not_compose_are_refused_with_the_reason() -> None:
    with pytest.raises(ScenarioError, match="'formcycle' needs enaio, which no installed plugin"):
        compose([_Scenario("formcycle", ("enaio",))])
    with pytest.raises(ScenarioError, match="in a circle: a, b"):
        compose([_Scenario("a", ("b",)), _Scenario("b", ("a",)), _Scenario("c")])
    with pytest.raises(ScenarioError, match="two plugins contribute a demo scenario named 'a'"):
        compose([_Scenario("a"), _Scenario("a")])


def test_a_scenario_extends_the_connectors_of_those_it_requires(tmp_path: Path) -> None:
    site = DemoSite(data_dir=tmp_path, schemas=tmp_path, hub_url="http://127.0.0.1:1", urls={})
    enaio = _Scenario("enaio", enaio={"type": "enaio", "object_types": ["Vorgang"]})
    form = _Scenario(
        "form", ("enaio",), enaio={"object_types": ["Personenakte", "Vorgang"]}, log={"type": "log"}
    )
    bau = _Scenario("bau", ("enaio",), enaio={"object_types": ["Bauakte"]}, log={"type": "log"})
    settings = demo_settings(compose([form, bau, enaio]), site, 0)
    assert settings["connectors"] == {
        "enaio": {"type": "enaio", "object_types": ["Vorgang", "Bauakte", "Personenakte"]},
        "log": {"type": "log"},
    }
    assert [r["name"] for r in settings["routes"]] == ["enaio-route", "bau-route", "form-route"]
    clash = _Scenario("other", ("enaio",), enaio={"type": "xdomea"})
    with pytest.raises(ScenarioError, match=r"disagree on connectors\.enaio\.type: 'enaio' and 'xdomea'"):
        demo_settings([enaio, clash], site, 0)
    twice = _Scenario("enaio-route-again")
    twice.routes = lambda site: [{"name": "enaio-route"}]  # type: ignore[method-assign]
    with pytest.raises(ScenarioError, match="'enaio' and 'enaio-route-again' both add route 'enaio-route'"):
        demo_settings([enaio, twice], site, 0)


def test_a_scenario_extends_the_routes_of_those_it_requires(tmp_path: Path) -> None:
    site = DemoSite(data_dir=tmp_path, schemas=tmp_path, hub_url="http://127.0.0.1:1", urls={})
    bau = _Scenario("bau", y={"type": "log"})
    fv = _Scenario("fv", ("bau",), fv={"type": "log"})
    fv.route_extensions = lambda site: {  # type: ignore[method-assign]
        "bau-route": {"to": ["fv"], "on_answer": {"notify": ["y"]}, "from": "z"}
    }
    settings = demo_settings(compose([fv, bau]), site, 0)
    assert settings["routes"] == [
        {"name": "bau-route", "from": "z", "to": ["y", "fv"], "on_answer": {"notify": ["y"]}},
        {"name": "fv-route", "from": "x", "to": ["y"]},
    ]
    fv.route_extensions = lambda site: {"no-route": {"to": ["fv"]}}  # type: ignore[method-assign]
    with pytest.raises(ScenarioError, match="'fv' extends route 'no-route', which none adds"):
        demo_settings(compose([fv, bau]), site, 0)


def test_the_core_demo_names_no_plugin() -> None:
    plugins = load_plugins()
    names = {s.name for s in plugins.demo_scenarios()} | set(plugins.simulators())
    names |= {kind for info in plugins.info() if info.name != "builtins" for kind in info.kinds}
    assert {"enaio", "formcycle", "bundid", "zbp", "xta", "xdomea", "bauportal-nrw"} <= names
    # The core's own simulator (the console's identity provider) is no plugin's.
    names -= {s.name for s in hub.builtins.aktenhub_simulators()}
    source = Path(hub.demo.__file__).read_text(encoding="utf-8").lower()
    # Whole words: the connector type `sql` is no plugin's name in "sqlite".
    named = [name for name in sorted(names) if re.search(rf"\b{re.escape(name.lower())}\b", source)]
    assert named == []


class _RecordingScenario(DemoScenario):
    """A third party's scenario: JSON submissions into the recording sink, one of them found wanting."""

    name = "recording"
    inbound = "JSON"
    outbound = "recorder"
    columns = ("form",)

    def connectors(self, site: DemoSite) -> dict[str, dict[str, Any]]:
        return {"json": {"type": "test-json"}, "recorder": {"type": "test-recording"}}

    def routes(self, site: DemoSite) -> list[dict[str, Any]]:
        return [{"name": "recorded", "from": "json", "to": ["recorder"]}]

    async def submit(self, run: DemoRun) -> None:
        for n in (1, 2):
            body = {"id": f"sample-{n}", "form": {"n": str(n)}}
            async with run.http.post(f"{run.site.hub_url}/intake/json/probe", json=body) as resp:
                assert resp.status == 202, await resp.text()
            # found by the id the source gave it, as a polled source's applications are
            run.expect(Expectation(ApplicationState.COMPLETED, source="json", external_id=f"sample-{n}"))

    async def describe(
        self, application: Application, state: ApplicationState, run: DemoRun
    ) -> dict[str, str]:
        return {"form": f"n={application.form['n']}"}

    async def check(self, application: Application, state: ApplicationState, run: DemoRun) -> list[str]:
        stored = await run.application(application.id)
        assert stored is not None
        return ["the recorder lost it"] if stored.form["n"] == "2" else []


class _RecordingPlugin:
    @hookimpl
    def aktenhub_demo_scenarios(self) -> list[DemoScenario]:
        return [_RecordingScenario()]


async def test_a_third_party_scenario_runs_and_its_check_fails_the_demo(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plugins = load_plugins([fakes, _RecordingPlugin()], entry_points=False)
    code = await run_demo(tmp_path / "demo", port=0, once=True, simulator_port=0, plugins=plugins)
    out = " ".join(capsys.readouterr().out.split())  # as read, not as wrapped to the terminal
    assert code == 1, out
    assert "Aktenhub demo: JSON → Aktenhub → recorder" in out
    assert "n=1" in out and "n=2" in out
    assert "not as expected:" in out and "the recorder lost it" in out
    assert out.count("not as expected:") == 1


class _BrokenScenario(DemoScenario):
    name = "broken"

    async def submit(self, run: DemoRun) -> None:
        raise RuntimeError("simulator answered 500")


class _BrokenPlugin:
    @hookimpl
    def aktenhub_demo_scenarios(self) -> list[DemoScenario]:
        return [_BrokenScenario()]


async def test_a_scenario_that_cannot_send_ends_the_demo_with_its_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plugins = load_plugins([_BrokenPlugin()], entry_points=False)
    code = await run_demo(tmp_path / "demo", port=0, once=True, simulator_port=0, plugins=plugins)
    out = " ".join(capsys.readouterr().out.split())
    assert code == 1, out
    assert (
        "demo failed: scenario 'broken' could not send its samples: RuntimeError: simulator answered 500"
        in out
    )
    assert "Applications" not in out  # no summary of a run that did not happen
