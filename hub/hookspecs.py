"""Every pluggy hook a plugin can implement. Hooks are synchronous and cheap: pluggy cannot await.

A plugin module implements some of these with `@hub.hookimpl` and is registered under the entry point
group ``aktenhub`` in its ``pyproject.toml``::

    [project.entry-points.aktenhub]
    formcycle = "hub_formcycle.plugin"
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pluggy

from hub.connectors import Connector, Simulator
from hub.models import Event
from hub.scenarios import DemoScenario

PROJECT = "aktenhub"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)
"""Marks a plugin module's function as the implementation of the hook of the same name."""


@hookspec
def aktenhub_connector_types() -> Sequence[type[Connector[Any]]]:  # type: ignore[empty-body]
    """Connector classes this plugin provides.

    Each class has a unique `kind` (the `type:` used in the configuration), a pydantic `Config` and a
    `manifest`. Two classes with the same `kind` across all plugins are refused at start-up.
    """


@hookspec
def aktenhub_mapping_filters() -> dict[str, Callable[..., Any]]:  # type: ignore[empty-body]
    """Extra Jinja filters for mapping files, by name. They must be pure functions of their input."""


@hookspec
def aktenhub_simulators() -> Sequence[Simulator]:  # type: ignore[empty-body]
    """Simulators of remote systems, for tests, `aktenhub demo` and `aktenhub simulate SYSTEM`."""


@hookspec
def aktenhub_demo_scenarios() -> Sequence[DemoScenario]:  # type: ignore[empty-body]
    """What this plugin contributes to `aktenhub demo`: `hub.scenarios.DemoScenario` instances.

    A scenario names the simulators it starts, the connectors and routes it adds to the demo's
    configuration (extending connectors of scenarios it `requires` where it needs to), the samples it
    sends, what it expects of each, and the summary columns and links it shows. The core composes all
    of them in the order of their requirements (ties by name) and names no plugin itself.
    """


@hookspec
def aktenhub_event(event: Event) -> None:
    """Observe every event appended to the journal, after its commit (audit export, alerts).

    Called synchronously on the event loop: keep it fast and hand slow work off. Errors are logged and
    isolated; they never affect the application's processing.
    """
