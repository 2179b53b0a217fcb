"""How a benchmark runs: in a scratch directory it removes afterwards (unless asked to keep it), and
stopped by SIGTERM like by Ctrl-C, through the `finally` blocks that stop its child processes."""

from __future__ import annotations

import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path


def run_in_scratch(prefix: str, keep: bool, benchmark: Callable[[Path], None]) -> int:
    """Run `benchmark` in a new temporary directory; its exit status (1 with the reason on failure)."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    # Child processes run a benchmark's file as a script (the hub: bench/e2e.py --serve-hub) in the
    # scratch directory: they import `bench.*` from this checkout only with the checkout on their path.
    root = str(Path(__file__).resolve().parents[1])
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        benchmark(tmp)
    except RuntimeError as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 1
    finally:
        if keep:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0
