"""Aktenhub plugin for the BundID mailbox (Zentrales Bürgerpostfach, ZBP)."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
