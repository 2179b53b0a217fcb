"""The benchmarks' scratch directories: removed at a benchmark's end, or under `bench.all` after the last."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.scratch import REMOVE_LATER_ENV, remove, remove_listed


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
