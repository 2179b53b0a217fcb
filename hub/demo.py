"""`aktenhub demo`: the main job on the embedded default, one command.

Composes the demo scenarios the installed plugins contribute (hook `aktenhub_demo_scenarios`, model in
`hub.scenarios`): starts their simulators and a hub (SQLite journal and blob store under the data
directory) with their connectors and routes, lets each send its sample submissions, shows the progress
and a summary, checks that every application ended as its scenario expects, then keeps serving until
Ctrl-C. The core knows no plugin: what runs is what the plugins contribute.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import os
import shutil
import signal
import socket
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TaskID, TextColumn
from rich.table import Table

from hub.config import config_from_dict
from hub.errors import ConfigError, PluginError
from hub.http import make_runner
from hub.journal import ApplicationFilter
from hub.journal.lock import in_use
from hub.logs import TextFormatter
from hub.models import Application, ApplicationState
from hub.oidc_simulator import DEMO_ROLE_MAP
from hub.oidc_simulator import make_app as make_provider
from hub.plugins import Plugins, load_plugins
from hub.runtime import Hub
from hub.scenarios import ADMIN_TOKEN, DemoRun, DemoScenario, DemoSite, Expectation, Tally
from hub.schemas import SchemaDirectoryMissing, require_schema_directory
from hub.simulation import SERVER_SSL

# Piped into a file or CI log, rich would fold the summary table into 80 columns and cut every cell.
console = Console(width=None if sys.stdout.isatty() else 200)

FINAL = (ApplicationState.COMPLETED, ApplicationState.DEAD, ApplicationState.REJECTED)
CORE_COLUMNS = ("service", "applicant", "identity", "state", "Aktenzeichen")
POLL_SECONDS = 0.1  # how often progress is refreshed from the journal
IDP = "oidc"  # the console's identity provider among the simulators
IDP_CLIENT = "aktenhub"
IDP_SECRET = "AKTENHUB_DEMO_OIDC_SECRET"  # noqa: S105 (a name, not a secret)
# Whom the demo's provider knows (`hub.oidc_simulator.demo_users`) and the console role each gets.
DEMO_ROLES = {"anna.admin": "admin", "otto.operator": "operator", "vera.viewer": "viewer"}


class ScenarioError(Exception):
    """The installed plugins' scenarios do not compose (missing or circular requirements, conflicts)."""


def compose(scenarios: Sequence[DemoScenario], only: Sequence[str] = ()) -> list[DemoScenario]:
    """The scenarios in dependency order (each after those it `requires`), ties by name.

    With `only`: those scenarios and what they require, directly or not.
    """
    by_name: dict[str, DemoScenario] = {}
    for scenario in scenarios:
        if not scenario.name:
            raise ScenarioError(f"demo scenario {type(scenario).__qualname__} has no name")
        if scenario.name in by_name:
            raise ScenarioError(f"two plugins contribute a demo scenario named {scenario.name!r}")
        by_name[scenario.name] = scenario
    for scenario in by_name.values():
        missing = [r for r in scenario.requires if r not in by_name]
        if missing:
            raise ScenarioError(
                f"demo scenario {scenario.name!r} needs {', '.join(missing)}, which no installed plugin "
                "contributes (`make demo` installs every plugin)"
            )
    if only:
        unknown = [name for name in only if name not in by_name]
        if unknown:
            known = ", ".join(sorted(by_name)) or "none"
            raise ScenarioError(f"no demo scenario named {', '.join(unknown)} (installed: {known})")
        wanted: set[str] = set()
        todo = list(only)
        while todo:
            name = todo.pop()
            if name not in wanted:
                wanted.add(name)
                todo += by_name[name].requires
        by_name = {name: s for name, s in by_name.items() if name in wanted}
    waiting = {name: set(s.requires) for name, s in by_name.items()}
    ready = [name for name, needs in waiting.items() if not needs]
    heapq.heapify(ready)
    ordered: list[DemoScenario] = []
    while ready:
        name = heapq.heappop(ready)
        ordered.append(by_name[name])
        for other, needs in waiting.items():
            if name in needs:
                needs.discard(name)
                if not needs:
                    heapq.heappush(ready, other)
    if len(ordered) < len(by_name):
        stuck = sorted(set(by_name) - {s.name for s in ordered})
        raise ScenarioError(f"demo scenarios require each other in a circle: {', '.join(stuck)}")
    return ordered


