"""Run every benchmark with ``--json`` and print one table of their figures (`make bench`).

Each benchmark runs as its own process (``python -m bench.<name> ... --json DIR/<name>.json``), one
after the other so that none measures another's load; its report goes to the terminal as it runs.
A benchmark that fails, or writes no figures, is named below the table and makes the exit status 1;
the others' figures are shown all the same. A target not met is marked in the table, not an error.

Each benchmark runs with its own default sizes, which are the issue's (a million finished
applications, 10,000 queued while enaio is down, ...); the journal of a million applications is built
once into ``/tmp/aktenhub-console-bench`` and reused by later runs. ``--only NAME``
(repeatable) runs some of them; ``--out DIR`` keeps the figures elsewhere than ``.bench``.

    .venv/bin/python -m bench.all [--only claim --only drain] [--out .bench]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from bench.figures import Figure, read, table
from bench.scratch import REMOVE_LATER_ENV, remove_listed

# name -> the module's arguments: each run as `python -m bench.<name> ARGS --json FILE`.
BENCHMARKS: dict[str, tuple[str, ...]] = {
    "render": (),
    "intake_vs_nodered": (),
    "e2e": ("--count", "200", "--rate", "50", "--duration", "15"),
    "large_attachment": ("--size-mb", "2048"),
    "claim": ("--explain",),
    "drain": ("--count", "10000"),
    "rate_limit": (),
    "console": (),
    "scaleout": (),
}


def run(name: str, args: Sequence[str], out: Path) -> tuple[list[Figure], str | None]:
    """Run one benchmark; its figures, and why there are none (None: it ran and wrote them)."""
    path = out / f"{name}.json"
    path.unlink(missing_ok=True)
    module = Path(__file__).with_name(f"{name}.py")
    if not module.exists():
        return [], "no such benchmark in this checkout"
    command = [sys.executable, "-m", f"bench.{name}", *args, "--json", str(path)]
    print(f"\n=== {' '.join(command[1:])}", flush=True)
    began = time.monotonic()
    status = subprocess.run(command, check=False).returncode
    print(f"=== {name}: exit {status} after {time.monotonic() - began:.0f} s", flush=True)
    if not path.exists():
        return [], f"exit {status}, no figures written"
    figures = read(path)
    return figures, None if status == 0 else f"exit {status} (its figures are shown)"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmarks, then print the table and what failed."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--only", action="append", choices=list(BENCHMARKS), help="run this one (repeat)")
    parser.add_argument("--out", type=Path, default=Path(".bench"), help="where the --json files go")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    figures: list[Figure] = []
    failed: list[str] = []
    # The benchmarks' directories go after the last one: none starts right after another deleted
    # thousands of files (`bench.scratch.remove` says what that costs on this machine).
    later = (args.out / "remove-later.txt").resolve()
    remove_listed(later)
    os.environ[REMOVE_LATER_ENV] = str(later)
    try:
        for name in args.only or list(BENCHMARKS):
            measured, problem = run(name, BENCHMARKS[name], args.out)
            figures += measured
            if problem is not None:
                failed.append(f"{name}: {problem}")
    finally:
        del os.environ[REMOVE_LATER_ENV]
        remove_listed(later)
    print()
    print(table(figures))
    for line in failed:
        print(f"FAILED {line}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
