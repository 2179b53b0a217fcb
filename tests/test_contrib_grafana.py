"""The Grafana dashboard in contrib/ queries only metrics the hub exports, in valid PromQL."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

DASHBOARD = Path(__file__).parents[1] / "contrib" / "grafana" / "aktenhub-dashboard.json"
METRIC = re.compile(r"\baktenhub_[a-z_]+\b")
HISTOGRAM_SERIES = ("_bucket", "_sum", "_count")


def queries() -> list[str]:
    board = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return [target["expr"] for panel in board["panels"] for target in panel["targets"]]


def exported(exposition: str) -> set[str]:
    """The series names a /metrics exposition declares (histograms with their _bucket/_sum/_count)."""
    names: set[str] = set()
    for line in exposition.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            names.add(name)
            if kind == "histogram":
                names.update(name + suffix for suffix in HISTOGRAM_SERIES)
    return names


async def test_every_metric_the_dashboard_queries_is_exported(hub_factory: Any) -> None:
    running = await hub_factory({"out": {"type": "log"}}, [])
    status, exposition = await running.get("/metrics")
    assert status == 200
    asked = {name for expr in queries() for name in METRIC.findall(expr)}
    assert len(asked) >= 10, "the dashboard queries the hub's metrics"
    assert asked - exported(exposition) == set()


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_every_query_is_valid_promql(tmp_path: Path) -> None:
    # promtool checks PromQL in rule files: each panel query becomes a recording rule.
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"aktenhub:dashboard_query:{n}", "expr": e} for n, e in enumerate(queries())
                ],
            }
        ]
    }
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump(rules), encoding="utf-8")
    checked = subprocess.run(
        ["promtool", "check", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
