"""Aktenhub plugin for the example Fachverfahren: a sink delivering cases to its REST import interface.

This package is the plugin template (``contrib/plugin-template``): copy it and rename it for a real
Fachverfahren as described in its README.md.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
