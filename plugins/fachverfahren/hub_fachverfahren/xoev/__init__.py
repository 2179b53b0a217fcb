"""`xoev`: any XÖV message over XTA (validated against its XSD), answers from the hub's XTA mailbox."""

from __future__ import annotations

from .simulator import SIMULATOR, XoevCase, XoevFachverfahren
from .sink import XoevAnswers, XoevConfig, XoevForwardSpec, XoevMessageSpec, XoevSink

# Profiles of a Fachverfahren (e.g. hub_mikropro) preset the message and the answers, and subclass the
# simulator (its validation and answers).
__all__ = [
    "SIMULATOR",
    "XoevAnswers",
    "XoevCase",
    "XoevConfig",
    "XoevFachverfahren",
    "XoevForwardSpec",
    "XoevMessageSpec",
    "XoevSink",
]
