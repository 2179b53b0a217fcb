"""Demo scenarios: what a plugin contributes to `aktenhub demo` (hook `aktenhub_demo_scenarios`).

Public API for plugin authors (exported by `hub`, listed in docs/plugin-api.md); each built-in plugin's
``hub_<name>/demo.py`` is an example. The core names no plugin. It composes the scenarios every
installed plugin offers, in the order of their declared dependencies (`requires`, ties by name), and
runs them in phases:

1. binds a loopback socket for the hub and for every simulator the scenarios name (so each URL is
   known before anything is built, and port 0 picks free ones), then `prepare` (files under the data
   directory, e.g. keys);
2. starts each simulator with `simulator_options`, merges every scenario's `connectors` (a scenario may
   add keys to a connector an earlier one declared: dictionaries merge, lists join, a differing value
   is an error) and `routes` (extended by `route_extensions`, whose values replace the route's) into one
   configuration, and starts the hub;
3. runs every scenario's `submit` concurrently (samples sent, each registered with `run.expect`), waits
   until each expected application reached a final state, and checks it is the expected one;
4. prints one table: the core's columns, then each scenario's `columns` (`describe` fills them; the
   first scenario to give a value wins), each scenario's `links`, and what any scenario's `check`
   found wrong; the demo fails (exit code 1) when an application ended otherwise than expected or a
   check found a problem.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hub.models import Application, ApplicationState

if TYPE_CHECKING:  # a leaf module: importing it loads no HTTP stack
    import aiohttp

# Where the example mapping files live in a source tree (the demo runs from one).
EXAMPLE_MAPPINGS = Path("config") / "mappings"
_SOURCE_TREE = Path(__file__).resolve().parents[1]
WAIT_SECONDS = 60.0  # longest a scenario waits for an observable state (an answer carried out, a case)
POLL_SECONDS = 0.1
# The `${NAME}` of the admin API's bearer token the demo configures.
ADMIN_TOKEN = "AKTENHUB_DEMO_ADMIN_TOKEN"  # noqa: S105 (a name, not a secret)


@dataclass
class DemoSite:
    """Where the demo runs: its data directory, the schema directory, the URLs of hub and simulators."""

    data_dir: Path
    schemas: Path
    hub_url: str
    urls: Mapping[str, str]  # simulator name -> its URL (bound before anything starts)
    # `${NAME}` values for the configuration; `secret` makes them up once per run.
    env: dict[str, str] = field(default_factory=dict)

    def url(self, simulator: str) -> str:
        """The URL of a simulator some scenario starts."""
        try:
            return self.urls[simulator]
        except KeyError:
            raise LookupError(f"no demo scenario starts the simulator {simulator!r}") from None

    def secret(self, name: str) -> str:
        """A random secret for this run under `name`, the same for every caller (`${name}` in config)."""
        return self.env.setdefault(name, secrets.token_urlsafe(18))

    def secret_reference(self, name: str) -> str:
        """``${name}`` for the configuration, the secret made up if nobody asked for it yet."""
        self.secret(name)
        return "${" + name + "}"

    def admin_headers(self) -> dict[str, str]:
        """Headers for the hub's admin API (``/api/v1/...``) in this run, e.g. for a scenario's `check`."""
        return {"Authorization": f"Bearer {self.secret(ADMIN_TOKEN)}"}

    def mapping(self, file_name: str) -> Path:
        """An example mapping file: ./config/mappings/<name>, else the source tree's."""
        for base in (Path.cwd(), _SOURCE_TREE):
            candidate = base / EXAMPLE_MAPPINGS / file_name
            if candidate.is_file():
                return candidate.resolve()
        raise FileNotFoundError(
            f"{EXAMPLE_MAPPINGS / file_name} not found: run the demo from the Aktenhub source tree"
        )


@dataclass(frozen=True)
class Expectation:
    """An application a scenario sent, and the state it must end in for the demo to pass.

    Either its `application_id` (the intake answered it), or the `source` connector and the
    `external_id` it arrives with later (a polled source, e.g. a message id).
    """

    state: ApplicationState
    application_id: str | None = None
    source: str | None = None
    external_id: str | None = None
    applicant: str | None = None  # shown when the application itself names nobody

    def __post_init__(self) -> None:
        if self.application_id is None and (self.source is None or self.external_id is None):
            raise ValueError("an expectation needs an application id, or a source and an external id")


class Tally(ABC):
    """A progress line of the demo (e.g. submissions sent)."""

    @abstractmethod
    def advance(self, count: int = 1) -> None:
        """Count `count` more."""


