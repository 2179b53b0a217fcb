"""The FIT-Connect simulator over HTTP: sender, simulator, receiver; the event log state machine; refusals."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fitconnect_sim_helpers import FitConnectSim
from hub_fitconnect import jose
from hub_fitconnect.sender import Attachment, Sender, Sent
from hub_fitconnect.simulator.state import DEFAULT_SCHEMA, DEFAULT_SERVICE
from hub_fitconnect.wire import (
    ACCEPT_SUBMISSION,
    CREATE_SUBMISSION,
    PROBLEM_ENCRYPTION_ISSUE,
    REJECT_SUBMISSION,
    SUBMIT_SUBMISSION,
    AuthenticationTags,
    Problem,
    Submission,
    SubmissionsForPickup,
    sha512_hex,
)
from jwcrypto import jwk

DATA = json.dumps({"antragsteller": {"name": "Muster"}}).encode()


class Receiver:
    """A subscriber as written against the public API: token, pickup, fetch, decrypt, accept/reject."""

    def __init__(self, sim: FitConnectSim, created: dict[str, Any], keys: tuple[jwk.JWK, jwk.JWK]) -> None:
        self.sim = sim
        self.destination_id: str = created["destinationId"]
        self.client: dict[str, str] = created["subscriber"]
        self.encryption, self.signature = keys
        self.version = "v1"

    async def call(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        """A Submission API call with a fresh token; status and the JSON (or text) answer."""
        token = await self.sim.token(self.client)
        headers = {"Authorization": f"Bearer {token}", **kwargs.pop("headers", {})}
        url = self.sim.api(self.version) + path
        async with self.sim.http.request(method, url, headers=headers, **kwargs) as answer:
            text = await answer.text()
            is_json = answer.content_type.endswith("json")
            return answer.status, json.loads(text) if is_json and text else text

    async def pickup(self, **query: str) -> SubmissionsForPickup:
        """The pickup list of this destination."""
        status, body = await self.call(
            "GET", "/submissions", params={"destinationId": self.destination_id, **query}
        )
        assert status == 200, body
        return SubmissionsForPickup.model_validate(body)

    async def fetch(self, submission_id: str) -> Submission:
        """The submission."""
        status, body = await self.call("GET", f"/submissions/{submission_id}")
        assert status == 200, body
        return Submission.model_validate(body)

    async def events(self, case_id: str) -> list[str]:
        """The case's event log."""
        status, body = await self.call("GET", f"/cases/{case_id}/events")
        assert status == 200, body
        return list(body["eventLog"])

    async def post_event(self, case_id: str, token: str) -> tuple[int, Any]:
        """Post a SET to the case's event log."""
        return await self.call(
            "POST",
            f"/cases/{case_id}/events",
            data=token.encode(),
            headers={"Content-Type": "application/jose"},
        )

    def accept(self, sent: Sent, tags: AuthenticationTags | None = None, key: jwk.JWK | None = None) -> str:
        """A signed accept naming the tags (the sent ones unless given)."""
        claims = jose.accept_event(self.destination_id, sent.submission_id, sent.case_id, tags or sent.tags)
        return jose.sign_event(claims, key or self.signature)

    def reject(self, sent: Sent) -> str:
        """A signed reject with one problem."""
        problem = Problem(
            type=PROBLEM_ENCRYPTION_ISSUE,
            title="Entschlüsselungs-Fehler",
            detail="Die Metadaten konnten nicht entschlüsselt werden.",
            instance="metadata",
        )
        claims = jose.reject_event(self.destination_id, sent.submission_id, sent.case_id, [problem])
        return jose.sign_event(claims, self.signature)


@pytest.fixture
async def receiver(fitconnect: FitConnectSim, encryption_key: jwk.JWK, signature_key: jwk.JWK) -> Receiver:
    created = await fitconnect.destination(encryption_key, signature_key)
    return Receiver(fitconnect, created, (encryption_key, signature_key))


@pytest.fixture
async def sender(fitconnect: FitConnectSim) -> Sender:
    return await fitconnect.sender()


