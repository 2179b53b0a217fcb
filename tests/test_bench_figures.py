"""The benchmarks' ``--json`` figures and `make bench`'s one table built from them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.figures import Figure, read, table, write

ROOT = Path(__file__).resolve().parent.parent


def test_figures_round_trip_and_carry_the_command_that_measured_them(tmp_path: Path) -> None:
    path = tmp_path / "claim.json"
    write(
        path,
        [
            Figure("claim: large/empty, SQLite", 1.04, "x", target=1.10, better="lower"),
            Figure("drain: filed/s", 212.5, "/s", command="python -m bench.drain --count 10000"),
        ],
    )

    stored = json.loads(path.read_text())
    assert [f["name"] for f in stored] == ["claim: large/empty, SQLite", "drain: filed/s"]
    assert stored[0]["command"].startswith("python ")  # filled in: this process's command line
    assert stored[1]["command"] == "python -m bench.drain --count 10000"
    assert read(path)[1] == Figure(
        "drain: filed/s", 212.5, "/s", command="python -m bench.drain --count 10000"
    )


@pytest.mark.parametrize(
    ("value", "target", "better", "met"),
    [
        (1.04, 1.10, "lower", True),
        (1.2, 1.10, "lower", False),
        (151, 150, "higher", True),
        (2, None, "higher", None),
    ],
)
def test_a_figure_meets_its_target_in_the_direction_that_is_better(
    value: float, target: float | None, better: str, met: bool | None
) -> None:
    assert Figure("x", value, "x", target=target, better=better).met() is met  # type: ignore[arg-type]


def test_the_table_shows_value_target_and_whether_it_is_met() -> None:
    text = table(
        [
            Figure("e2e: filed/s", 160.0, "/s", target=150, command="python bench/e2e.py"),
            Figure("drain: peak RSS", 80.5, "MB", command="python -m bench.drain"),
            Figure("claim: large/empty, PostgreSQL", 1.3, "x", target=1.1, better="lower", command="c"),
        ]
    )

    header, rule, *rows = text.splitlines()
    assert header.split() == ["figure", "value", "unit", "target", "met?", "command"]
    assert set(rule) == {"-", " "}
    assert "160  /s" in rows[0] and "≥ 150  yes" in rows[0] and rows[0].endswith("python bench/e2e.py")
    assert "≤ 1.1  NO" in rows[2]
    assert " 80.5  MB" in rows[1]


def test_make_bench_table_reports_a_file_without_figures(tmp_path: Path) -> None:
    good = tmp_path / "good.json"
    write(good, [Figure("render: CPU per application", 7.5, "ms", target=10, better="lower", command="r")])
    bad = tmp_path / "bad.json"
    bad.write_text('{"not": "a list"}')

    run = subprocess.run(
        [sys.executable, "-m", "bench.figures", str(good), str(bad), str(tmp_path / "missing.json")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )

    assert run.returncode == 1
    assert "render: CPU per application" in run.stdout and "yes" in run.stdout
    assert (
        f"no figures from {bad}" in run.stderr
        and f"no figures from {tmp_path / 'missing.json'}" in run.stderr
    )
