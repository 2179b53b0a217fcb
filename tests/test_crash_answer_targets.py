"""A hub killed mid-answer, against the real targets: enaio and the BundID mailbox get the answer once.

The hub runs as a subprocess (FormCycle, BundID, enaio, the test kit's answering Fachverfahren, the ZBP
notifier); the enaio, ZBP and BundID IdP simulators run in the test process, so they outlive the hub.
The Fachverfahren's answer is stored (callback 200). enaio applies the Akte's update, but its answer is
lost (the simulator's `drop_after_insert`); the mailbox is down (503). The hub is killed with SIGKILL
before it could retry. The restarted hub runs both steps again: the Akte keeps one set of index data,
the decision is filed once, the applicant gets one status and one message, and the same callback sent
again changes nothing.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from aiohttp.test_utils import TestServer
from hub_bundid.simulator import IdpSimulator
from hub_enaio.simulator import STATE as ENAIO
from hub_enaio.simulator import make_app as enaio_app
from hub_zbp.keys import generate_author
from hub_zbp.simulator import STATE as ZBP
from hub_zbp.simulator import make_app as zbp_app
from test_crash_answers import hub_process
from test_e2e_answers import ANSWERS, CALLBACK_SECRET, DECISION, MAPPING, TOKEN, decided

from hub.answers import CallbackAuth
from hub.callbacks import sign_callback
from hub.testing.processes import hub_settings

ADMIN = "crash-targets-admin-token"
ENAIO_PASSWORD = "enaio-crash-secret"


def write_config(
    tmp: Path, port: int, schema_dir: Path, idp: IdpSimulator, enaio: str, zbp: str, author: Any
) -> Path:
    metadata = tmp / "idp-metadata.xml"
    idp.write_metadata(metadata)
    mapping = tmp / "jagd-mit-antworten.yaml"
    mapping.write_text(MAPPING.read_text("utf-8") + ANSWERS, "utf-8")
    config = {
        **hub_settings(tmp, port, ADMIN, "operator"),
        "schemas": str(schema_dir),
        "connectors": {
            "formcycle": {
                "type": "formcycle",
                "token": TOKEN,
                "id_field": "vorgang_id",
                "header_fields": {"X-BundID-SAML-Response": "bundid_saml_response"},
            },
            "bundid": {
                "type": "bundid",
                "mode": "saml",
                "idp_metadata": str(metadata),
                "sp_entity_id": idp.sp_entity_id,
                "acs_url": idp.acs_url,
            },
            "enaio": {
                "type": "enaio",
                "base_url": enaio,
                "username": "aktenhub",
                "password": ENAIO_PASSWORD,
                # the retry after the lost answer falls due well after the kill
                "retry": {"initial_seconds": 2, "max_seconds": 2, "jitter_seconds": 0},
            },
            "fv": {"type": "test-answering", "callback_secret": CALLBACK_SECRET},
            "postfach": {
                "type": "zbp",
                "base_url": zbp,
                "author_key": author.key_pem,
                "author_certificate": author.certificate_pem,
                "sender_name": "Rhein-Sieg-Kreis",
                "retry": {
                    "max_attempts": 100,
                    "initial_seconds": 0.1,
                    "max_seconds": 0.3,
                    "jitter_seconds": 0,
                },
            },
        },
        "routes": [
            {
                "name": "jagd",
                "from": "formcycle",
                "identity": {"via": "bundid", "min_level": "substantiell"},
                "map": str(mapping),
                "to": ["enaio", "fv"],
                "notify": ["postfach"],
                "on_answer": {"update_akte": "enaio", "notify": ["postfach"], "decision": "both"},
            }
        ],
    }
    path = tmp / "aktenhub.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


async def test_killed_after_enaio_updated_and_before_the_mailbox_was_told_files_and_tells_once(
    tmp_path: Path, schema_dir: Path, reserved_port: Callable[[], int]
) -> None:
    idp = IdpSimulator(
        schema_dir, sp_entity_id="https://aktenhub.example/sp", acs_url="https://formulare.example/bundid/acs"
    )
    enaio = TestServer(enaio_app(users={"aktenhub": ENAIO_PASSWORD}), host="127.0.0.1")
    zbp = TestServer(zbp_app(), host="127.0.0.1")
    await enaio.start_server()
    await zbp.start_server()
    enaio_state, zbp_state = enaio.app[ENAIO], zbp.app[ZBP]
    port = reserved_port()
    url = f"http://127.0.0.1:{port}"
    base = {"enaio": str(enaio.make_url("")).rstrip("/"), "zbp": str(zbp.make_url("")).rstrip("/")}
    config = write_config(tmp_path, port, schema_dir, idp, author=generate_author(), **base)
    admin = {"Authorization": f"Bearer {ADMIN}"}
    handle = idp.mailbox("U04")
    hub = hub_process(config, url)
    hub.start()
    try:
        async with aiohttp.ClientSession() as http:

            async def view(app_id: str) -> dict[str, Any] | None:
                async with http.get(f"{url}/api/v1/applications/{app_id}", headers=admin) as resp:
                    return await resp.json() if resp.status == 200 else None

            async def state_is(app_id: str, state: str) -> bool:
                body = await view(app_id)
                return body is not None and body["state"] == state

            login = idp.response("U04", means="eID")

            async def post_intake() -> Any:
                form = aiohttp.FormData({"vorgang_id": "FC-CRASH-1", "bundid_saml_response": login})
                form.add_field(
                    "ausweis", b"%PDF-1.4 Ausweis", filename="Ausweis.pdf", content_type="application/pdf"
                )
                headers = {"X-Aktenhub-Token": TOKEN}
                async with http.post(
                    f"{url}/intake/formcycle/jagdschein", data=form, headers=headers
                ) as resp:
                    return await resp.json() if resp.status in (200, 202) else None

            app_id = (await hub.until(post_intake, "the intake"))["application_id"]
            await hub.until(lambda: state_is(app_id, "completed"), "the application filed")
            filed = await view(app_id)
            assert filed is not None
            aktenzeichen = filed["file_number"]
            raw = json.dumps({"answers": [decided(app_id)]}).encode()

            async def send_callback() -> Any:
                headers = sign_callback(CallbackAuth(secret=CALLBACK_SECRET), raw, time.time())
                async with http.post(f"{url}/callback/fv", data=raw, headers=headers) as resp:
                    return await resp.json() if resp.status == 200 else None

            enaio_state.knobs.drop_after_insert = 1  # the update is applied, its answer lost
            zbp_state.fail_next = 10_000  # the mailbox is down
            first = await hub.until(send_callback, "the callback answered")
            assert first["answers"][0]["duplicate"] is False

            async def updated() -> bool:
                return enaio_state.updated == 1 and enaio_state.dropped == 1

            await hub.until(updated, "enaio updated, its answer lost")
            await hub.kill()

            zbp_state.fail_next = 0
            hub.start()
            await hub.until(lambda: state_is(app_id, "completed"), "the application completed again")
            again = await hub.until(send_callback, "the repeated callback answered")
            assert again["answers"][0]["duplicate"] is True
            body = await view(app_id)
            assert body is not None
    finally:
        await hub.stop()
        await zbp.close()
        await enaio.close()

    objects = sorted(enaio_state.objects.values(), key=lambda o: o.id)
    (akte,) = [o for o in objects if o.type.internal == "Personenakte"]
    (vorgang,) = [o for o in objects if o.type.internal == "Vorgang"]
    (bescheid,) = [o for o in objects if o.type.internal == "Bescheid"]  # filed once
    assert enaio_state.updated == 2 and akte.updates == 2  # the update ran again: the same values
    assert akte.value("Aktenzeichen") == aktenzeichen == body["file_number"]
    assert (akte.value("FVAktenzeichen"), akte.value("Bearbeitungsstand")) == (
        "UA-2026-17",
        "Bescheid erlassen",
    )
    assert bescheid.parent_id == vorgang.id and bescheid.content is not None
    assert bescheid.content.sha256 == hashlib.sha256(DECISION).hexdigest()  # the decision as sent
    statuses = [s.answer()["payload"]["status"] for s in zbp_state.status_updates(handle)]
    assert statuses == ["RECEIVED", "COMPLETED"], hub.log()
    assert len(zbp_state.messages(handle)) == 2  # the receipt, and the decision once
    types = Counter(e["type"] for e in body["timeline"])
    assert (types["answer.received"], types["answer.filed"]) == (1, 1)
