"""`xoev`: any XÖV message over XTA (validated against its XSD), answers from the hub's XTA mailbox."""

from __future__ import annotations

from .simulator import SIMULATOR, Refused, XoevCase, XoevFachverfahren
from .sink import XoevAnswers, XoevConfig, XoevForwardSpec, XoevMessageSpec, XoevSink, message_kind

# Profiles of a Fachverfahren (hub_mikropro, hub_advis) preset the message and the answers, and subclass the
# simulator (its validation and answers).
__all__ = [
    "SIMULATOR",
    "Refused",
    "XoevAnswers",
    "XoevCase",
    "XoevConfig",
    "XoevFachverfahren",
    "XoevForwardSpec",
    "XoevMessageSpec",
    "XoevSink",
    "message_kind",
]
