"""A route's `after:`: a target is delivered only once the targets it names are done (e.g. a Fachverfahren
after the e-file, so that its import names the Akte's object id); the others run in parallel, and the
application completes, and is told, once after the last stage.
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from hub.config import RouteConfig
from hub.models import ApplicationState
from hub.testing.fakes import RecordingNotifier, RecordingSink

TOKENS = {"OPERATOR_TOKEN": "o-secret-order"}
SERVER = {
    "listen": "127.0.0.1:0",
    "admin_tokens": [{"name": "ops", "token": "${OPERATOR_TOKEN}", "role": "operator"}],
}
OPERATOR = {"Authorization": "Bearer o-secret-order"}


async def test_a_target_after_another_waits_for_it_and_the_application_is_told_once(hub_factory: Any) -> None:
    connectors = {
        "json": {"type": "test-json"},
        "efile": {"type": "test-recording", "poison": True},  # refuses until "fixed"
        "side": {"type": "test-recording"},  # no order: delivered in parallel
        "fv": {"type": "test-recording"},
        "mailbox": {"type": "test-notifier"},
    }
    route = {
        "name": "r",
        "from": "json",
        "to": ["efile", "side", "fv"],
        "after": {"fv": "efile"},
        "notify": ["mailbox"],
    }
    running = await hub_factory(connectors, [route], env=TOKENS, server=SERVER)
    status, body = await running.post("/intake/json/wasserrecht", json={"id": "order-1", "form": {}})
    assert status == 202, body
    app_id = str(body["application_id"])
    assert await running.wait_for_state(app_id, [ApplicationState.DEAD]) == ApplicationState.DEAD

    efile, side, fv = (running.hub.connectors[n] for n in ("efile", "side", "fv"))
    mailbox = running.hub.connectors["mailbox"]
    assert (
        isinstance(efile, RecordingSink) and isinstance(side, RecordingSink) and isinstance(fv, RecordingSink)
    )
    assert isinstance(mailbox, RecordingNotifier)

    async def side_delivered() -> bool:  # the e-file's refusal may come first
        return app_id in side.delivered

    await running.wait_for(side_delivered, what="the parallel target delivered")
    delivering = {t.target for t in await running.journal.tasks(app_id) if t.step == "deliver"}
    assert delivering == {"efile", "side"}  # the Fachverfahren waits for the e-file
    assert not fv.attempts and not mailbox.receipts

    efile.poison = False  # the e-file is fixed; the operator replays
    status, body = await running.post(f"/api/v1/applications/{app_id}/replay", headers=OPERATOR)
    assert status == 200, body
    assert await running.wait_for_state(app_id) == ApplicationState.COMPLETED
    assert fv.attempts == {app_id: 1} and app_id in efile.delivered
    # The Fachverfahren saw what the e-file's delivery recorded.
    assert fv.delivered[app_id].application_id == app_id
    app = await running.journal.get_application(app_id)
    assert app is not None and app.correlations["efile"] == f"rec-{app_id}"
    assert list(mailbox.receipts) == [(app_id, "received")]  # told once, after the last stage
    events = [e.type for e in await running.journal.events(app_id)]
    assert events.count("application.delivered") == 1 and events.count("application.completed") == 1


@pytest.mark.parametrize(
    ("after", "expected"),
    [
        ({"fv": ["dms"]}, "after: dms not among the route's targets"),
        ({"fv": ["efile"], "efile": ["fv"]}, "after: the targets wait for each other (a cycle)"),
    ],
)
def test_an_order_naming_other_targets_or_a_cycle_is_refused(after: dict[str, Any], expected: str) -> None:
    with pytest.raises(ValidationError) as refused:
        RouteConfig.model_validate({"name": "r", "from": "json", "to": ["efile", "fv"], "after": after})
    assert expected in str(refused.value)


def test_stages_follow_the_order_and_keep_the_routes_order_within_one() -> None:
    route = RouteConfig.model_validate(
        {
            "name": "r",
            "from": "json",
            "to": ["fv", "efile", "xdomea", "k3"],
            "after": {"fv": "efile", "k3": "fv"},
        }
    )
    assert route.stages() == [["efile", "xdomea"], ["fv"], ["k3"]]
