"""Operators decide on held XTA messages with the CLI: close takes them out of the mailbox, keep not."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from click.testing import CliRunner, Result
from hub_xta.simulator import enqueue
from xta_helpers import AUTHORITY, StartXta, antrag_metadata

from hub.cli import main
from hub.testing.harness import RunningHub, base_settings, stop_hub


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


async def test_messages_list_close_and_keep(
    start_xta: StartXta, http: aiohttp.ClientSession, schema_dir: Path, hub_factory: Any, tmp_path: Path
) -> None:
    xta = await start_xta()
    other = antrag_metadata(message_type="anderes.9999")
    first = (await enqueue(http, xta.url, AUTHORITY, metadata=other, message=b"<a/>"))["message_id"]
    second = (await enqueue(http, xta.url, AUTHORITY, metadata=other, message=b"<b/>"))["message_id"]
    connectors = {
        "xta-in": {
            "type": "xta",
            "message_types": ["baugenehmigung.antrag.0200"],
            "poll_seconds": 0.2,
            "xta": {"url": xta.url, "account": {"identifier": AUTHORITY}},
        },
        "rec": {"type": "filedrop", "path": str(tmp_path / "drop")},
    }
    routes = [{"name": "bau", "from": "xta-in", "to": ["rec"]}]
    running: RunningHub = await hub_factory(connectors, routes, schemas=str(schema_dir))

    async def both_held() -> bool:
        return len(await running.journal.list_held(_all())) == 2

    await running.wait_for(both_held, what="both messages held")
    settings = base_settings(tmp_path / "hub", connectors, routes)
    settings["schemas"] = str(schema_dir)
    config = tmp_path / "aktenhub.yaml"
    config.write_text(yaml.safe_dump(settings))
    listed = await asyncio.to_thread(run, "messages", "list", "-c", str(config), "--json")
    assert listed.exit_code == 0, listed.output
    by_message = {h["message_id"]: h for h in json.loads(listed.stdout)}
    assert {h["state"] for h in by_message.values()} == {"quarantined"}

    # Beside the running hub the CLI decides on the hub's journal (as its guest), through the same layer.
    first_id = str(by_message[first]["id"])
    closed = await asyncio.to_thread(
        run,
        "messages",
        "close",
        "-c",
        str(config),
        first_id,
        "--operator",
        "Frau Schmitz",
        "--reason",
        "Irrläufer",
    )
    assert closed.exit_code == 0, closed.output
    assert "closed" in closed.output and "Frau Schmitz" in closed.output
    assert [c.message_id for c in xta.state.closed] == [first]
    assert (await running.journal.held_get(int(first_id))).decided_by == "Frau Schmitz"
    [action] = await running.journal.operator_actions()
    assert (action.operator, action.action, action.reason) == ("Frau Schmitz", "closed", "Irrläufer")
    await stop_hub(running)
    kept = await asyncio.to_thread(run, "messages", "keep", "-c", str(config), str(by_message[second]["id"]))
    assert kept.exit_code == 0, kept.output
    assert list(xta.state.mailbox(AUTHORITY)) == [second]

    listed = await asyncio.to_thread(run, "messages", "list", "-c", str(config), "--json")
    states = {h["message_id"]: (h["state"], h["decided_by"]) for h in json.loads(listed.stdout)}
    assert states[first] == ("closed", "Frau Schmitz")
    assert states[second][0] == "kept" and states[second][1]  # the OS user
    unknown = await asyncio.to_thread(run, "messages", "close", "-c", str(config), "4711")
    assert unknown.exit_code == 1 and "no held message 4711" in unknown.output


def _all() -> Any:
    from hub.held import HeldFilter

    return HeldFilter()
