"""SIGKILL during `aktenhub purge`: every application purged wholly or not at all, no dangling reference.

The purge erases the journal in batches (one transaction each) and deletes blobs only afterwards, so a
kill leaves at most blobs nothing references; the next run finishes the purge and the orphan sweep
takes the leftovers. Blobs shared with a live application survive all of it.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from hub.models import ApplicationState
from hub.testing import make_application
from hub.testing.harness import backdate_blobs, base_settings, blob_files, stop_hub, stored_blobs

TOKEN = "formcycle-token-0123456789"
COUNT = 100
SHARED = b"%PDF-1.4 a Personalausweis the live application has too\n"
REF = re.compile(r"sha256:([0-9a-f]{64})")


def connectors(tmp: Path) -> dict[str, Any]:
    return {
        "formcycle": {"type": "formcycle", "token": "${FORMCYCLE_TOKEN}", "id_field": "vorgang_id"},
        "import": {"type": "filedrop", "path": str(tmp / "import")},
    }


ROUTES = [{"name": "all", "from": "formcycle", "to": ["import"]}]
RETENTION = {"scheduled": False, "batch_size": 1, "policies": [{"name": "sofort", "days": 0}]}


def journal_rows(db: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{db}?mode=ro", uri=True)


def purged_count(db: Path) -> int:
    conn = journal_rows(db)
    try:
        return int(
            conn.execute("SELECT COUNT(*) FROM applications WHERE purged_at IS NOT NULL").fetchone()[0]
        )
    finally:
        conn.close()


def purge(config: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "FORMCYCLE_TOKEN": TOKEN}
    cmd = [sys.executable, "-m", "hub", "purge", "-c", str(config)]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def test_sigkill_during_purge_leaves_whole_applications_and_no_dangling_reference(
    tmp_path: Path, hub_factory: Any
) -> None:
    cons = connectors(tmp_path)
    env = {"FORMCYCLE_TOKEN": TOKEN}
    running = await hub_factory(cons, ROUTES, env=env, workers={"enabled": False}, retention=RETENTION)
    store = running.hub.blobs
    live = await make_application(
        store, source="formcycle", external_id="live", files={"ausweis.pdf": SHARED}
    )
    live.route = "all"
    await running.journal.intake(live, [], [], state=ApplicationState.DEAD)

    async def finished(n: int) -> None:
        files = {"ausweis.pdf": SHARED} if n % 10 == 0 else {}
        app = await make_application(store, source="formcycle", external_id=f"done-{n}", files=files)
        app.route = "all"
        await running.journal.intake(app, [], [], state=ApplicationState.COMPLETED)

    await asyncio.gather(*(finished(n) for n in range(COUNT)))  # concurrent: their commits are grouped
    await stop_hub(running)
    backdate_blobs(store, stored_blobs(store), 7200)  # written long ago, like anything due for purging
    keep = {x.blob for x in [*live.attachments, live.original] if x}

    db = tmp_path / "hub" / "journal.db"
    config = tmp_path / "aktenhub.yaml"
    config.write_text(
        yaml.safe_dump({**base_settings(tmp_path / "hub", cons, ROUTES), "retention": RETENTION})
    )
    proc = purge(config)
    deadline = time.monotonic() + 60
    while purged_count(db) == 0 and proc.poll() is None and time.monotonic() < deadline:
        await asyncio.sleep(0.005)  # polling the journal for the first committed batch
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_after = purged_count(db)
    assert 0 < killed_after < COUNT, "the kill should land while the purge runs"

    conn = journal_rows(db)
    try:
        for app_id, purged_at, doc in conn.execute("SELECT id, purged_at, doc FROM applications"):
            events = [t for (t,) in conn.execute("SELECT type FROM events WHERE application_id=?", (app_id,))]
            if purged_at is None:  # untouched: its payload and timeline as they were
                assert "Jürgen" in doc and "application.purged" not in events
            else:  # wholly purged
                assert "Jürgen" not in doc and events[-1] == "application.purged"
        text = "\n".join(
            str(value)
            for (table,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table'").fetchall()
            for row in conn.execute(f'SELECT * FROM "{table}"').fetchall()
            for value in row
        )
    finally:
        conn.close()
    for digest in set(REF.findall(text)):  # nothing the journal references is gone, nor damaged
        content = await store.read_bytes(f"sha256:{digest}")
        assert hashlib.sha256(content).hexdigest() == digest

    again = await hub_factory(cons, ROUTES, env=env, workers={"enabled": False}, retention=RETENTION)
    report = await again.hub.retention.purge()  # the next run finishes what the killed one began
    assert report.applications == COUNT - killed_after
    assert purged_count(db) == COUNT

    def only_the_live_blobs_left() -> bool:
        return stored_blobs(again.hub.blobs) == keep

    await again.wait_for(only_the_live_blobs_left, 30, "the orphan sweep to take the leftovers")
    assert blob_files(again.hub.blobs.root) == []  # no file besides the pack: no temporary one either
    assert (await again.journal.get_application(live.id)) == live
