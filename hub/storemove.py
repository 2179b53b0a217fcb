"""Moving an installation's journal and files to other stores (``aktenhub migrate-store``).

From the embedded SQLite journal and local files to PostgreSQL and object storage, when a Kreis moves to
several hub processes. The hub is stopped for the move (the source journal's lock makes sure), so nothing
changes under it; submissions meanwhile wait at their sources (form servers and portals retry, XTA
messages stay in their mailboxes). Nothing is lost and nothing is half done:

1. every file the journal references is copied first, by content address: the target store computes
   the sha256 again while it takes the content, so a file that arrived different would have another
   address and is refused;
2. then the journal's rows, in one transaction on the target (`hub.journal.transfer`);
3. then both are checked: the same rows per table, every referenced file in the target store.

A move that broke off is run again: files already copied are skipped, the journal's transaction left
nothing. The source stays as it was, so going back is starting the hub with the old configuration.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from hub.blobs import Blobs, open_blobs
from hub.config import HubConfig
from hub.journal import open_journal
from hub.journal.lifecycle import SqlJournal

log = logging.getLogger(__name__)


class MoveFailed(Exception):
    """The move's check found a difference; the target must not be used."""


@dataclass
class Moved:
    """What a move carried over."""

    rows: dict[str, int] = field(default_factory=dict)
    blobs: int = 0
    blobs_copied: int = 0
    blob_bytes: int = 0


async def move_store(
    source: SqlJournal,
    source_blobs: Blobs,
    target: SqlJournal,
    target_blobs: Blobs,
    say: Callable[[str], None] = lambda line: None,
) -> Moved:
    """Move everything of `source` (+ its files) into the empty `target` (+ its store); both are open."""
    moved = Moved()
    refs = sorted(await source.blob_references())
    say(f"files: {len(refs)} referenced by the journal")
    for n, ref in enumerate(refs, 1):
        moved.blobs += 1
        if await target_blobs.exists(ref):
            continue
        info = await target_blobs.write(source_blobs.read(ref))
        if info.ref != ref:  # the content is not what its address says: the source file is damaged
            raise MoveFailed(f"file {ref} reads back as {info.ref}: the source store is damaged")
        moved.blobs_copied += 1
        moved.blob_bytes += info.size
        if n % 500 == 0:
            say(f"files: {n}/{len(refs)}")
    say(f"files: {moved.blobs_copied} copied, {moved.blobs - moved.blobs_copied} there already")

    moved.rows = (await target.take_over(source)).rows
    say("journal: " + ", ".join(f"{table} {n}" for table, n in sorted(moved.rows.items()) if n))
    theirs, ours = await asyncio.gather(source.row_counts(), target.row_counts())
    differing = {t: (n, ours.get(t)) for t, n in theirs.items() if ours.get(t) != n}
    if differing:
        raise MoveFailed(f"rows differ after the move (source, target): {differing}")
    missing = [ref for ref in await target.blob_references() if not await target_blobs.exists(ref)]
    if missing:
        raise MoveFailed(f"{len(missing)} referenced files are not in the target store, e.g. {missing[0]}")
    say("checked: the same rows in every table, every referenced file in the target store")
    return moved


async def move_installation(source: HubConfig, target: HubConfig, say: Callable[[str], None]) -> Moved:
    """Move the stores `source` names into those `target` names (`aktenhub migrate-store`).

    The source journal is opened as its hub would (its lock refuses the move while that hub runs); the
    target journal must be at this hub's schema already (`aktenhub migrate` on the new configuration).
    """
    if source.store == target.store:
        raise MoveFailed("the two configurations name the same journal")
    old, new = open_journal(source.store), open_journal(target.store)
    if not isinstance(old, SqlJournal) or not isinstance(new, SqlJournal):
        raise MoveFailed("both journals must be SQL journals")
    # Either may be a directory or an S3 bucket: a move to object storage is a move like any other.
    old_files, new_files = open_blobs(source.blobs), open_blobs(target.blobs)
    await old.open()
    try:
        await old_files.open()  # a directory store may first move into its current layout
        await new.open()
        try:
            await new_files.open()
            return await move_store(old, old_files, new, new_files, say)
        finally:
            await new.close()
            await new_files.close()
    finally:
        await old.close()
        await old_files.close()