def merge_settings(base: Any, extra: Any, path: str, *, replace: bool = False) -> Any:
    """`extra` merged into `base`: dictionaries key by key, lists joined without repeats, equal values
    (`replace`: another value replaces the base's instead of being an error)."""
    if isinstance(base, dict) and isinstance(extra, dict):
        merged = dict(base)
        for key, value in extra.items():
            merged[key] = (
                merge_settings(base[key], value, f"{path}.{key}", replace=replace) if key in base else value
            )
        return merged
    if isinstance(base, list) and isinstance(extra, list):
        return base + [item for item in extra if item not in base]
    if base != extra and not replace:
        raise ScenarioError(f"demo scenarios disagree on {path}: {base!r} and {extra!r}")
    return extra


def demo_settings(scenarios: Sequence[DemoScenario], site: DemoSite, port: int) -> dict[str, Any]:
    """The demo's configuration: the embedded default plus every scenario's connectors and routes."""
    connectors: dict[str, Any] = {}
    routes: list[dict[str, Any]] = []
    route_owner: dict[str, str] = {}
    for scenario in scenarios:
        connectors = merge_settings(connectors, scenario.connectors(site), "connectors")
        for route in scenario.routes(site):
            name = str(route.get("name"))
            if name in route_owner:
                raise ScenarioError(
                    f"demo scenarios {route_owner[name]!r} and {scenario.name!r} both add route {name!r}"
                )
            route_owner[name] = scenario.name
            routes.append(route)
    for scenario in scenarios:
        for name, extra in scenario.route_extensions(site).items():
            index = next((i for i, r in enumerate(routes) if r.get("name") == name), None)
            if index is None:
                message = f"demo scenario {scenario.name!r} extends route {name!r}, which none adds"
                raise ScenarioError(message)
            routes[index] = merge_settings(routes[index], extra, f"routes.{name}", replace=True)
    return {
        "store": f"sqlite:///{site.data_dir / 'journal.db'}",
        "schemas": str(site.schemas),
        "blobs": str(site.data_dir / "blobs"),
        "server": {
            "listen": f"127.0.0.1:{port}",
            "admin_tokens": [{"name": "demo", "token": site.secret_reference(ADMIN_TOKEN), "role": "admin"}],
        },
        "connectors": connectors,
        "routes": routes,
    }


def simulator_names(scenarios: Sequence[DemoScenario]) -> list[str]:
    """Every simulator the scenarios start, once, in scenario order (the order their ports follow)."""
    names: list[str] = []
    for scenario in scenarios:
        names += [s for s in scenario.simulators if s not in names]
    return names


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


def _listen(port: int, what: str) -> socket.socket:
    """A listening socket on 127.0.0.1 (port 0: one the system picks), raising OSError naming it.

    Binding before anything is built lets a simulator know its own URL (an identity provider puts it
    into its metadata) and leaves no gap between choosing a free port and taking it.
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


def _url(sock: socket.socket, tls: bool = False) -> str:
    return f"http{'s' if tls else ''}://127.0.0.1:{sock.getsockname()[1]}"


async def _serve(
    app: web.Application | web.AppRunner, sock: socket.socket, runners: list[web.AppRunner]
) -> None:
    """Serve an application on a bound socket (https if a simulator asks for it)."""
    runner = (
        app if isinstance(app, web.AppRunner) else web.AppRunner(app, access_log=None, handle_signals=False)
    )
    tls = runner.app.get(SERVER_SSL) if isinstance(app, web.Application) else None
    await runner.setup()
    await web.SockSite(runner, sock, ssl_context=tls).start()
    runners.append(runner)


def _identity_provider(site: DemoSite, issuer: str) -> web.Application:
    """The OpenID Connect provider the console logs the demo's people in at (`demo_users`)."""
    port = urlsplit(site.hub_url).port
    # The console may be opened as 127.0.0.1 or as localhost: both are registered.
    bases = [site.hub_url, f"http://localhost:{port}"]
    client = {
        "secret": site.secret(IDP_SECRET),
        "redirect_uris": [base + "/ui/oidc/callback" for base in bases],
        "post_logout_redirect_uris": [base + "/ui/login" for base in bases],
    }
    return make_provider(issuer=issuer, clients={IDP_CLIENT: client})


