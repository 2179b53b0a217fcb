"""``type: fitconnect``: the FIT-Connect subscriber: submissions to our destinations as applications.

A submission is taken by its id, through one path whoever names it (a callback, the safety poll):
fetch it, verify the submission service's signed submit event and that the parts fetched carry the
authentication tags it names, decrypt and check metadata (schema by ``$schema``), data (hash, its
submission schema when installed) and attachments (hash; streamed into the blob store one at a time),
map the service, take it in durably, and only then **accept** it with a signed event naming the tags.
A crash before the accept fetches it again at the next poll; the intake, idempotent on the submission
id, returns the application it made, and the accept follows. A 409 on the accept is success when the
event log shows our accept.

What the sender got wrong (undecryptable, invalid, hash or tag mismatch, a service not taken here) is
**rejected** with FIT-Connect's problem and recorded as a held message (rejected) for operators. What
is not the sender's fault (the API or the journal failing, a schema not installed here) is never
rejected: the submission waits upstream and is tried again (with back-off, quarantined for an
operator after the last try). Submissions not accepted `unaccepted_warning_after` their submit are
logged as a WARNING and counted in the metric ``aktenhub_source_overdue``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from jwcrypto import jwk

from hub import (
    Application,
    Attachment,
    CheckResult,
    ConnectorConfig,
    ConnectorContext,
    HeldMessage,
    Intake,
    IntakeFunc,
    IntakeOutcome,
    Manifest,
    OriginalSubmission,
    Permanent,
    Retryable,
    Source,
    WebhookRoute,
    utcnow,
)
from hub.outbound import Refusal

from .checks import (
    Schemas,
    Unacceptable,
    Undecidable,
    check_attachment_tag,
    check_attachments,
    check_hash,
    check_tags,
    decrypted,
    fetched_tags,
    service_of,
    submit_token,
    verified_submit,
)
from .config import Destination, FitConnectConfig
from .jose import (
    JoseError,
    Keyring,
    accept_event,
    event_header,
    load_key,
    public_key,
    reject_event,
    sign_event,
    unverified_claims,
    verify_event,
)
from .receiver import Receiver, ServiceKeys, SubmissionGone, subscriber_endpoint
from .wire import (
    ACCEPT_SUBMISSION,
    PROBLEM_MISSING_DATA,
    PROBLEM_TECHNICAL_ERROR,
    REJECT_SUBMISSION,
    AuthenticationTags,
    Submission,
    SubmissionForPickup,
)

log = logging.getLogger(__name__)

STANDARDS = (
    "FIT-Connect Submission API 1.1 (receiver side, v1/v2 paths)",
    "FIT-Connect metadata 1.x/2.x",
    "JWE RSA-OAEP-256/A256GCM, SET PS512 (RFC 8417)",
)
# Held-message reason codes besides the problems of a reject (which use the problem's short name).
UNDECIDABLE, INTAKE_FAILED, REJECTED_UPSTREAM = "undecidable", "intake_failed", "rejected_upstream"
CHUNK = 1024 * 1024
# An overdue submission is logged again after this long (not at every poll).
WARN_AGAIN = timedelta(hours=24)


class FitConnectSource(Source[FitConnectConfig]):
    """Takes the submissions addressed to our FIT-Connect destinations; accepts them after the intake."""

    kind = "fitconnect"
    manifest = Manifest(
        name="FIT-Connect subscriber",
        version="0.1.0",
        standards=STANDARDS,
        description="EfA online services' submissions through FIT-Connect (callback + safety poll)",
    )
    Config: ClassVar[type[ConnectorConfig]] = FitConnectConfig

    def __init__(self, config: FitConnectConfig, context: ConnectorContext) -> None:
        super().__init__(config, context)
        self.poll_interval = config.poll_seconds
        self.schemas = Schemas(context.schemas)
        self._receivers: dict[str, Receiver] = {}
        self._keys: dict[str, tuple[Keyring, jwk.JWK]] = {}
        self._service_keys: ServiceKeys | None = None
        self._taking: dict[str, tuple[asyncio.Lock, int]] = {}
        self._submitted_at: dict[str, datetime] = {}
        self._warned: dict[str, datetime] = {}
        self._background: set[asyncio.Task[None]] = set()

    # -- parts ------------------------------------------------------------------------------------

    def receiver(self, destination: Destination) -> Receiver:
        """The Submission API as seen by one destination (its own scoped token)."""
        if destination.id not in self._receivers:
            endpoint = subscriber_endpoint(self.config.api, destination.id)
            self._receivers[destination.id] = Receiver(
                self.context.outbound(endpoint, system="FIT-Connect"),
                destination.id,
                self.config.api_version,
                max_attachment=int(self.config.max_attachment),
            )
        return self._receivers[destination.id]

    @property
    def service_keys(self) -> ServiceKeys:
        """The submission service's public keys (they sign the submit events)."""
        if self._service_keys is None:
            public = self.config.api.model_copy(update={"auth": None})
            self._service_keys = ServiceKeys(
                self.context.outbound(public, system="FIT-Connect"), self.config.jwks()
            )
        return self._service_keys

    def keys(self, destination: Destination) -> tuple[Keyring, jwk.JWK]:
        """The destination's private decryption keys and its signing key, read once."""
        if destination.id not in self._keys:
            try:
                keyring = Keyring.load(*destination.decryption_keys)
                signing = load_key(destination.signing_key)
            except (OSError, ValueError, JoseError) as exc:
                raise Permanent(f"the keys of destination {destination.id} cannot be read: {exc}") from None
            self._keys[destination.id] = (keyring, signing)
        return self._keys[destination.id]

    async def start(self) -> None:
        """Read every destination's keys now: a missing or broken key file stops the start."""
        for destination in self.config.destinations:
            self.keys(destination)

    async def stop(self) -> None:
        """Let callback-triggered intakes end; what they left is taken by the next poll."""
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)

    async def check(self) -> CheckResult:
        """Can every destination's keys be read and its pickup list be listed?"""
        try:
            for destination in self.config.destinations:
                self.keys(destination)
                async for _ in self.receiver(destination).pickup(1):
                    break
        except (Permanent, Retryable) as exc:
            return CheckResult(ok=False, message=str(exc))
        return CheckResult(ok=True, message=f"{len(self.config.destinations)} destinations reachable")

    def routes(self, intake: IntakeFunc) -> list[WebhookRoute]:
        """``POST /intake/<connector>/callback``: FIT-Connect's callback (new submissions)."""
        from .callback import callback_route

        return [callback_route(self, intake)]

    # -- taking -----------------------------------------------------------------------------------

    async def poll(self, intake: IntakeFunc) -> int:
        """The safety poll: take every submission waiting for our destinations; returns how many were new."""
        taken = 0
        overdue = 0
        listed: set[str] = set()
        for destination in self.config.destinations:
            receiver = self.receiver(destination)
            # The whole list first: each accept removes one from it, which would shift the pages.
            waiting = [item async for item in receiver.pickup(self.config.page_size)]
            records = await self.context.held.lookup(item.submissionId for item in waiting)
            for item in waiting:
                record = records.get(item.submissionId)
                if record is None or not record.blocks_fetch(utcnow()):
                    taken += await self.take(item, intake, record)
            overdue += await self._overdue(receiver, waiting)
            listed |= {item.submissionId for item in waiting}
        self.context.overdue(overdue)
        # What left the pickup list (accepted, rejected, deleted) needs no submit time or warning any more.
        for known in (self._submitted_at, self._warned):
            for submission_id in set(known) - listed:
                del known[submission_id]
        return taken

    def callback_intake(self, items: Sequence[SubmissionForPickup], intake: IntakeFunc) -> None:
        """Take the submissions a callback named, in the background (the callback is answered at once)."""

        async def run() -> None:
            for item in items:
                try:
                    records = await self.context.held.lookup((item.submissionId,))
                    record = records.get(item.submissionId)
                    if record is not None and record.blocks_fetch(utcnow()):
                        continue
                    await self.take(item, intake, record)
                except Exception as exc:  # the safety poll takes it later
                    log.warning(
                        "callback intake failed source=%s submission=%s error=%s: %s",
                        self.name,
                        item.submissionId,
                        type(exc).__name__,
                        exc,
                    )

        task = asyncio.get_running_loop().create_task(run(), name=f"fitconnect-callback-{self.name}")
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def take(
        self, item: SubmissionForPickup, intake: IntakeFunc, record: HeldMessage | None = None
    ) -> int:
        """Take one submission (idempotent); 1 if it became a new application.

        Raises `Retryable` (and `OSError`) for the hub's or the API's trouble: the submission stays
        upstream untouched.
        """
        destination = self.config.destination(item.destinationId)
        if destination is None:
            log.warning(
                "submission for a destination not configured source=%s destination=%s",
                self.name,
                item.destinationId,
            )
            return 0
        async with self._alone(item.submissionId):
            held = self.context.held.with_backoff(self.config.fetch_backoff)
            try:
                outcome = await self._take(destination, item, intake)
            except Unacceptable as exc:
                await self._reject(destination, item, exc)
                return 0
            except SubmissionGone:
                return 0  # accepted or rejected meanwhile (another process, an earlier run)
            except Undecidable as exc:
                await held.fetch_failed(item.submissionId, sender=None, code=UNDECIDABLE, reason=str(exc))
                return 0
            except (OSError, Retryable):
                raise
            except Exception as exc:
                # Something in this submission trips us (not the sender's proven fault): tried again after a
                # back-off, quarantined for an operator after the last try; the others go on.
                reason = f"{type(exc).__name__}: {exc}"
                await held.fetch_failed(item.submissionId, sender=None, code=INTAKE_FAILED, reason=reason)
                return 0
            if record is not None:
                await held.taken(item.submissionId)
            return 0 if outcome.duplicate else 1

    async def _take(
        self, destination: Destination, item: SubmissionForPickup, intake: IntakeFunc
    ) -> IntakeOutcome:
        receiver = self.receiver(destination)
        keyring, signing = self.keys(destination)
        submission = await receiver.submission(item.submissionId)
        if submission.destinationId.lower() != destination.id.lower() or submission.caseId != item.caseId:
            raise Permanent(
                f"submission {item.submissionId}: the API answered with another destination or case"
            )
        token = submit_token(await receiver.events(submission.caseId), submission.submissionId)
        kid = event_header(token).get("kid")
        keys = await self.service_keys.keyring(kid if isinstance(kid, str) else None)
        submitted = verified_submit(token, keys, submission)
        self._submitted_at[submission.submissionId] = datetime.fromtimestamp(submitted.iat, UTC)
        expected = submitted.authentication_tags
        assert expected is not None  # verified_submit refuses an event without
        fetched = fetched_tags(submission)
        check_tags(expected, fetched, submission.attachments)
        assert submission.encryptedMetadata is not None  # fetched_tags refuses a submission without
        metadata = self.schemas.metadata(
            decrypted(submission.encryptedMetadata, keyring, "metadata"),
            schema_required=self.config.metadata_schema_required,
        )
        check_attachments(metadata, submission)
        service = service_of(self.config, submission, metadata)
        if not self.context.routed(service):
            # The hub's configuration lacks the route, not the sender's fault: it waits for the operator.
            raise Undecidable(f"no route takes service {service!r} from this connector")
        form: dict[str, Any] = {}
        original: OriginalSubmission
        if submission.encryptedData is not None:
            data = decrypted(submission.encryptedData, keyring, "data")
            document = self.schemas.data(data, metadata)
            if isinstance(document, dict):
                form = document
            elif document is not None:
                form = {"data": document}
            described = metadata.contentStructure.data
            media_type = described.submissionSchema.mimeType if described is not None else "application/json"
            info = await self.context.blobs.write_bytes(data)
            original = OriginalSubmission(
                media_type=media_type, blob=info.ref, size=info.size, sha256=info.sha256
            )
        else:
            if metadata.contentStructure.data is not None:
                raise Unacceptable(
                    PROBLEM_MISSING_DATA, "data", "the metadata describes data the submission lacks"
                )
            # A submission of attachments only: its metadata is what was submitted.
            plain = decrypted(submission.encryptedMetadata, keyring, "metadata")
            info = await self.context.blobs.write_bytes(plain)
            original = OriginalSubmission(
                media_type="application/json", blob=info.ref, size=info.size, sha256=info.sha256
            )
        attachments: list[Attachment] = []
        for described_attachment in metadata.contentStructure.attachments:
            aid = described_attachment.attachmentId
            jwe = await receiver.attachment(submission.submissionId, aid)
            fetched.attachments[aid] = check_attachment_tag(expected, aid, jwe)
            content = decrypted(jwe, keyring, f"attachment:{aid}")
            del jwe
            check_hash(
                content,
                described_attachment.hash.content,
                described_attachment.hash.type,
                f"attachment:{aid}",
            )
            attachments.append(
                await self._store(
                    content, described_attachment.filename or aid, described_attachment.mimeType, aid
                )
            )
        application = Application(
            source=self.name,
            external_id=submission.submissionId,
            service=service,
            form=form,
            attachments=attachments,
            original=original,
            correlations={
                "fitconnect.submission": submission.submissionId,
                "fitconnect.case": submission.caseId,
                "fitconnect.destination": destination.id,
            },
        )
        outcome = await intake(Intake(application))
        await self._accept(destination, receiver, submission, fetched, signing, outcome)
        return outcome

    async def _store(self, content: bytes, name: str, media_type: str, field: str) -> Attachment:
        """One decrypted attachment into the blob store, in pieces (the store may be object storage)."""
        writer = self.context.blobs.writer()
        try:
            view = memoryview(content)
            for start in range(0, len(view), CHUNK):
                writer.write(view[start : start + CHUNK])
                await writer.drain()
            info = await writer.commit()
        except BaseException:
            writer.abort()
            raise
        return Attachment(
            name=name,
            media_type=media_type,
            size=info.size,
            sha256=info.sha256,
            blob=info.ref,
            field=field,
        )

    # -- answering FIT-Connect --------------------------------------------------------------------

    async def _accept(
        self,
        destination: Destination,
        receiver: Receiver,
        submission: Submission,
        tags: AuthenticationTags,
        signing: jwk.JWK,
        outcome: IntakeOutcome,
    ) -> None:
        """Accept after the durable intake; a 409 is success when the event log shows our accept."""
        claims = accept_event(destination.id, submission.submissionId, submission.caseId, tags)
        what = f"accept submission {submission.submissionId}"
        answer = await receiver.post_event(submission.caseId, sign_event(claims, signing), what)
        if answer == "stored":
            log.info(
                "fitconnect submission accepted source=%s submission=%s application=%s",
                self.name,
                submission.submissionId,
                outcome.application_id,
            )
            return
        settled = await self._settled(receiver, submission.submissionId, submission.caseId, signing)
        if settled == ACCEPT_SUBMISSION:
            log.info(
                "fitconnect submission accepted before source=%s submission=%s",
                self.name,
                submission.submissionId,
            )
            return
        if settled == REJECT_SUBMISSION:
            # Taken here, yet rejected upstream (e.g. FIT-Connect's own reject after 14 days): the sender
            # was told it failed. An operator must reconcile; the application stays as it is.
            await self.context.held.quarantine(
                submission.submissionId,
                sender=None,
                code=REJECTED_UPSTREAM,
                reason=f"taken as application {outcome.application_id}, but rejected in FIT-Connect before "
                "our accept: the sender was told it failed",
            )
            return
        raise Retryable(f"{what}: 409 from FIT-Connect, yet the event log shows neither accept nor reject")

    async def _settled(
        self, receiver: Receiver, submission_id: str, case_id: str, signing: jwk.JWK
    ) -> str | None:
        """Which of our accept or reject the case's event log holds for the submission (None: neither)."""
        ours = Keyring([public_key(signing)])
        for token in reversed(await receiver.events(case_id)):
            try:
                claims = unverified_claims(token)
            except JoseError:
                continue
            if claims.get("sub") != f"submission:{submission_id}":
                continue
            events = claims.get("events")
            event = next(iter(events), None) if isinstance(events, dict) else None
            if event == ACCEPT_SUBMISSION:
                try:  # our own accept: signed with our key
                    verify_event(token, ours)
                except JoseError:
                    continue
                return ACCEPT_SUBMISSION
            if event == REJECT_SUBMISSION:
                return REJECT_SUBMISSION  # ours, or FIT-Connect's own (after 14 days): rejected either way
        return None

    async def _reject(
        self, destination: Destination, item: SubmissionForPickup, refusal: Unacceptable
    ) -> None:
        """Reject with the problem, then record it for operators (the sender learns it from FIT-Connect)."""
        if await self._post_reject(destination, item, refusal):
            await self.context.held.reject(
                item.submissionId,
                sender=None,
                code=refusal.code,
                reason=f"{refusal.problem.instance}: {refusal}",
            )

    async def _post_reject(
        self, destination: Destination, item: SubmissionForPickup, refusal: Unacceptable
    ) -> bool:
        """Post the reject; False if the submission had been accepted before (then it stays accepted)."""
        _, signing = self.keys(destination)
        receiver = self.receiver(destination)
        claims = reject_event(destination.id, item.submissionId, item.caseId, [refusal.problem])
        what = f"reject submission {item.submissionId}"
        answer = await receiver.post_event(item.caseId, sign_event(claims, signing), what)
        if answer == "conflict":
            settled = await self._settled(receiver, item.submissionId, item.caseId, signing)
            if settled is None:
                raise Retryable(
                    f"{what}: 409 from FIT-Connect, yet the event log shows neither accept nor reject"
                )
            if settled == ACCEPT_SUBMISSION:
                log.warning(
                    "fitconnect submission accepted before, not rejected source=%s submission=%s",
                    self.name,
                    item.submissionId,
                )
                return False
        log.info(
            "fitconnect submission rejected source=%s submission=%s problem=%s",
            self.name,
            item.submissionId,
            refusal.code,
        )
        return True

    async def close_upstream(self, message_id: str) -> None:
        """An operator closed a held submission: reject it in FIT-Connect (its only way out); idempotent."""
        for destination in self.config.destinations:
            receiver = self.receiver(destination)
            try:
                submission = await receiver.submission(message_id)
            except SubmissionGone:
                continue  # not (or no longer) waiting at this destination
            except Refusal as exc:
                if exc.status == 403:
                    continue  # another destination's: our token for this one may not read it
                raise
            item = SubmissionForPickup(
                destinationId=submission.destinationId,
                submissionId=submission.submissionId,
                caseId=submission.caseId,
            )
            refusal = Unacceptable(
                PROBLEM_TECHNICAL_ERROR,
                "submission",
                "the receiving authority could not process the submission",
            )
            await self._post_reject(destination, item, refusal)
            return

    # -- overdue ----------------------------------------------------------------------------------

    async def _overdue(self, receiver: Receiver, waiting: Sequence[SubmissionForPickup]) -> int:
        """How many of these (still unaccepted) submissions were submitted longer ago than allowed."""
        limit = self.config.unaccepted_warning_after
        now = utcnow()
        count = 0
        for item in waiting:
            submitted = await self._submitted(receiver, item)
            if submitted is None or now - submitted < limit:
                continue
            count += 1
            last = self._warned.get(item.submissionId)
            if last is None or now - last >= WARN_AGAIN:
                self._warned[item.submissionId] = now
                # Ids and age only: nothing of the content (personal data) is logged.
                log.warning(
                    "fitconnect submission not accepted for %s source=%s destination=%s submission=%s "
                    "(FIT-Connect rejects it 14 days after its submit)",
                    _days(now - submitted),
                    self.name,
                    item.destinationId,
                    item.submissionId,
                )
        return count

    async def _submitted(self, receiver: Receiver, item: SubmissionForPickup) -> datetime | None:
        """When the submission was submitted (its submit event's iat), read once."""
        if item.submissionId not in self._submitted_at:
            try:
                claims = unverified_claims(
                    submit_token(await receiver.events(item.caseId), item.submissionId)
                )
            except (Unacceptable, JoseError, Permanent, Retryable):
                return None
            iat = claims.get("iat")
            if not isinstance(iat, int):
                return None
            self._submitted_at[item.submissionId] = datetime.fromtimestamp(iat, UTC)
        return self._submitted_at[item.submissionId]

    @contextlib.asynccontextmanager
    async def _alone(self, submission_id: str) -> AsyncIterator[None]:
        """One take of a submission at a time in this process (a callback and the poll may meet)."""
        lock, users = self._taking.get(submission_id, (asyncio.Lock(), 0))
        self._taking[submission_id] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._taking[submission_id]
            if users == 1:
                del self._taking[submission_id]
            else:
                self._taking[submission_id] = (lock, users - 1)


def _days(age: timedelta) -> str:
    return f"{age.total_seconds() / 86400:.1f} days"