async def _send(sender: Sender, receiver: Receiver, attachments: int = 2, **extra: Any) -> Sent:
    files = [Attachment(f"PDF {i}".encode(), f"anlage-{i}.pdf") for i in range(attachments)]
    return await sender.send(
        receiver.destination_id,
        DEFAULT_SERVICE,
        data=DATA,
        data_schema_uri=DEFAULT_SCHEMA,
        attachments=files,
        **extra,
    )


async def test_send_pickup_decrypt_accept(
    fitconnect: FitConnectSim, sender: Sender, receiver: Receiver
) -> None:
    sent = await _send(sender, receiver)
    page = await receiver.pickup()
    assert [(s.submissionId, s.caseId) for s in page.submissions] == [(sent.submission_id, sent.case_id)]
    submission = await receiver.fetch(sent.submission_id)
    ring = jose.Keyring([receiver.encryption])
    assert submission.encryptedMetadata and submission.encryptedData
    metadata = json.loads(jose.decrypt(submission.encryptedMetadata, ring).plaintext)
    assert metadata == sent.metadata
    data = jose.decrypt(submission.encryptedData, ring).plaintext
    assert data == DATA
    assert metadata["contentStructure"]["data"]["hash"]["content"] == sha512_hex(DATA)
    for entry in metadata["contentStructure"]["attachments"]:
        status, body = await receiver.call(
            "GET", f"/submissions/{sent.submission_id}/attachments/{entry['attachmentId']}"
        )
        assert status == 200
        assert sha512_hex(jose.decrypt(body, ring).plaintext) == entry["hash"]["content"]

    # The Zustelldienst's submit event names the same tags, signed with the key it publishes.
    async with fitconnect.http.get(f"{fitconnect.url}/.well-known/jwks.json") as answer:
        service_keys = jose.Keyring.load(await answer.json())
    log = await receiver.events(sent.case_id)
    submit = [
        jose.verify_event(t, service_keys)
        for t in log
        if jose.unverified_claims(t)["events"].get(SUBMIT_SUBMISSION) is not None
    ]
    assert [e.authentication_tags for e in submit] == [sent.tags]

    assert await receiver.post_event(sent.case_id, receiver.accept(sent)) == (204, "")
    events = [next(iter(jose.unverified_claims(t)["events"])) for t in await receiver.events(sent.case_id)]
    assert events == [CREATE_SUBMISSION, SUBMIT_SUBMISSION, ACCEPT_SUBMISSION]
    assert (await receiver.pickup()).totalCount == 0
    status, body = await receiver.call("GET", f"/submissions/{sent.submission_id}")
    assert status == 404 and body["status"] == 404
    view = await fitconnect.operator("GET", f"/_sim/submissions/{sent.submission_id}")
    assert view["status"] == "accepted"


async def test_second_accept_and_reject_after_accept_conflict(sender: Sender, receiver: Receiver) -> None:
    sent = await _send(sender, receiver, attachments=0)
    assert (await receiver.post_event(sent.case_id, receiver.accept(sent)))[0] == 204
    status, body = await receiver.post_event(sent.case_id, receiver.accept(sent))
    assert status == 409 and body["type"].endswith("invalid-state-transition")
    assert (await receiver.post_event(sent.case_id, receiver.reject(sent)))[0] == 409
    assert [
        t
        for t in await receiver.events(sent.case_id)
        if ACCEPT_SUBMISSION in jose.unverified_claims(t)["events"]
    ].__len__() == 1


async def test_accept_after_reject_conflicts(sender: Sender, receiver: Receiver) -> None:
    sent = await _send(sender, receiver, attachments=1)
    assert (await receiver.post_event(sent.case_id, receiver.reject(sent)))[0] == 204
    assert (await receiver.post_event(sent.case_id, receiver.accept(sent)))[0] == 409
    claims = [jose.unverified_claims(t) for t in await receiver.events(sent.case_id)]
    assert claims[-1]["events"][REJECT_SUBMISSION]["problems"][0]["type"] == PROBLEM_ENCRYPTION_ISSUE


