"""A simulated K3: the import folder simulator preset with K3's manifest and result files.

It takes each waiting folder, refuses one whose ``k3-import.xml`` is missing, unreadable, names no
Referenz or names a file that is not there (a result with ``Status`` abgelehnt and ``Fehler``), assigns
case numbers ``UWB-00001`` …, and on ``POST /control/decide`` reports a decision with the Bescheid PDF.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp import web
from hub_fachverfahren.importfolder import SIMULATOR as IMPORTFOLDER

from hub import Simulator

from .answers import ELEMENTS, ROOT
from .connector import MANIFEST_NAME

PRESET: dict[str, Any] = {
    "manifest": MANIFEST_NAME,
    "reference": "/K3Import/Vorgang/Referenz",
    "files": "/K3Import/Dateien/Datei/@name",
    "answer_format": "xml",
    "answer_root": ROOT,
    "answer_names": dict(ELEMENTS),
    "prefix": "UWB",
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
