"""How a benchmark runs: in a scratch directory it removes afterwards (unless asked to keep it), once
creating files there costs what it does on a quiet disk (`settle`), and stopped by SIGTERM like by
Ctrl-C, through the `finally` blocks that stop its child processes."""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

# Set by `bench.all`: a file listing directories to remove after its last benchmark, not at each end.
REMOVE_LATER_ENV = "AKTENHUB_BENCH_REMOVE_LATER"


def remove(path: Path) -> None:
    """Remove a benchmark's directory: now, or under `bench.all` after its last benchmark.

    This machine's ext4 has no journal, and there the kernel does not give out an inode deleted less
    than 60 s ago (360 s while that inode's table block is not yet written out): creating a file then
    walks past each one (`recently_deleted` in the inode allocation). A benchmark that starts right after
    another removed its tens of thousands of files pays for that walk in every file it creates: in a
    bench.e2e run right after another, 38 % of the enaio simulator's CPU; in a bench.intake_vs_nodered
    run after three others, more than half of the hub's blob committer's (perf). A file created 40 s
    after 30 000 were deleted cost 380 µs instead of 25-30. What a benchmark deletes while it runs is its
    own cost and stays.
    """
    listing = os.environ.get(REMOVE_LATER_ENV)
    if listing:
        with open(listing, "a", encoding="utf-8") as later:
            later.write(f"{path}\n")
    else:
        shutil.rmtree(path, ignore_errors=True)


# A file's create costs 25-60 µs of CPU here on a quiet disk, several hundred right after many deletions.
SLOW_CREATE_SECONDS = 150e-6
# Created per probe, and kept: deleting them would be more of what is waited out. Many, because a new
# file takes the first free inode of its group: free ones before the deleted run are fast, and only once
# they are used up does every create walk the run. The last `PROBE_TIMED` creates are the ones timed.
PROBE_FILES = 2000
PROBE_TIMED = 500
SETTLE_POLL_SECONDS = 5.0
SETTLE_MAX_SECONDS = 120.0


def settle(
    directory: Path,
    *,
    slow: float = SLOW_CREATE_SECONDS,
    poll: float = SETTLE_POLL_SECONDS,
    limit: float = SETTLE_MAX_SECONDS,
) -> tuple[float, bool]:
    """Wait while creating files in `directory` costs what it does right after many deletions (`remove`
    says why); the seconds waited, and whether the creates got fast again within `limit`.

    Another run's deletions (a benchmark of another version just before, a test suite) would otherwise
    be measured as the cost of this run's files. The probe's files stay in `directory`.
    """
    probes = directory / ".settle"
    probes.mkdir(exist_ok=True)
    began = time.monotonic()
    for round_ in itertools.count():
        cpu = 0.0
        for n in range(PROBE_FILES):
            if n == PROBE_FILES - PROBE_TIMED:
                cpu = time.process_time()
            os.close(os.open(probes / f"{round_}-{n}", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        if (time.process_time() - cpu) / PROBE_TIMED <= slow:
            return time.monotonic() - began, True
        if time.monotonic() - began + poll > limit:
            return time.monotonic() - began, False
        time.sleep(poll)
    raise AssertionError("unreachable")


def remove_listed(listing: Path) -> None:
    """Remove the directories `remove` left for later, and the listing."""
    if listing.exists():
        for line in listing.read_text(encoding="utf-8").splitlines():
            if line:
                shutil.rmtree(line, ignore_errors=True)
        listing.unlink()


def run_in_scratch(prefix: str, keep: bool, benchmark: Callable[[Path], None]) -> int:
    """Run `benchmark` in a new temporary directory; its exit status (1 with the reason on failure)."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    # Child processes run a benchmark's file as a script (the hub: bench/e2e.py --serve-hub) in the
    # scratch directory: they import `bench.*` from this checkout only with the checkout on their path.
    root = str(Path(__file__).resolve().parents[1])
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        waited, settled = settle(tmp)
        if not settled:
            print(
                f"warning: creating files is still slow after {waited:.0f} s (many files deleted on this "
                "disk in the last minutes, see bench/scratch.py): figures will be too low",
                file=sys.stderr,
            )
        elif waited >= 1:
            print(f"waited {waited:.0f} s for the disk to settle after recent deletions", file=sys.stderr)
        benchmark(tmp)
    except RuntimeError as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 1
    finally:
        if keep:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            remove(tmp)
    return 0
