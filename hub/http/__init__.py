"""The hub's HTTP face: intake routes, admin JSON API, /metrics, /healthz, /readyz."""

from hub.http.app import make_app, make_runner

__all__ = ["make_app", "make_runner"]
