"""The scan station part of `aktenhub demo` (filled in below)."""

from __future__ import annotations

from hub import DemoScenario


class ScanStationScenario(DemoScenario):
    """Placeholder."""

    name = "scanstation"
