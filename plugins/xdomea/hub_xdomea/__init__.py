"""Aktenhub plugin for xdomea: files records into any xdomea-capable DMS as ``FVDaten.SGOAblegen.0605``.

The sink (``type: xdomea``) builds the xdomea 3.0.0 message for a record — Akte, Vorgang, documents
with their metadata and primary files — validates it against ``xdomea.xsd``, packs it as
``<ProzessID>_FVDaten.SGOAblegen.0605.zip`` and delivers it into an import directory or by HTTP upload.
A simulator of a DMS's xdomea import endpoint comes with it (``aktenhub simulate xdomea``).
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