class DemoRun(ABC):
    """What a scenario's `submit` and `describe` may use while the demo runs."""

    site: DemoSite
    http: aiohttp.ClientSession  # for samples and simulator look-ups; loopback only

    @abstractmethod
    def expect(self, expectation: Expectation) -> Expectation:
        """Register an application the demo waits for and checks; returns it."""

    @abstractmethod
    async def settled(self, expectations: Sequence[Expectation]) -> None:
        """Wait until these applications have arrived and reached a final state."""

    @abstractmethod
    def tally(self, description: str, total: int) -> Tally:
        """A progress line the console shows while the demo runs."""

    @abstractmethod
    async def application(self, application_id: str) -> Application | None:
        """An application as the hub's journal holds it now (e.g. to wait for an answer's effect)."""

    async def json(self, method: str, url: str, what: str, **kwargs: Any) -> Any:
        """A simulator's or the hub's JSON answer; `RuntimeError` naming `what` unless it is a success."""
        async with self.http.request(method, url, **kwargs) as resp:
            body = await resp.json(content_type=None)
            if resp.status >= 300:
                raise RuntimeError(f"{what} answered {resp.status}: {body}")
            return body

    async def until(self, condition: Callable[[], Awaitable[bool]], what: str) -> None:
        """Poll an observable state until `condition` holds; `TimeoutError` naming `what` otherwise."""
        deadline = time.monotonic() + WAIT_SECONDS
        while not await condition():
            if time.monotonic() > deadline:
                raise TimeoutError(f"waited {WAIT_SECONDS:.0f} s for {what}")
            await asyncio.sleep(POLL_SECONDS)  # polling a state, not synchronisation

    async def hub_view(self, application_id: str) -> dict[str, Any]:
        """The application as the hub's admin API shows it (state, ids, timeline)."""
        url = f"{self.site.hub_url}/api/v1/applications/{application_id}"
        view: dict[str, Any] = await self.json(
            "GET", url, "the hub's admin API", headers=self.site.admin_headers()
        )
        return view

    async def answers_carried_out(self, application_id: str, answers: int) -> None:
        """Wait until the hub took `answers` answers of a Fachverfahren and carried each out (the
        application is completed again)."""

        async def done() -> bool:
            view = await self.hub_view(application_id)
            received = sum(e["type"] == "answer.received" for e in view["timeline"])
            return received >= answers and str(view["state"]) == ApplicationState.COMPLETED

        await self.until(done, f"answer {answers} of application {application_id} to be carried out")


class DemoScenario:
    """One plugin's part of `aktenhub demo`; every method has a do-nothing default.

    Connector and route dictionaries are written as in the YAML configuration (secrets as ``${NAME}``
    from `DemoSite.secret_reference`); the hub validates the composed configuration as it would a file.
    """

    name: str = ""  # unique among all scenarios; what others name in `requires`
    requires: tuple[str, ...] = ()  # scenarios whose simulators and connectors this one uses
    simulators: tuple[str, ...] = ()  # simulators (by `aktenhub_simulators` name) this scenario starts
    inbound: str = ""  # how it appears in the headline before "→ Aktenhub", e.g. "FormCycle"
    outbound: str = ""  # ... and after it, e.g. "Enaio (e-file)"
    columns: tuple[str, ...] = ()  # summary columns this scenario fills in `describe`

    async def prepare(self, site: DemoSite) -> None:
        """Create what simulators and connectors need before they start (keys, files)."""

    def simulator_options(self, simulator: str, site: DemoSite) -> dict[str, Any]:
        """Keyword arguments for the `make_app` of one of this scenario's simulators."""
        return {}

    def connectors(self, site: DemoSite) -> dict[str, dict[str, Any]]:
        """Connectors (name -> configuration) this scenario adds or extends."""
        return {}

    def routes(self, site: DemoSite) -> list[dict[str, Any]]:
        """Routes this scenario adds (route names are unique across scenarios)."""
        return []

    def route_extensions(self, site: DemoSite) -> dict[str, dict[str, Any]]:
        """Routes of scenarios it requires that this one extends (name -> settings merged into the route:
        dictionaries merge, lists join, other values replace the route's; e.g. ``{"bauantrag": {"to":
        ["bau-fv"], "map": ...}}`` adds a target and maps with another file)."""
        return {}

    async def submit(self, run: DemoRun) -> None:
        """Send the sample submissions and `run.expect` each."""

    async def describe(
        self, application: Application, state: ApplicationState, run: DemoRun
    ) -> dict[str, str]:
        """Values of this scenario's `columns` for one application of the summary (none: not known)."""
        return {}

    async def check(self, application: Application, state: ApplicationState, run: DemoRun) -> list[str]:
        """What is wrong with one application of the summary, as this scenario sees it (none: fine)."""
        return []

    def links(self, site: DemoSite) -> list[tuple[str, str]]:
        """Lines printed after the summary: (what, how to look at it)."""
        return []
