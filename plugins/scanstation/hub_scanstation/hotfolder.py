"""The hot folder: which batches are complete, and where a batch goes once it is dealt with.

A batch is a folder in the hot folder, or a group of files directly in it sharing a batch name
(``group_pattern``). It is complete when its marker file exists (``{batch}.ready``, written last by
the scan software) or, without marker, when its files' names, sizes and modification times stayed the
same for ``stable_seconds``; nothing of an incomplete batch is read. A complete file group is first
gathered into ``.assembling/<batch>/`` file by file and then renamed into a folder batch in one step,
so a crash half-way leaves a gathering that the next look finishes rather than half a batch.

Taken batches are renamed into ``done/``, failed ones into ``failed/`` (each one rename on one
filesystem: a batch is never half moved); a name already used there gets a ``-2``, ``-3``... suffix.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path

ASSEMBLING = ".assembling"
REASON_FILE = "AKTENHUB-FEHLER.txt"
MAX_SUFFIX = 100  # failed names looked up at once: B0001, B0001-2, ... (a batch failing 100 times is rare)
Snapshot = tuple[tuple[str, int, int], ...]


@dataclass(frozen=True)
class Batch:
    """A complete batch: its folder and its name."""

    path: Path
    name: str


class HotFolder:
    """One hot folder as a source sees it; remembers what it saw for the stability check."""

    def __init__(
        self,
        root: Path,
        done: Path,
        failed: Path,
        *,
        marker: str | None,
        stable_seconds: float,
        group_pattern: str | None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.root = root
        self.done = done
        self.failed = failed
        self.marker = marker
        self.stable_seconds = stable_seconds
        self.group = re.compile(group_pattern) if group_pattern else None
        self.clock = clock
        self._seen: dict[str, tuple[Snapshot, float]] = {}

    def prepare(self) -> None:
        """Create done/ and failed/ and check that renames into them stay on one filesystem."""
        for folder in (self.done, self.failed, self.root / ASSEMBLING):
            folder.mkdir(parents=True, exist_ok=True)
            if folder.stat().st_dev != self.root.stat().st_dev:
                raise ValueError(
                    f"{folder} is on another filesystem than the hot folder {self.root}: batches are "
                    "moved by rename, which must not copy"
                )

    def complete(self) -> list[Batch]:
        """The batches ready to be taken, oldest name first (file groups gathered into folders)."""
        self._finish_gatherings()
        skip = {self.done.resolve(), self.failed.resolve()}
        self._adopt_markers(skip)
        batches: list[Batch] = []
        groups: dict[str, list[Path]] = {}
        present: set[str] = set()
        for entry in sorted(self.root.iterdir()):
            if entry.name.startswith(".") or entry.is_symlink():
                continue
            if entry.is_dir():
                if entry.resolve() in skip:
                    continue
                present.add(entry.name)
                if self._is_complete(entry.name, entry, _folder_files(entry)):
                    batches.append(Batch(entry, entry.name))
            elif entry.is_file() and self.group is not None:
                match = self.group.match(entry.name)
                if match:
                    groups.setdefault(match.group("batch"), []).append(entry)
        for name, files in sorted(groups.items()):
            key = f"group:{name}"
            present.add(key)
            if name in present or not self._is_complete(key, self.root, files, name):
                continue  # a folder of the same name waits first
            batches.append(self._gather(name, files))
        for gone in set(self._seen) - present:
            del self._seen[gone]
        return batches

    def _adopt_markers(self, skip: set[Path]) -> None:
        """A marker written beside its batch folder (as some capture software does) moves into it."""
        if self.marker is None:
            return
        for entry in self.root.iterdir():
            if (
                entry.name.startswith(".")
                or entry.is_symlink()
                or not entry.is_dir()
                or entry.resolve() in skip
            ):
                continue
            marker = self.marker.format(batch=entry.name)
            beside = self.root / marker
            if beside.is_file() and not beside.is_symlink():
                os.replace(beside, entry / marker)

    def waiting(self) -> int:
        """Entries in the hot folder that are not done/, failed/ or hidden (complete or not)."""
        skip = {self.done.resolve(), self.failed.resolve()}
        return sum(1 for p in self.root.iterdir() if not p.name.startswith(".") and p.resolve() not in skip)

    def _is_complete(self, key: str, where: Path, files: list[Path], name: str | None = None) -> bool:
        if self.marker is not None:
            marker = self.marker.format(batch=name or where.name)
            return any(f.name == marker for f in files)
        snapshot = _snapshot(files)
        now = self.clock()
        seen = self._seen.get(key)
        if seen is None or seen[0] != snapshot:
            self._seen[key] = (snapshot, now)
            return False
        return now - seen[1] >= self.stable_seconds

    def _gather(self, name: str, files: list[Path]) -> Batch:
        staging = self.root / ASSEMBLING / name
        staging.mkdir(parents=True, exist_ok=True)
        for file in files:
            os.replace(file, staging / file.name)
        target = self.root / name
        os.rename(staging, target)  # a folder batch from now on, complete as gathered
        self._seen.pop(f"group:{name}", None)
        return Batch(target, name)

    def _finish_gatherings(self) -> None:
        """Gatherings a crash interrupted: the rest of their files joins them, then they become batches."""
        assembling = self.root / ASSEMBLING
        if self.group is None or not assembling.is_dir():
            return
        for staging in sorted(assembling.iterdir()):
            if not staging.is_dir() or (self.root / staging.name).exists():
                continue
            for file in sorted(self.root.iterdir()):
                match = self.group.match(file.name) if file.is_file() else None
                if match and match.group("batch") == staging.name:
                    os.replace(file, staging / file.name)
            os.rename(staging, self.root / staging.name)

    def take_done(self, batch: Batch) -> Path:
        """Move a taken batch into done/; returns where it went."""
        return _move(batch.path, self.done)

    def failed_name(self, batch: Batch, avoid: Collection[str] = ()) -> str:
        """The name the batch will have in failed/ (the held message's id): free there, not in `avoid`."""
        return _free_name(self.failed, batch.name, avoid)

    def failed_candidates(self, batch: Batch) -> list[str]:
        """The names `failed_name` may choose from (to look up the ones an operator decided on)."""
        return [batch.name, *(f"{batch.name}-{n}" for n in range(2, MAX_SUFFIX + 1))]

    def take_failed(self, batch: Batch, name: str, reason: str) -> Path:
        """Move a batch that cannot be taken into failed/<name>, with a file saying why."""
        target = self.failed / name
        if batch.path.exists():
            os.rename(batch.path, target)
        if target.is_dir():
            temporary = target / (REASON_FILE + ".tmp")
            temporary.write_text(reason + "\n", encoding="utf-8")
            os.replace(temporary, target / REASON_FILE)
        return target


def _folder_files(folder: Path) -> list[Path]:
    return [p for p in sorted(folder.iterdir()) if p.is_file() and not p.is_symlink()]


def _snapshot(files: list[Path]) -> Snapshot:
    found = []
    for file in files:
        try:
            stat = file.stat()
        except FileNotFoundError:
            continue
        found.append((file.name, stat.st_size, stat.st_mtime_ns))
    return tuple(found)


def _free_name(folder: Path, name: str, avoid: Collection[str] = ()) -> str:
    candidate, n = name, 1
    while (folder / candidate).exists() or candidate in avoid:
        n += 1
        candidate = f"{name}-{n}"
    return candidate


def _move(source: Path, folder: Path) -> Path:
    target = folder / _free_name(folder, source.name)
    os.rename(source, target)
    return target
