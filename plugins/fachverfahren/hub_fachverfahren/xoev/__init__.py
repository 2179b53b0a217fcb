"""`xoev`: any XÖV message over XTA (validated against its XSD), answers from the hub's XTA mailbox."""

from __future__ import annotations

from .simulator import SIMULATOR, XoevFachverfahren
from .sink import XoevAnswers, XoevConfig, XoevForwardSpec, XoevMessageSpec, XoevSink, message_kind

__all__ = [
    "SIMULATOR",
    "XoevAnswers",
    "XoevConfig",
    "XoevFachverfahren",
    "XoevForwardSpec",
    "XoevMessageSpec",
    "XoevSink",
    "message_kind",
]