def _claims_changed(receiver: Receiver, sent: Sent, **changes: Any) -> str:
    claims = jose.accept_event(receiver.destination_id, sent.submission_id, sent.case_id, sent.tags) | changes
    return jose.sign_event(claims, receiver.signature)


@pytest.mark.parametrize(
    "case",
    [
        "wrong-tags",
        "missing-attachment-tag",
        "other-key",
        "wrong-sub",
        "wrong-txn",
        "wrong-iss",
        "typ",
        "other-event",
        "future-iat",
        "no-problems",
    ],
)
async def test_invalid_events_are_refused_and_change_nothing(
    sender: Sender, receiver: Receiver, other_signature_key: jwk.JWK, case: str
) -> None:
    sent = await _send(sender, receiver, attachments=1)
    other = await _send(sender, receiver, attachments=0)
    attachment = next(iter(sent.tags.attachments))
    token = {
        "wrong-tags": lambda: receiver.accept(sent, sent.tags.model_copy(update={"data": other.tags.data})),
        "missing-attachment-tag": lambda: receiver.accept(
            sent, sent.tags.model_copy(update={"attachments": {}})
        ),
        "other-key": lambda: receiver.accept(
            sent,
            key=jwk.JWK(
                **{**other_signature_key.export(as_dict=True), "kid": jose.key_id(receiver.signature)}
            ),
        ),
        "wrong-sub": lambda: _claims_changed(receiver, sent, sub=f"submission:{other.submission_id}"),
        "wrong-txn": lambda: _claims_changed(receiver, sent, txn=f"case:{other.case_id}"),
        "wrong-iss": lambda: _claims_changed(receiver, sent, iss=other.case_id),
        "typ": lambda: _typ_jwt(receiver, sent),
        "other-event": lambda: _claims_changed(receiver, sent, events={SUBMIT_SUBMISSION: {}}),
        "future-iat": lambda: _claims_changed(receiver, sent, iat=4102444800),
        "no-problems": lambda: _claims_changed(receiver, sent, events={REJECT_SUBMISSION: {"problems": []}}),
    }[case]()
    status, body = await receiver.post_event(sent.case_id, token)
    assert status == 422, body
    assert body["type"].endswith("invalid-event") and body["detail"]
    assert attachment in sent.tags.attachments
    assert sent.submission_id in [s.submissionId for s in (await receiver.pickup()).submissions]
    assert (await receiver.post_event(sent.case_id, receiver.accept(sent)))[0] == 204


def _typ_jwt(receiver: Receiver, sent: Sent) -> str:
    from jwcrypto import jws

    claims = jose.accept_event(receiver.destination_id, sent.submission_id, sent.case_id, sent.tags)
    token = jws.JWS(json.dumps(claims).encode())
    header = {"alg": "PS512", "typ": "JWT", "kid": jose.key_id(receiver.signature)}
    token.add_signature(receiver.signature, alg="PS512", protected=json.dumps(header))
    return str(token.serialize(compact=True))


async def test_event_posts_need_jose_and_a_jws(sender: Sender, receiver: Receiver) -> None:
    sent = await _send(sender, receiver, attachments=0)
    status, _ = await receiver.call(
        "POST",
        f"/cases/{sent.case_id}/events",
        data=receiver.accept(sent).encode(),
        headers={"Content-Type": "application/json"},
    )
    assert status == 415
    assert (await receiver.post_event(sent.case_id, "not a token"))[0] == 400


async def test_pickup_paging(sender: Sender, receiver: Receiver) -> None:
    sent = [await _send(sender, receiver, attachments=0) for _ in range(3)]
    first = await receiver.pickup(limit="2")
    rest = await receiver.pickup(limit="2", offset="2")
    assert (first.count, first.totalCount, rest.count, rest.offset) == (2, 3, 1, 2)
    assert [s.submissionId for s in first.submissions + rest.submissions] == [s.submission_id for s in sent]
    for query in ({"limit": "0"}, {"limit": "501"}, {"offset": "-1"}, {"limit": "x"}):
        status, body = await receiver.call(
            "GET", "/submissions", params={"destinationId": receiver.destination_id, **query}
        )
        assert status == 400 and body["title"] == "Bad Request"
