"""Line charts for the console, drawn on the server as inline SVG: no chart library, no script.

A chart is its geometry (`LineChart`); the template draws it with classes from the page's stylesheet
(the CSP forbids style attributes). Each series also has its own dash pattern, so it is told apart
without colour, and every chart comes with its numbers as a table.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from hub.console.templating import local_time

WIDTH, HEIGHT = 760, 220
LEFT, RIGHT, TOP, BOTTOM = 56, 12, 12, 30


@dataclass(frozen=True)
class Series:
    """One line: its name in the legend, its CSS class, and the values (None: no value, a gap)."""

    name: str
    css: str
    values: Sequence[float | None]


@dataclass(frozen=True)
class Line:
    """A drawn series: its polylines (split at gaps) and its lone points."""

    name: str
    css: str
    segments: list[str]  # SVG points attributes
    dots: list[tuple[float, float]]


@dataclass(frozen=True)
class Tick:
    """A label on an axis at `at` (pixels)."""

    at: float
    label: str


@dataclass(frozen=True)
class LineChart:
    """A chart's geometry in a WIDTH x HEIGHT view box."""

    width: int
    height: int
    left: int
    right: int
    top: int
    bottom: int
    lines: list[Line]
    x_ticks: list[Tick]
    y_ticks: list[Tick]
    unit: str


# Tops of a duration axis (seconds): whole minutes, hours, days, so that its half is one too.
DURATION_STEPS = (120, 600, 1200, 1800, 3600, 7200, 4 * 3600, 12 * 3600, 86400, 2 * 86400, 7 * 86400)


def duration_ceiling(value: float) -> float:
    """The smallest of `DURATION_STEPS` that is at least `value` (whole weeks beyond)."""
    fitting = (float(step) for step in DURATION_STEPS if step >= value)
    return next(fitting, float(math.ceil(value / (7 * 86400)) * 7 * 86400))


def count_ceiling(value: float) -> float:
    """A count axis' top: 2, 4, 6, 10, 20, 40, 60, 100, ... at least `value`, so its half is whole too."""
    if value <= 2:
        return 2.0
    power = 10.0 ** math.floor(math.log10(value))
    return next(float(step * power) for step in (1, 2, 4, 6, 10) if step * power >= value)


def line_chart(
    hours: Sequence[datetime],
    series: Sequence[Series],
    unit: str,
    label: Callable[[float], str],
    ceiling: Callable[[float], float] = count_ceiling,
) -> LineChart:
    """The geometry of `series` over `hours` (one value per hour), the y axis up to `ceiling(max)`."""
    count = len(hours)
    inner_w, inner_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    top = ceiling(max((v for s in series for v in s.values if v is not None), default=0.0))

    def x(i: int) -> float:
        return round(LEFT + (inner_w * i / (count - 1) if count > 1 else inner_w / 2), 1)

    def y(v: float) -> float:
        return round(TOP + inner_h * (1 - v / top), 1)

    lines = []
    for s in series:
        segments: list[list[tuple[float, float]]] = [[]]
        for i, value in enumerate(s.values):
            if value is None:
                segments.append([])
            else:
                segments[-1].append((x(i), y(value)))
        drawn = [seg for seg in segments if len(seg) > 1]
        dots = [seg[0] for seg in segments if len(seg) == 1]
        lines.append(Line(s.name, s.css, [" ".join(f"{px},{py}" for px, py in seg) for seg in drawn], dots))
    # A label every 3 hours over a day, at each midnight over a week.
    if count <= 48:
        x_ticks = [Tick(x(i), local_time(hours[i], "%H:%M")) for i in range(0, count, 3)]
    else:
        x_ticks = [
            Tick(x(i), _weekday(local_time(hours[i], "%a %d.%m.")))
            for i in range(count)
            if local_time(hours[i], "%H") == "00"
        ]
    y_ticks = [Tick(y(top * f), label(top * f)) for f in (0.0, 0.5, 1.0)]
    return LineChart(WIDTH, HEIGHT, LEFT, RIGHT, TOP, BOTTOM, lines, x_ticks, y_ticks, unit)


WEEKDAYS = {"Mon": "Mo", "Tue": "Di", "Wed": "Mi", "Thu": "Do", "Fri": "Fr", "Sat": "Sa", "Sun": "So"}


def _weekday(text: str) -> str:
    # strftime's %a follows the C locale; the console speaks German whatever the server's locale.
    for english, german in WEEKDAYS.items():
        text = text.replace(english, german)
    return text
