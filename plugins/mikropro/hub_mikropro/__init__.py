"""Mikropro Bauamt: the untere Bauaufsicht's Fachverfahren as a profile of the generic transports."""

from __future__ import annotations

from .connector import MikroproConfig, MikroproSink

__all__ = ["MikroproConfig", "MikroproSink"]
