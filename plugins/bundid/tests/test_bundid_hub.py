"""The BundID identity step in a running hub: rejections are business outcomes, the hub keeps serving."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bundid_helpers import FIELD, saml_settings
from hub_bundid.simulator import Fault, IdpSimulator

from hub import ApplicationState
from hub.testing.fakes import RecordingSink


def hub_settings(idp: IdpSimulator, metadata: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    connectors = {
        "formserver": {"type": "test-json"},
        "bundid": saml_settings(idp, metadata),
        "rec": {"type": "test-recording"},
    }
    routes = [
        {
            "name": "waffenschein",
            "from": "formserver",
            "identity": {"via": "bundid", "min_level": "substantiell"},
            "to": ["rec"],
        }
    ]
    return connectors, routes


async def submit(running: Any, ident: str, response: str) -> str:
    body = {"id": ident, "form": {FIELD: response, "anliegen": "Waffenschein"}}
    status, answer = await running.post("/intake/formserver/waffenschein", json=body)
    assert status == 202, answer
    return str(answer["application_id"])


async def rejection_of(running: Any, app_id: str) -> dict[str, Any]:
    events = await running.journal.events(app_id)
    rejected = [e for e in events if e.type == "application.rejected"]
    assert len(rejected) == 1, [e.type for e in events]
    return dict(rejected[0].data)


async def test_level_1_is_rejected_and_a_valid_login_completes(
    hub_factory: Any, idp: IdpSimulator, metadata: Path
) -> None:
    running = await hub_factory(*hub_settings(idp, metadata))
    sink = running.hub.connectors["rec"]
    assert isinstance(sink, RecordingSink)

    low = await submit(running, "low", idp.response("U01", fault=Fault.LEVEL_TOO_LOW))
    assert await running.wait_for_state(low) == ApplicationState.REJECTED
    data = await rejection_of(running, low)
    assert data["reason"].startswith("Vertrauensniveau zu niedrig: ")
    assert data["code"] == "level-too-low"
    assert sink.delivered == {}

    good = await submit(running, "good", idp.response("U06", means="Elster"))
    assert await running.wait_for_state(good) == ApplicationState.COMPLETED
    assert list(sink.delivered) == [good]
    app = await running.journal.get_application(good)
    assert app.applicant.family_name == "Humpenöder"
    assert app.applicant.address.city == "Roßtal"
    assert app.identity.level.value == "substantiell"
    assert app.identity.asserted_by == "idp"


async def test_forged_and_replayed_responses_are_rejected_nothing_delivered(
    hub_factory: Any, idp: IdpSimulator, metadata: Path
) -> None:
    running = await hub_factory(*hub_settings(idp, metadata))
    sink = running.hub.connectors["rec"]
    assert isinstance(sink, RecordingSink)

    cases = {
        "wrapped": (idp.response("U02", fault=Fault.WRAPPED), "bad-signature"),
        "altered": (idp.response("U02", fault=Fault.ALTERED), "bad-signature"),
        "expired": (idp.response("U02", fault=Fault.EXPIRED), "expired"),
        "audience": (idp.response("U02", fault=Fault.WRONG_AUDIENCE), "wrong-audience"),
    }
    ids = {name: await submit(running, name, response) for name, (response, _) in cases.items()}
    for name, app_id in ids.items():
        assert await running.wait_for_state(app_id) == ApplicationState.REJECTED, name
        data = await rejection_of(running, app_id)
        assert data["code"] == cases[name][1], name
        assert idp.sp_entity_id not in data["reason"] and idp.acs_url not in data["reason"]
    assert sink.delivered == {}

    original = idp.response("U07", level=4)
    first = await submit(running, "first", original)
    assert await running.wait_for_state(first) == ApplicationState.COMPLETED
    replayed = await submit(running, "second", idp.response(fault=Fault.REPLAYED))
    assert await running.wait_for_state(replayed) == ApplicationState.REJECTED
    assert (await rejection_of(running, replayed))["code"] == "replayed"
    assert list(sink.delivered) == [first]