def _console_login(site: DemoSite, issuer: str) -> dict[str, Any]:
    """The console's `oidc` settings for the demo's provider (Keycloak realm roles)."""
    return {
        "issuer": issuer,
        "client_id": IDP_CLIENT,
        "client_secret": site.secret_reference(IDP_SECRET),
        "role_claim": "realm_access.roles",
        "role_map": DEMO_ROLE_MAP,
    }


@dataclass
class _Services:
    hub: Hub
    site: DemoSite
    scenarios: list[DemoScenario]
    admin_token: str
    runners: list[web.AppRunner]


async def _start(
    data_dir: Path, port: int, simulator_port: int, plugins: Plugins, scenarios: list[DemoScenario]
) -> _Services | str:
    """Start the simulators and the hub; a message instead when that is not possible."""
    offered = plugins.simulators()
    names = simulator_names(scenarios)
    unknown = [n for n in names if n not in offered]
    if unknown:
        return f"no plugin offers the simulators {', '.join(unknown)}: run `make demo`"
    try:
        schemas = require_schema_directory(purpose="the demo")
    except SchemaDirectoryMissing as exc:
        return str(exc)
    socks: dict[str, socket.socket] = {}
    try:
        # The simulators take consecutive ports from --simulator-port; with 0 each gets a free one.
        for i, name in enumerate(names):
            socks[name] = _listen(simulator_port + i if simulator_port else 0, f"the {name} simulator")
        # The console's identity provider is the core's own simulator, after the scenarios' ones.
        socks[IDP] = _listen(simulator_port + len(names) if simulator_port else 0, "the OIDC provider")
        hub_sock = _listen(port, "the hub")
    except OSError as exc:
        for sock in socks.values():
            sock.close()
        return f"{exc} (ports: --port, --simulator-port; the others follow it; 0 picks free ones)"
    site = DemoSite(
        data_dir=data_dir,
        schemas=schemas,
        hub_url=_url(hub_sock),
        urls={name: _url(sock) for name, sock in socks.items()},
    )
    admin_token = site.secret(ADMIN_TOKEN)
    runners: list[web.AppRunner] = []
    try:
        for scenario in scenarios:
            await scenario.prepare(site)
        owner = {sim: s for s in reversed(scenarios) for sim in s.simulators}
        for name in names:
            app = offered[name].make_app(**owner[name].simulator_options(name, site))
            if app.get(SERVER_SSL) is not None:
                site.urls = {**site.urls, name: _url(socks[name], tls=True)}
            await _serve(app, socks.pop(name), runners)
        issuer = f"{site.urls[IDP]}/realms/kreis"
        await _serve(_identity_provider(site, issuer), socks.pop(IDP), runners)
        settings = demo_settings(scenarios, site, hub_sock.getsockname()[1])
        settings["console"] = {"oidc": _console_login(site, issuer)}
        config = config_from_dict(settings, plugins, env={**os.environ, **site.env})
    except (ConfigError, ScenarioError, FileNotFoundError, LookupError, SchemaDirectoryMissing) as exc:
        for sock in [*socks.values(), hub_sock]:
            sock.close()
        for runner in runners:
            await runner.cleanup()
        return f"demo not ready: {exc}"
    hub = Hub(config, plugins)
    await hub.start()
    await _serve(make_runner(hub), hub_sock, runners)
    runners.insert(0, runners.pop())  # the hub stops taking submissions first
    return _Services(hub, site, scenarios, admin_token, runners)


async def run_demo(
    data_dir: Path,
    port: int,
    once: bool,
    simulator_port: int = 8095,
    plugins: Plugins | None = None,
    only: Sequence[str] = (),
) -> int:
    """Run the demo with the installed plugins' scenarios (or those of `plugins`; with `only`, those
    named and what they require); returns the exit code."""
    busy = in_use(data_dir / "journal.db")
    if busy is not None:
        # Wiping the directory would pull the journal from under the hub that owns it.
        console.print(f"[red]demo cannot start:[/] {escape(str(busy))} (try --data)", highlight=False)
        return 2
    try:
        plugins = plugins or load_plugins()
        scenarios = compose(plugins.demo_scenarios(), only)
    except (PluginError, ScenarioError) as exc:
        console.print(f"[red]demo cannot start:[/] {escape(str(exc))}", highlight=False)
        return 2
    if not scenarios:
        console.print("[red]demo cannot start:[/] no installed plugin contributes a demo scenario")
        return 2
    await asyncio.to_thread(_fresh_directory, data_dir)
    previous = _log_to_file(data_dir / "hub.log")
    try:
        return await _run(data_dir, port, once, simulator_port, plugins, scenarios)
    finally:
        for handler in logging.getLogger().handlers:
            handler.close()
        logging.getLogger().handlers[:] = previous


