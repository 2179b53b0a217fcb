"""`xoev`: any XÖV message over XTA (validated against its XSD), answers from the hub's XTA mailbox."""

from __future__ import annotations

from .simulator import SIMULATOR
from .sink import XoevConfig, XoevSink

__all__ = ["SIMULATOR", "XoevConfig", "XoevSink"]
