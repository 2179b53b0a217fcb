"""Routes: which source and service go through which steps to which targets."""

from __future__ import annotations

from collections.abc import Sequence

from hub.config import RouteConfig


class Router:
    """Finds the route of a submission: the first route from its source whose `when` matches."""

    def __init__(self, routes: Sequence[RouteConfig]) -> None:
        self.routes = list(routes)
        self._by_name = {r.name: r for r in self.routes}

    def route_for(self, source: str, service: str) -> RouteConfig | None:
        """The route a submission from `source` for `service` takes, or None."""
        for route in self.routes:
            if route.from_ == source and route.when.matches(service):
                return route
        return None

    def by_name(self, name: str) -> RouteConfig | None:
        """A route by its name."""
        return self._by_name.get(name)

    def sources(self) -> set[str]:
        """Names of the source connectors any route takes from."""
        return {r.from_ for r in self.routes}