async def _run(
    data_dir: Path,
    port: int,
    once: bool,
    simulator_port: int,
    plugins: Plugins,
    scenarios: list[DemoScenario],
) -> int:
    started = await _start(data_dir, port, simulator_port, plugins, scenarios)
    if isinstance(started, str):
        console.print(f"[red]demo cannot start:[/] {escape(started)}", highlight=False)
        return 2
    inbound = " + ".join(s.inbound for s in scenarios if s.inbound)
    outbound = " + ".join(s.outbound for s in scenarios if s.outbound)
    console.rule(f"[bold]Aktenhub demo: {inbound} → Aktenhub → {outbound}")
    sims = " · ".join(f"{name} {url}" for name, url in started.site.urls.items())
    console.print(f"hub {started.site.hub_url}" + (f" · simulators: {sims}" if sims else ""))
    console.print(f"journal, files and log under {data_dir}/")
    try:
        return await _drive(started, once)
    finally:
        for runner in started.runners:
            await runner.cleanup()
        await started.hub.stop()


class _Tally(Tally):
    def __init__(self, progress: Progress, task: TaskID) -> None:
        self._progress = progress
        self._task = task

    def advance(self, count: int = 1) -> None:
        self._progress.advance(self._task, count)


@dataclass
class _Expected:
    expectation: Expectation
    scenario: DemoScenario
    application_id: str | None = None


@dataclass
class _Run(DemoRun):
    """The running demo as the scenarios see it; tracks what each expects."""

    site: DemoSite
    http: aiohttp.ClientSession
    hub: Hub
    progress: Progress
    scenario: DemoScenario | None = None
    expected: list[_Expected] = field(default_factory=list)
    bars: dict[str, TaskID] = field(default_factory=dict)

    def for_scenario(self, scenario: DemoScenario) -> _Run:
        """The same run, recording what `scenario` expects under its name."""
        return _Run(self.site, self.http, self.hub, self.progress, scenario, self.expected, self.bars)

    def expect(self, expectation: Expectation) -> Expectation:
        assert self.scenario is not None
        self.expected.append(_Expected(expectation, self.scenario, expectation.application_id))
        label = f"{self.scenario.inbound or self.scenario.name}: settled"
        if self.scenario.name not in self.bars:
            self.bars[self.scenario.name] = self.progress.add_task(label, total=0)
        total = sum(e.scenario is self.scenario for e in self.expected)
        self.progress.update(self.bars[self.scenario.name], total=total)
        return expectation

    def tally(self, description: str, total: int) -> Tally:
        return _Tally(self.progress, self.progress.add_task(description, total=total))

    async def application(self, application_id: str) -> Application | None:
        return await self.hub.journal.get_application(application_id)

    async def settled(self, expectations: Sequence[Expectation]) -> None:
        wanted = [e for e in self.expected if e.expectation in expectations]
        while True:
            if await self._final(wanted):
                return
            await asyncio.sleep(POLL_SECONDS)  # polling the journal for a state, not synchronisation

    async def _final(self, wanted: list[_Expected]) -> bool:
        """Whether all of `wanted` arrived and are final; updates the progress bars on the way."""
        await self._resolve(wanted)
        ids = tuple(e.application_id for e in wanted if e.application_id)
        rows = await self.hub.journal.list_applications(ApplicationFilter(ids=ids), limit=max(len(ids), 1))
        final = {r.id for r in rows if r.state in FINAL}
        for name, bar in self.bars.items():
            done = sum(e.application_id in final for e in self.expected if e.scenario.name == name)
            self.progress.update(bar, completed=max(done, self.progress.tasks[bar].completed))
        return all(e.application_id in final for e in wanted)

    async def _resolve(self, wanted: list[_Expected]) -> None:
        """Find the applications that arrived by their source's external id."""
        for item in wanted:
            want = item.expectation
            if item.application_id is not None or want.external_id is None:
                continue
            rows = await self.hub.journal.list_applications(ApplicationFilter(q=want.external_id))
            item.application_id = next(
                (r.id for r in rows if (r.source, r.external_id) == (want.source, want.external_id)), None
            )


