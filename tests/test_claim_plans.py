"""A claim and a completion walk indexes on every backend: their cost does not grow with the finished
applications a journal keeps for years (``bench/claim.py`` measures it on a million)."""

from __future__ import annotations

from hub.journal import TaskSpec
from hub.journal.lifecycle import SqlJournal
from hub.testing.journal_contract import (  # noqa: F401 - fixtures
    LEASE,
    FakeClock,
    application,
    clock,
    delivered,
    journal,
    journal_backend,
    take_in,
)
from hub.testing.plans import explain, full_scans, recording

CAPACITY = {"enaio": 1, "k3": 2}


async def test_claim_and_complete_search_indexes_only(
    journal: SqlJournal,  # noqa: F811 - the contract suite's fixtures
    clock: FakeClock,  # noqa: F811
) -> None:
    finished = await take_in(journal, application("FC-0"), TaskSpec("deliver", target="enaio"))
    [old] = await journal.claim("worker-1", 1, LEASE, CAPACITY)
    await journal.complete(old, delivered(finished, "enaio"))
    for n, target in enumerate(["enaio", "enaio", "k3", "k3", "k3"], 1):
        await take_in(journal, application(f"FC-{n}"), TaskSpec("deliver", target=target))
    clock.advance(1)

    with recording(journal) as statements:
        claimed = await journal.claim("worker-1", 8, LEASE, CAPACITY)
        await journal.complete(claimed[0], delivered(claimed[0].application_id, claimed[0].target))
    plans = await journal._write(lambda c: explain(c, statements, discourage_scans=True))

    # The finished application's answer step (no target), then the targets within their capacities.
    assert sorted(t.target for t in claimed) == ["", "enaio", "k3", "k3"]
    searched = {sql for sql, _ in plans if "FROM tasks WHERE state=? AND target=?" in sql}
    assert len(searched) == 2, plans  # the leases counted and the due tasks asked per target
    assert {sql: full_scans(plan) for sql, plan in plans if full_scans(plan)} == {}
