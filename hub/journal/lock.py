"""The exclusive lock that makes a SQLite journal belong to one process.

The SQLite backend releases every lease at start (`recover`), which is only right when no other process
works on the same file. An advisory ``flock`` on the sidecar ``<journal>.lock`` is taken before the
journal is touched and held as long as the journal is open; the kernel drops it when the process ends,
even by SIGKILL, so a crash never leaves a stale lock behind. The holder's PID is written into the file
only to name it in the refusal: the lock itself, not the file's content, decides. Operators' commands
beside the running hub do not take it: they open the journal as a guest (`open_journal(guest=True)`,
`hub.operations`), which never releases leases.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from hub.errors import AktenhubError


class JournalInUse(AktenhubError):
    """Another process holds the journal: a second hub (or a writing command) must not start on it."""

    def __init__(self, path: str, pid: int | None) -> None:
        holder = f"process {pid}" if pid is not None else "another process"
        super().__init__(
            f"journal {path} is in use by {holder}: a SQLite journal belongs to exactly one hub process"
        )
        self.path = path
        self.pid = pid


def lock_path(journal_path: str | Path) -> Path:
    """The sidecar file whose lock stands for the journal."""
    return Path(f"{journal_path}.lock")


class JournalLock:
    """An exclusive, non-blocking ``flock`` on ``<journal>.lock``, held until `release`."""

    def __init__(self, journal_path: str | Path) -> None:
        self.journal_path = str(journal_path)
        self.path = lock_path(journal_path)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        """Whether this object holds the lock."""
        return self._fd is not None

    def acquire(self) -> None:
        """Take the lock or raise `JournalInUse` naming the holder's PID; never waits."""
        if self._fd is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Close-on-exec (Python's default): a helper process must not inherit and outlive the lock.
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _read_pid(fd)
            os.close(fd)
            raise JournalInUse(self.journal_path, pid) from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        self._fd = fd

    def release(self) -> None:
        """Give the lock up (the file stays: removing it would race with the next process taking it)."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        os.close(fd)  # closing the descriptor drops the flock


def in_use(journal_path: str | Path) -> JournalInUse | None:
    """Why the journal cannot be taken now (held by another process), or None if it is free."""
    lock = JournalLock(journal_path)
    try:
        lock.acquire()
    except JournalInUse as exc:
        return exc
    lock.release()
    return None


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None
