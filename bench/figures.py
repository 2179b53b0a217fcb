"""The figures a benchmark measured, written with ``--json FILE`` for `make bench`'s one table.

Every benchmark keeps its own report on stdout; what it measured for the table it hands over as a JSON
list of figures (format: ``/work/notes/i14/bench-format.md``, and below):

    [{"name": "intake: hub/Node-RED acknowledged per second", "value": 2.1, "unit": "x",
      "target": 2.0, "better": "higher", "command": "python bench/intake.py --nodered"}, ...]

- ``name``: what was measured, unique across all benchmarks (prefix it with the benchmark's name);
- ``value``: the number, ``unit``: its unit as a person reads it ("/s", "ms", "MB", "x", "s");
- ``target``: the issue's goal or ``null`` (then the figure is reported, not judged), ``better``:
  "higher" (value ≥ target meets it) or "lower" (value ≤ target meets it);
- ``command``: the command line that measures it (without ``--json``), filled in by `write` when empty;
- ``note``: optional, a few words on how to read it (e.g. "CPU time, machine shared").

A benchmark adds the option and writes its figures at the end::

    from bench.figures import Figure, add_json_option, write
    parser = argparse.ArgumentParser(...); add_json_option(parser)
    ...
    if args.json:
        write(args.json, [Figure("claim: large/empty, SQLite", 1.04, "x", target=1.10, better="lower")])

`make bench` reads all files and prints the table: ``python -m bench.figures FILE...``.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import shlex
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Literal

from pydantic import TypeAdapter
from pydantic.dataclasses import dataclass

Better = Literal["higher", "lower"]


@dataclass(frozen=True)
class Figure:
    """One measured figure: what, how much, in what unit, against which target, measured by which command."""

    name: str
    value: float
    unit: str
    target: float | None = None
    better: Better = "higher"
    command: str = ""
    note: str = ""

    def met(self) -> bool | None:
        """Whether the value meets the target (None: no target, or nothing measured)."""
        if self.target is None or math.isnan(self.value):
            return None
        return self.value >= self.target if self.better == "higher" else self.value <= self.target


FIGURES = TypeAdapter(list[Figure])


def add_json_option(parser: argparse.ArgumentParser) -> None:
    """Give a benchmark's argument parser the ``--json FILE`` option."""
    parser.add_argument(
        "--json", type=Path, metavar="FILE", help="write the figures to FILE for `make bench`"
    )


def invocation(argv: Sequence[str] | None = None) -> str:
    """The command line that ran this benchmark, without its ``--json FILE`` (what the table shows)."""
    args = list(sys.argv if argv is None else argv)
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    # `python -m bench.claim` has the module's file in argv[0]: show it as it was typed.
    head = (
        ["python", "-m", spec.name] if spec is not None and spec.name != "__main__" else ["python", args[0]]
    )
    rest: list[str] = []
    skip = False
    for arg in args[1:]:
        if skip:
            skip = False
        elif arg == "--json":
            skip = True
        elif not arg.startswith("--json="):
            rest.append(arg)
    if head[-1].startswith(str(Path.cwd()) + "/"):
        head[-1] = str(Path(head[-1]).relative_to(Path.cwd()))
    return shlex.join(head + rest)


def write(path: Path, figures: Iterable[Figure]) -> None:
    """Write `figures` as a JSON list to `path`; an empty command becomes this process's command line."""
    command = invocation()
    filled = [f if f.command else dataclasses.replace(f, command=command) for f in figures]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(FIGURES.dump_json(filled, indent=2) + b"\n")


def read(path: Path) -> list[Figure]:
    """The figures in one ``--json`` file (validated: a file of another shape is an error)."""
    return FIGURES.validate_json(path.read_bytes())


def _number(value: float) -> str:
    if math.isnan(value):
        return "-"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"


def table(figures: Sequence[Figure]) -> str:
    """The figures as one plain-text table: figure, value, unit, target, met?, command."""
    header = ("figure", "value", "unit", "target", "met?", "command")
    rows = [header]
    for f in figures:
        target = "" if f.target is None else ("≥ " if f.better == "higher" else "≤ ") + _number(f.target)
        met = {True: "yes", False: "NO", None: ""}[f.met()]
        rows.append((f.name, _number(f.value), f.unit, target, met, f.command))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    lines = []
    for n, row in enumerate(rows):
        cells = [
            cell.rjust(w) if i in (1, 3) else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(row[:-1], widths, strict=True))
        ]
        lines.append("  ".join([*cells, row[-1]]).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in [*widths, len(header[-1])]))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Print the table of all figures in the given ``--json`` files; exit 1 if a file is missing or bad."""
    parser = argparse.ArgumentParser(description="Print one table of the benchmarks' figures.")
    parser.add_argument("files", nargs="*", type=Path, help="--json files written by the benchmarks")
    args = parser.parse_args(argv)
    figures: list[Figure] = []
    failed = []
    for path in args.files:
        try:
            figures.extend(read(path))
        except (OSError, ValueError) as exc:
            failed.append(f"{path}: {exc.__class__.__name__}: {str(exc).splitlines()[0]}")
    print(table(figures), flush=True)
    for line in failed:
        print(f"no figures from {line}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
