"""Hub processes on one PostgreSQL journal, through pgbouncer: intake in one, filing in another, woken
by the journal's notice rather than their poll; a journal that cannot commit gets a 503, not a 500."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg

from hub.journal.postgres import migrate
from hub.models import ApplicationState
from hub.testing.fakes import RecordingSink
from hub.testing.postgres import PgBouncer, PostgresServer

CONNECTORS = {"json": {"type": "test-json"}, "rec": {"type": "test-recording"}}
ROUTES = [{"name": "plain", "from": "json", "to": ["rec"]}]


def _store(bouncer: PgBouncer, url: str, **options: str) -> str:
    direct = bouncer.server.url(url.rsplit("/", 1)[1])  # LISTEN does not pass transaction pooling
    query = "&".join([f"listen_url={quote(direct)}", *(f"{k}={v}" for k, v in options.items())])
    return f"{url}?{query}"


# The database first: fixtures end in reverse order, so the hubs stop before it is dropped.
async def test_an_intake_process_and_a_worker_process_share_the_journal(
    pgbouncer_url: str, pgbouncer_server: PgBouncer, hub_factory: Any, tmp_path: Path
) -> None:
    migrate(pgbouncer_url)
    shared = {
        "store": _store(pgbouncer_server, pgbouncer_url, pool_size="4"),
        "blobs": str(tmp_path / "blobs"),
    }
    intake = await hub_factory(
        CONNECTORS, ROUTES, subdir="intake", workers={"enabled": False, "lease_seconds": 30}, **shared
    )
    # The worker's poll would come only after ten minutes: the intake's notice must wake it.
    idle = {"concurrency": 4, "lease_seconds": 30, "idle_poll_seconds": 600}
    worker = await hub_factory(
        CONNECTORS, ROUTES, subdir="worker", intake={"enabled": False}, workers=idle, **shared
    )
    ids = []
    for n in range(3):
        status, body = await intake.post("/intake/json/jagdschein", json={"id": f"pg-{n}", "form": {"n": n}})
        assert status == 202, body
        ids.append(body["application_id"])
    duplicate = await intake.post("/intake/json/jagdschein", json={"id": "pg-0", "form": {"n": 0}})
    assert duplicate == (200, {"application_id": ids[0], "duplicate": True})
    for application_id in ids:
        assert await worker.wait_for_state(application_id, timeout=60) == ApplicationState.COMPLETED
    sink = worker.hub.connectors["rec"]
    assert isinstance(sink, RecordingSink)
    assert sorted(sink.delivered) == sorted(ids)


async def test_intake_answers_503_while_the_journal_cannot_commit(
    postgres_url: str, postgres_server: PostgresServer, hub_factory: Any
) -> None:
    migrate(postgres_url)
    running = await hub_factory(CONNECTORS, ROUTES, store=f"{postgres_url}?connect_timeout=2")
    with psycopg.connect(postgres_server.url(), autocommit=True) as admin:
        # Every connection of the hub's pool is ended, and no new one may be made meanwhile.
        database = postgres_url.rsplit("/", 1)[1]
        admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false')
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (database,)
        )
        status, body = await running.post("/intake/json/jagdschein", json={"id": "down-1", "form": {}})
        assert status == 503, body
        assert body["error"] == "the submission could not be stored; send it again later"
        admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')
    status, body = await running.post("/intake/json/jagdschein", json={"id": "down-1", "form": {}})
    assert status == 202, body  # the process kept serving: the same submission is taken now
    assert await running.wait_for_state(body["application_id"]) == ApplicationState.COMPLETED
