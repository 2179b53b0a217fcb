"""Aktenhub plugin for XIMA FormCycle: a source taking submissions from the "HTTP-Request" action."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
