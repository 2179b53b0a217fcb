"""A message the hub fetches but does not take in leaves nothing in the hub's blob store.

The core holds every blob a poll writes and removes what no stored application references: here the
XTA client has streamed a message's content and first attachment when the second one exceeds the limit.
The message stays in the mailbox (fetched again at the next poll); its content does not stay in the store.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
from hub_xta.simulator import enqueue
from xta_helpers import AUTHORITY, StartXta, antrag_metadata

from hub.blobs import BlobStore
from hub.journal import ApplicationFilter
from hub.testing.harness import blob_files, stored_blobs


async def test_a_message_refused_mid_fetch_leaves_no_file(
    start_xta: StartXta, http: aiohttp.ClientSession, schema_dir: Path, hub_factory: Any
) -> None:
    xta = await start_xta()
    refused = await enqueue(
        http,
        xta.url,
        AUTHORITY,
        metadata=antrag_metadata(),
        message=b"<antrag>zu gross</antrag>",
        attachments=[
            ("klein.pdf", b"%PDF small", "application/pdf"),
            ("gross.pdf", b"%" * 5000, "application/pdf"),
        ],
    )
    taken = await enqueue(
        http,
        xta.url,
        AUTHORITY,
        metadata=antrag_metadata(),
        message=b"<antrag>passt</antrag>",
        attachments=[("plan.pdf", b"%PDF plan", "application/pdf")],
    )
    running = await hub_factory(
        {
            "xta-in": {
                "type": "xta",
                "xta": {"url": xta.url, "account": {"identifier": AUTHORITY}, "max_content": 1000},
                "poll_seconds": 3600,
            },
            "rec": {"type": "test-recording"},
        },
        [{"name": "all", "from": "xta-in", "to": ["rec"]}],
        schemas=str(schema_dir),
    )

    async def stored() -> list[Any]:
        return await running.journal.list_applications(ApplicationFilter(), limit=10)

    [summary] = await running.wait_for(stored, 10, "the message that fits to be taken in")
    assert summary.external_id == taken["message_id"]
    app = await running.journal.get_application(summary.id)
    assert app is not None and app.original is not None
    expected = {app.original.blob, *(a.blob for a in app.attachments)}
    blobs = running.hub.blobs
    assert isinstance(blobs, BlobStore)

    def only_the_taken_message() -> bool:
        # Nothing of the refused message: no blob (packed or a file), and no temporary file of a download.
        return stored_blobs(blobs) == expected and blob_files(blobs.root) == []

    await running.wait_for(only_the_taken_message, 10, "only the stored application's blobs")
    assert refused["message_id"] in xta.state.mailbox(AUTHORITY)  # not closed: fetched again later
