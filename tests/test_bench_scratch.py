"""The benchmarks' scratch directories: removed at a benchmark's end, or under `bench.all` after the last."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.scratch import PROBE_FILES, REMOVE_LATER_ENV, remove, remove_listed, settle


def scratch(parent: Path, name: str) -> Path:
    directory = parent / name
    (directory / "blobs").mkdir(parents=True)
    (directory / "blobs" / "a").write_bytes(b"content")
    return directory


def test_a_directory_is_removed_at_once_outside_bench_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(REMOVE_LATER_ENV, raising=False)
    directory = scratch(tmp_path, "run")
    remove(directory)
    assert not directory.exists()


def test_under_bench_all_directories_stay_until_the_listing_is_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    listing = tmp_path / "remove-later.txt"
    monkeypatch.setenv(REMOVE_LATER_ENV, str(listing))
    first, second = scratch(tmp_path, "e2e"), scratch(tmp_path, "drain")
    remove(first)
    remove(second)
    assert first.exists() and second.exists()
    remove_listed(listing)
    assert not first.exists() and not second.exists() and not listing.exists()
    remove_listed(listing)  # nothing listed: nothing to do


def test_a_disk_fast_enough_is_probed_once_and_the_probes_are_kept(tmp_path: Path) -> None:
    _, settled = settle(tmp_path, slow=1.0)  # a second per create: any disk is fast enough
    assert settled
    # one round, kept, not deleted: a deletion is what the benchmark waits out
    assert len(list((tmp_path / ".settle").iterdir())) == PROBE_FILES


def test_a_disk_that_stays_slow_is_given_up_on_at_the_limit(tmp_path: Path) -> None:
    _, settled = settle(tmp_path, slow=0.0, poll=0.01, limit=0.0)  # no create is ever that fast
    assert not settled
    assert len(list((tmp_path / ".settle").iterdir())) == PROBE_FILES  # no pause, no second round
