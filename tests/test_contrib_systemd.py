"""The systemd unit in contrib/ is one systemd accepts without a warning."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNIT = Path(__file__).parents[1] / "contrib" / "systemd" / "aktenhub.service"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_accepts_the_unit_without_a_warning(tmp_path: Path) -> None:
    # The unit names the installed hub in /opt/aktenhub; verify checks that its programs exist, so the
    # test points it at this checkout's `aktenhub` instead.
    installed = Path(sys.executable).parent / "aktenhub"
    assert installed.exists()
    unit = tmp_path / "aktenhub.service"
    unit.write_text(UNIT.read_text(encoding="utf-8").replace("/opt/aktenhub/bin/aktenhub", str(installed)))
    checked = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, check=False, timeout=60
    )
    assert (checked.returncode, checked.stdout + checked.stderr) == (0, "")
    assert f"ExecStart={installed} run -c /etc/aktenhub/aktenhub.yaml" in unit.read_text(encoding="utf-8")