async def _drive(svc: _Services, once: bool) -> int:
    columns = (
        TextColumn("{task.description:<38}"),
        BarColumn(),
        TextColumn("{task.completed:>2}/{task.total}"),
    )
    async with aiohttp.ClientSession() as http:
        with Progress(*columns, console=console) as progress:
            run = _Run(svc.site, http, svc.hub, progress)
            failed = await _submit_all(svc.scenarios, run)
            if failed:
                for problem in failed:
                    console.print(f"[red]demo failed:[/] {escape(problem)}", highlight=False)
                return 1
            await run.settled([e.expectation for e in run.expected])
        return await _summary(svc, run, once)


async def _submit_all(scenarios: Sequence[DemoScenario], run: _Run) -> list[str]:
    """Every scenario's `submit`, together; what failed, by scenario (a plugin's bug ends the demo, named)."""

    async def submit(scenario: DemoScenario) -> str | None:
        try:
            await scenario.submit(run.for_scenario(scenario))
        except Exception as exc:  # any error of a plugin's scenario: reported, the others go on
            return f"scenario {scenario.name!r} could not send its samples: {type(exc).__name__}: {exc}"
        return None

    return [problem for problem in await asyncio.gather(*map(submit, scenarios)) if problem]


async def _summary(svc: _Services, run: _Run, once: bool) -> int:
    extra: list[str] = []
    for scenario in svc.scenarios:
        extra += [c for c in scenario.columns if c not in extra and c not in CORE_COLUMNS]
    table = Table(*CORE_COLUMNS, *extra, title="Applications", title_justify="left")
    problems: list[str] = []
    order = {s.name: i for i, s in enumerate(svc.scenarios)}
    rows: list[tuple[int, Application, _Expected, ApplicationState, str | None]] = []
    for item in run.expected:
        assert item.application_id is not None  # settled
        app = await svc.hub.journal.get_application(item.application_id)
        summary = await svc.hub.journal.get_summary(item.application_id)
        assert app is not None and summary is not None
        rows.append((order[item.scenario.name], app, item, summary.state, summary.error))
    for _, app, item, state, error in sorted(rows, key=lambda r: (r[0], r[1].received_at)):
        if state != item.expectation.state:
            problems.append(f"{app.id} ({app.service}): {state}, expected {item.expectation.state}")
        cells: dict[str, str] = {}
        for scenario in svc.scenarios:
            view = run.for_scenario(scenario)
            for column, value in (await scenario.describe(app, state, view)).items():
                cells.setdefault(column, value)
            problems += [
                f"{app.id} ({app.service}): {found}" for found in await scenario.check(app, state, view)
            ]
        if state == ApplicationState.COMPLETED:
            shown = f"[green]{state}[/]"
        elif state == ApplicationState.REJECTED:
            shown = f"[yellow]{state}[/]: {escape(error or '')}"
        else:
            shown = f"[red]{state}[/]: {escape(error or '')}"
        identity = app.identity
        level = f"{identity.level.value} ({identity.means})" if identity.level else "-"
        table.add_row(
            app.service,
            app.applicant.display_name or item.expectation.applicant or "-",
            level,
            shown,
            app.file_number or "-",
            *(cells.get(column, "-") for column in extra),
        )
    console.print(table)
    links = [link for scenario in svc.scenarios for link in scenario.links(svc.site)]
    hub_url = svc.site.hub_url
    users = ", ".join(f"{name} ({role})" for name, role in DEMO_ROLES.items())
    links += [
        ("console", f"{hub_url}/ui/  · „Anmelden mit dem Kreis-Konto“ as {users}, or the admin token"),
        ("admin API", f"curl -H 'Authorization: Bearer {svc.admin_token}' {hub_url}/api/v1/applications"),
        ("metrics", f"{hub_url}/metrics    health: {hub_url}/readyz"),
    ]
    width = max(len(what) for what, _ in links) + 2
    for what, how in links:
        console.print(f"{what + ':':<{width}}{how}", highlight=False)
    for problem in problems:
        console.print(f"[red]not as expected:[/] {escape(problem)}", highlight=False)
    ok = not problems
    if once:
        return 0 if ok else 1
    console.print("[bold]serving; Ctrl-C stops the demo[/]")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    return 0 if ok else 1
