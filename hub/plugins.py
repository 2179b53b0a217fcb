"""The plugin manager: built-ins first, then every distribution registered under entry point `aktenhub`."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from importlib import metadata
from types import ModuleType
from typing import Any

import pluggy

from hub import hookspecs
from hub.connectors import Connector, Simulator
from hub.errors import PluginError
from hub.models import Event
from hub.scenarios import DemoScenario

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PluginInfo:
    """One loaded plugin, as `aktenhub plugins` shows it."""

    name: str
    distribution: str | None
    version: str | None
    kinds: tuple[str, ...]
    standards: tuple[str, ...]


class Plugins:
    """The loaded plugins and what they provide."""

    def __init__(self, pm: pluggy.PluginManager) -> None:
        self.pm = pm
        self.connector_types: dict[str, type[Connector[Any]]] = {}
        self._owner: dict[str, str] = {}
        for plugin_name, plugin in pm.list_name_plugin():
            impl = getattr(plugin, "aktenhub_connector_types", None)
            if impl is None:
                continue
            for cls in impl() or ():
                self._add_connector(plugin_name, cls)

    def _add_connector(self, plugin_name: str, cls: type[Connector[Any]]) -> None:
        kind = getattr(cls, "kind", None)
        if not isinstance(kind, str) or not kind:
            raise PluginError(f"plugin {plugin_name!r}: connector class {cls.__name__} has no `kind`")
        if kind in self.connector_types:
            raise PluginError(
                f"connector kind {kind!r} is provided twice: by plugin {self._owner[kind]!r} "
                f"({self.connector_types[kind].__qualname__}) and by plugin {plugin_name!r} "
                f"({cls.__qualname__}); uninstall one of them"
            )
        self.connector_types[kind] = cls
        self._owner[kind] = plugin_name

    def connector_type(self, kind: str) -> type[Connector[Any]]:
        """The connector class for a configuration `type:`."""
        try:
            return self.connector_types[kind]
        except KeyError:
            known = ", ".join(sorted(self.connector_types)) or "none"
            raise PluginError(f"no plugin provides connector type {kind!r} (installed: {known})") from None

    def mapping_filters(self) -> dict[str, Callable[..., Any]]:
        """All extra mapping filters, by name."""
        filters: dict[str, Callable[..., Any]] = {}
        for provided in self.pm.hook.aktenhub_mapping_filters():
            filters.update(provided or {})
        return filters

    def simulators(self) -> dict[str, Simulator]:
        """All simulators of remote systems, by name."""
        sims: dict[str, Simulator] = {}
        for provided in self.pm.hook.aktenhub_simulators():
            for sim in provided or ():
                sims[sim.name] = sim
        return sims

    def demo_scenarios(self) -> list[DemoScenario]:
        """Every demo scenario the plugins contribute, in registration order (`hub.demo` orders them)."""
        return [
            scenario for provided in self.pm.hook.aktenhub_demo_scenarios() for scenario in provided or ()
        ]

    def emit(self, events: Iterable[Event]) -> None:
        """Call `aktenhub_event` for each event; a failing observer never affects processing."""
        hook = self.pm.hook.aktenhub_event
        if not hook.get_hookimpls():
            return
        for event in events:
            try:
                hook(event=event)
            except Exception:
                log.exception(
                    "event observer failed event=%s application=%s",
                    event.type,
                    event.application_id,
                )

    def info(self) -> list[PluginInfo]:
        """What is loaded: plugin, distribution, version, connector kinds, standards spoken."""
        dists = {id(p): d for p, d in self.pm.list_plugin_distinfo()}
        result = []
        for name, plugin in sorted(self.pm.list_name_plugin()):
            if plugin is hookspecs or name.startswith("_"):
                continue
            kinds = tuple(k for k, owner in self._owner.items() if owner == name)
            standards: list[str] = []
            for kind in kinds:
                for s in self.connector_types[kind].manifest.standards:
                    if s not in standards:
                        standards.append(s)
            dist = dists.get(id(plugin))
            result.append(
                PluginInfo(
                    name=name,
                    distribution=dist.project_name if dist else "aktenhub",
                    version=dist.version if dist else _core_version(),
                    kinds=kinds,
                    standards=tuple(standards),
                )
            )
        return result


def _core_version() -> str | None:
    try:
        return metadata.version("aktenhub")
    except metadata.PackageNotFoundError:
        return None


def load_plugins(extra: Sequence[ModuleType | object] = (), *, entry_points: bool = True) -> Plugins:
    """Create the plugin manager: hook specs, built-ins, entry points, then `extra` (tests)."""
    from hub import builtins

    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    pm.register(builtins, name="builtins")
    if entry_points:
        try:
            pm.load_setuptools_entrypoints(hookspecs.PROJECT)
        except Exception as exc:  # an import error in a plugin names the plugin
            raise PluginError(f"a plugin failed to load: {exc!r}") from exc
    for i, plugin in enumerate(extra):
        name = getattr(plugin, "__name__", None) or f"extra-{i}"
        if pm.is_registered(plugin) or pm.get_plugin(name) is not None:
            continue
        pm.register(plugin, name=name)
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginError(f"plugin {exc.plugin!r} implements an unknown hook: {exc}") from exc
    return Plugins(pm)
