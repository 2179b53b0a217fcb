"""A simulated K3 per transport: the generic transports' simulators with K3's presets.

`k3` (import folder) takes each waiting folder, refuses one whose ``k3-import.xml`` is missing,
unreadable, names no Referenz or names a file that is not there (a result with ``Status`` abgelehnt and
``Fehler``), assigns case numbers ``UWB-00001`` …, and on ``POST /control/decide`` reports a decision
with the Bescheid PDF. `k3-rest` is the rest transport's simulator validating against K3's Vorgang API
(``k3-rest.yaml``); `k3-sql` the sql transport's simulator (its staging layout is K3's sql preset).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp import web
from hub_fachverfahren.importfolder import SIMULATOR as IMPORTFOLDER
from hub_fachverfahren.rest import SIMULATOR as REST
from hub_fachverfahren.sql import SIMULATOR as SQL

from hub import Simulator

from .answers import ELEMENTS, ROOT
from .connector import MANIFEST_NAME
from .presets import REST_SPEC

CASE_PREFIX = "UWB"  # K3's case numbers in the simulators: UWB-00001, ...
PRESET: dict[str, Any] = {
    "manifest": MANIFEST_NAME,
    "reference": "/K3Import/Vorgang/Referenz",
    "files": "/K3Import/Dateien/Datei/@name",
    "answer_format": "xml",
    "answer_root": ROOT,
    "answer_names": dict(ELEMENTS),
    "prefix": CASE_PREFIX,
}


def make_app(
    import_dir: str | Path = "import",
    answer_dir: str | Path = "export",
    data_dir: str | Path | None = None,
    **options: Any,
) -> web.Application:
    """The simulated K3 on `import_dir` / `answer_dir`; `options` override the K3 preset."""
    return IMPORTFOLDER.make_app(import_dir, answer_dir, data_dir, **{**PRESET, **options})


SIMULATOR = Simulator(
    name="k3",
    description="K3 (K3umwelt) behind its import folder: K3Import manifests in, K3Rueckmeldung result "
    "files out (case number, status, error, decision PDF)",
    make_app=make_app,
)


def make_rest_app(**options: Any) -> web.Application:
    """The simulated K3 behind its Vorgang API (`options` as the rest transport's simulator takes them)."""
    return REST.make_app(**{"spec": REST_SPEC, **options})


def make_sql_app(**options: Any) -> web.Application:
    """The simulated K3 on its staging table (`options` as the sql transport's simulator takes them)."""
    return SQL.make_app(**{"prefix": CASE_PREFIX, **options})


REST_SIMULATOR = Simulator(
    name="k3-rest",
    description="K3 (K3umwelt) behind its Vorgang API (hub_k3/k3-rest.yaml): OAuth2 client credentials, "
    "requests validated against the description, answers polled or sent as signed callbacks",
    make_app=make_rest_app,
)
SQL_SIMULATOR = Simulator(
    name="k3-sql",
    description="K3 (K3umwelt) on its staging table in the database at url=<async SQLAlchemy URL>: "
    "case numbers UWB-..., POST /_sim/accept, /_sim/decide, ...; auto_seconds=N works alone",
    make_app=make_sql_app,
)
