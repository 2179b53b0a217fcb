"""End to end through a hub: intake → identity → mapping (Aktenzeichen) → delivery → ZBP receipt."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hub_zbp.envelope import application_uuid
from hub_zbp.keys import GeneratedAuthor
from zbp_helpers import StartZbp, Zbp, notifier_settings

from hub import (
    Application,
    ApplicationState,
    Connector,
    ConnectorConfig,
    Identity,
    IdentityProvider,
    Manifest,
    Party,
    Rejection,
    TrustLevel,
    Verification,
    hookimpl,
)


class MailboxIdentity(IdentityProvider[ConnectorConfig]):
    """Takes level and mailbox handle from form fields `level` and `postkorb`, as a verified identity.

    Stands in for the BundID identity provider, which fills `applicant.mailbox` from the assertion.
    """

    kind = "zbp-test-identity"
    manifest = Manifest(name="ZBP test identity", version="1")

    async def verify(self, application: Application, minimum_level: TrustLevel | None) -> Verification:
        level = application.form.get("level")
        if not isinstance(level, str):
            raise Rejection("no identity in the submission", code="no-identity")
        mailbox = application.form.get("postkorb")
        return Verification(
            identity=Identity(verified=True, provider="test", asserted_by="idp", level=TrustLevel(level)),
            applicant=Party(given_name="Erika", family_name="Mustermann", mailbox=mailbox or None),
        )


@hookimpl
def aktenhub_connector_types() -> Sequence[type[Connector]]:
    """The test identity provider."""
    return [MailboxIdentity]


async def start(
    hub_factory: Any, tmp_path: Path, zbp: Zbp, author: GeneratedAuthor, min_level: str | None = None
) -> Any:
    mapping = tmp_path / "jagdschein.yaml"
    mapping.write_text('version: 1\nfile_number: {pattern: "32.3-{year}-{seq:05d}"}\n', encoding="utf-8")
    key_path, certificate_path = author.write(tmp_path / "keys")
    fast = {"max_attempts": 5, "initial_seconds": 0.05, "max_seconds": 0.1, "jitter_seconds": 0}
    connectors = {
        "json": {"type": "test-json"},
        "rec": {"type": "test-recording"},
        "ident": {"type": "zbp-test-identity"},
        "postfach": {
            **notifier_settings(author, zbp.url),
            "author_key": "${ZBP_AUTHOR_KEY}",
            "author_certificate": str(certificate_path),
            "retry": fast,
        },
    }
    identity: dict[str, Any] = {"via": "ident"}
    if min_level:
        identity["min_level"] = min_level
    routes = [
        {
            "name": "jagdschein",
            "from": "json",
            "identity": identity,
            "map": str(mapping),
            "to": ["rec"],
            "notify": ["postfach"],
        }
    ]
    env = {"ZBP_AUTHOR_KEY": f"file:{key_path}"}
    return await hub_factory(connectors, routes, extra_plugins=(sys.modules[__name__],), env=env)


async def submit(running: Any, external_id: str, form: dict[str, Any]) -> str:
    status, body = await running.post("/intake/json/jagdschein", json={"id": external_id, "form": form})
    assert status == 202, body
    application_id: str = body["application_id"]
    return application_id


async def test_filed_application_gets_received_status_with_aktenzeichen(
    hub_factory: Any, tmp_path: Path, start_zbp: StartZbp, author: GeneratedAuthor
) -> None:
    # The mailbox service fails twice at first: the core retries, the citizen still gets one of each.
    zbp = await start_zbp(trusted_certificates=[author.certificate_pem], fail_next=2)
    running = await start(hub_factory, tmp_path, zbp, author)

    application_id = await submit(running, "e2e-1", {"level": "substantiell", "postkorb": "pk-e2e-1"})
    assert await running.wait_for_state(application_id) == ApplicationState.COMPLETED

    stored = await running.journal.get_application(application_id)
    assert stored.file_number and stored.file_number.startswith("32.3-")
    (status,) = zbp.state.status_updates("pk-e2e-1")
    (message,) = zbp.state.messages("pk-e2e-1")
    assert status.answer()["payload"]["status"] == "RECEIVED"
    assert status.answer()["payload"]["applicationId"] == application_uuid(application_id)
    assert stored.file_number in status.answer()["payload"]["statusDetails"]["de"]
    assert message.answer()["payload"]["reference"] == stored.file_number
    assert message.answer()["payload"]["stork_qaa_level"] == 3
    assert message.opened.certificate_sha256 == author.author().fingerprint
    sent = [e for e in running.events if e.type == "receipt.sent" and e.application_id == application_id]
    assert [(e.target, e.data["kind"]) for e in sent] == [("postfach", "received")]


async def test_application_without_mailbox_completes_without_sending(
    hub_factory: Any, tmp_path: Path, start_zbp: StartZbp, author: GeneratedAuthor
) -> None:
    zbp = await start_zbp()
    running = await start(hub_factory, tmp_path, zbp, author)
    application_id = await submit(running, "e2e-2", {"level": "hoch"})
    assert await running.wait_for_state(application_id) == ApplicationState.COMPLETED
    assert zbp.state.items == [] and sum(zbp.state.requests.values()) == 0


async def test_refused_envelope_leaves_the_receipt_dead_with_the_reason(
    hub_factory: Any,
    tmp_path: Path,
    start_zbp: StartZbp,
    author: GeneratedAuthor,
    other_author: GeneratedAuthor,
) -> None:
    zbp = await start_zbp(trusted_certificates=[other_author.certificate_pem])
    running = await start(hub_factory, tmp_path, zbp, author)
    application_id = await submit(running, "e2e-3", {"level": "hoch", "postkorb": "pk-e2e-3"})
    assert await running.wait_for_state(application_id) == ApplicationState.DEAD
    summary = await running.journal.get_summary(application_id)
    assert "not trusted" in summary.error and "pk-e2e-3" not in summary.error
    assert zbp.state.items == []


async def test_rejected_application_gets_the_reason_in_the_mailbox(
    hub_factory: Any, tmp_path: Path, start_zbp: StartZbp, author: GeneratedAuthor
) -> None:
    zbp = await start_zbp()
    running = await start(hub_factory, tmp_path, zbp, author, min_level="substantiell")
    application_id = await submit(running, "e2e-4", {"level": "normal", "postkorb": "pk-e2e-4"})

    def receipt_sent() -> bool:
        return any(e.type == "receipt.sent" and e.application_id == application_id for e in running.events)

    await running.wait_for(receipt_sent, what="the rejection receipt")
    assert (await running.journal.get_summary(application_id)).state == ApplicationState.REJECTED
    (message,) = zbp.state.messages("pk-e2e-4")
    content = message.answer()["payload"]["content"]
    assert "Grund: Das Vertrauensniveau der Anmeldung reicht nicht." in content
    (status,) = zbp.state.status_updates("pk-e2e-4")
    assert status.answer()["payload"]["statusDetails"] == {
        "de": "Das Vertrauensniveau der Anmeldung reicht nicht."
    }
