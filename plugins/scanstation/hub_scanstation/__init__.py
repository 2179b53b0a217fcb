"""Aktenhub source for the central scan station's hot folder (`type: scanstation`)."""

from __future__ import annotations

__version__ = "0.1.0"
