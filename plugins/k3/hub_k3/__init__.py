"""K3 (K3umwelt), the Umweltamt's Fachverfahren: a profile of the importfolder, sql and rest transports."""

from __future__ import annotations

from .connector import K3Config, K3Sink
from .simulator import SIMULATOR

__all__ = ["SIMULATOR", "K3Config", "K3Sink"]
