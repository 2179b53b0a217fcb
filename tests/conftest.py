"""Core tests use the fixtures of `hub.testing` (registered as a pytest plugin by the package)."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Callable, Iterable

import pytest

from hub.blobs import BlobStore
from hub.blobs.base import digest_of
from hub.blobs.pack import PACK_FILE

Backdate = Callable[[BlobStore, Iterable[str], float], None]


def backdate(store: BlobStore, refs: Iterable[str], seconds: float) -> None:
    """Make stored blobs look written `seconds` ago, as the orphan sweep and the purge see it.

    Small content is a row of the store's pack, whose `written` time stands for a file's; large content
    is a file of its own. A reference stored in neither is an error of the test, not skipped.
    """
    then = time.time() - seconds
    with contextlib.closing(sqlite3.connect(store.root / PACK_FILE)) as pack, pack:
        for ref in refs:
            packed = pack.execute("UPDATE blobs SET written = ? WHERE digest = ?", (then, digest_of(ref)))
            path = store.path(ref)
            if path.is_file():
                os.utime(path, (then, then))
            elif not packed.rowcount:
                raise FileNotFoundError(f"{ref} is not stored in {store.root}")


@pytest.fixture
def backdate_blobs() -> Backdate:
    """`backdate`: blobs written long ago (past the orphan grace period, like anything due for purging)."""
    return backdate
