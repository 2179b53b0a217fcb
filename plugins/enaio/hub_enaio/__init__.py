"""Aktenhub plugin for enaio (OPTIMAL SYSTEMS DMS): a sink filing records as Akte, Vorgang and documents.

Speaks the DMS Service (``/api/dms``, the default) and the older OSRest appconnector (``/osrest/api``),
and ships a simulator of both (``aktenhub simulate enaio``).
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
