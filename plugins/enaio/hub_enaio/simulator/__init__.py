"""Simulator of enaio's DMS Service and OSRest APIs, as far as the Aktenhub sink uses them.

Run it with ``aktenhub simulate enaio --port 8095``; tests start `make_app` on a loopback test server.
"""

from __future__ import annotations

from .app import DEFAULT_USERS, STATE, make_app
from .catalogue import DEFAULT_TYPES, Catalogue, CatalogueError, ObjectType, load_catalogue
from .state import TRAY, EnaioState, Knobs, StoredObject

__all__ = [
    "DEFAULT_TYPES",
    "DEFAULT_USERS",
    "STATE",
    "TRAY",
    "Catalogue",
    "CatalogueError",
    "EnaioState",
    "Knobs",
    "ObjectType",
    "StoredObject",
    "load_catalogue",
    "make_app",
]
