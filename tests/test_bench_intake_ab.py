"""bench.intake_ab: what it reads of a process from /proc, and which checkout's code a hub it starts runs."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.intake_ab import Usage, code_of


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads /proc (Linux)")
def test_usage_counts_the_main_thread_within_all_threads() -> None:
    before = Usage.of(os.getpid())
    deadline = time.process_time() + 0.05
    while time.process_time() < deadline:  # spend CPU in this (the main) thread
        pass
    after = Usage.of(os.getpid())

    assert after.main > before.main
    assert after.total - before.total >= after.main - before.main
    assert after.switches >= before.switches >= 0


def test_a_process_started_inside_imports_the_checkouts_hub(tmp_path: Path) -> None:
    checkout = tmp_path / "checkout"
    (checkout / "hub").mkdir(parents=True)
    (checkout / "hub" / "__init__.py").write_text("")
    (checkout / "plugins" / "formcycle").mkdir(parents=True)
    before = os.environ.get("PYTHONPATH")
    with code_of(checkout):
        found = subprocess.run(
            [sys.executable, "-c", "import hub; print(hub.__file__)"],
            capture_output=True,
            text=True,
            check=True,
            env=os.environ.copy(),
            cwd=tmp_path,  # as the benchmark starts a hub: not from a checkout's root
        ).stdout.strip()
    assert found == str(checkout / "hub" / "__init__.py")
    assert os.environ.get("PYTHONPATH") == before
