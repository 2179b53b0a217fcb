"""The BundID identity provider (``type: bundid``): a verified SAML response, or form-server fields."""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Sequence
from datetime import timedelta
from typing import Any, ClassVar

from hub import (
    Address,
    Application,
    CertificateInfo,
    CheckResult,
    ConnectorConfig,
    ConnectorContext,
    Identity,
    IdentityProvider,
    Manifest,
    Party,
    Rejection,
    RejectionCode,
    Retryable,
    TrustLevel,
    Verification,
    utcnow,
)

from . import __version__
from .attributes import means_level, parse_level
from .config import BundIdConfig
from .metadata import IdpMetadata, MetadataError, certificate_name, load_metadata
from .saml import Expectations, SamlRejected, VerifiedAssertion, verify_response

log = logging.getLogger(__name__)

PROVIDER = "bundid"
# The replay store's namespace per identity provider (its entity id follows): every connector that
# trusts the same IdP refuses an assertion any of them accepted.
REPLAY_NAMESPACE = "saml-assertion:"
_PARTY_KEYS = ("given_name", "family_name", "birth_date", "birth_name", "birth_place", "email", "bpk2")
_ADDRESS_KEYS = ("street", "postal_code", "city", "country")


class BundIdIdentity(IdentityProvider[BundIdConfig]):
    """Verifies the applicant's BundID login: the forwarded, signed SAML response or the form fields."""

    kind = "bundid"
    manifest = Manifest(
        name="BundID identity",
        version=__version__,
        standards=("SAML 2.0 Web Browser SSO (HTTP-POST)", "BundID (AKDB) attributes", "STORK-QAA 1-4"),
        description="verifies BundID SAML responses forwarded by a form server, or takes the identity "
        "fields a form server verified",
    )
    Config: ClassVar[type[ConnectorConfig]] = BundIdConfig

    def __init__(self, config: BundIdConfig, context: ConnectorContext) -> None:
        super().__init__(config, context)
        self._metadata: IdpMetadata | None = None
        self._metadata_stamp: tuple[int, int] | None = None

    # -- lifecycle and operator views ---------------------------------------------------------------

    async def start(self) -> None:
        """Load the IdP metadata (saml mode); a broken file is reported, verifications then retry."""
        if self.config.mode == "saml":
            try:
                self._current_metadata()
            except MetadataError as exc:
                log.error("bundid IdP metadata unusable connector=%s problem=%s", self.name, exc)

    def _load_metadata(self) -> IdpMetadata:
        assert self.config.idp_metadata is not None
        return load_metadata(self.config.idp_metadata)

    def _current_metadata(self) -> IdpMetadata:
        """The metadata, re-read when the file changed (an operator rolled the IdP's certificate over)."""
        assert self.config.idp_metadata is not None
        try:
            stat = self.config.idp_metadata.stat()
            stamp: tuple[int, int] | None = (stat.st_mtime_ns, stat.st_size)
        except OSError:
            stamp = None
        if self._metadata is None or stamp is None or stamp != self._metadata_stamp:
            self._metadata = self._load_metadata()
            self._metadata_stamp = stamp
        return self._metadata

    def certificates(self) -> Sequence[CertificateInfo]:
        """The IdP's signing certificates from the metadata (none if it cannot be read)."""
        if self.config.mode != "saml":
            return ()
        try:
            metadata = self._current_metadata()
        except MetadataError:
            return ()
        return [CertificateInfo.of(c, "idp-signing") for c in metadata.certificates]

    def credential_fields(self) -> Sequence[str]:
        """The form field with the forwarded SAML response: removed once verified."""
        return (self.config.response_field,) if self.config.mode == "saml" else ()

    async def check(self) -> CheckResult:
        """The IdP metadata loads and holds a signing certificate; one near or past expiry is reported."""
        if self.config.mode == "form-fields":
            return CheckResult(ok=True, message="form-fields mode: the form server verifies the login")
        try:
            metadata = self._load_metadata()
        except MetadataError as exc:
            return CheckResult(ok=False, message=str(exc))
        details = metadata.describe()
        details["sp_entity_id"] = self.config.sp_entity_id or ""
        now = utcnow()
        message = f"IdP metadata of {metadata.entity_id} usable"
        warnings = [
            f"signing certificate {certificate_name(c)} "
            + (
                f"expired on {c.not_valid_after_utc:%Y-%m-%d}"
                if c.not_valid_after_utc <= now
                else f"expires on {c.not_valid_after_utc:%Y-%m-%d} "
                f"({(c.not_valid_after_utc - now).days} days)"
            )
            for c in metadata.expiring(timedelta(days=self.config.certificate_warning_days), now)
        ]
        if warnings:
            # Still usable (the metadata pins the key), but the IdP is rolling its key over soon.
            message += "; WARNING: " + "; ".join(warnings) + ": ask for current IdP metadata"
        return CheckResult(ok=True, message=message, details=details)

    async def diagnostics(self) -> dict[str, Any]:
        """Mode, entity ids and certificate validity; never keys, never personal data."""
        state = await super().diagnostics()
        if self.config.mode == "saml":
            try:
                state["idp"] = self._load_metadata().describe()
            except MetadataError as exc:
                state["idp"] = {"error": str(exc)}
        return state

    # -- verification ------------------------------------------------------------------------------

    async def verify(self, application: Application, minimum_level: TrustLevel | None) -> Verification:
        """Verify the identity; raise `Rejection` with a precise reason and code if it does not hold."""
        if self.config.mode == "form-fields":
            return self._from_form_fields(application)
        return await self._from_saml(application)

    async def _from_saml(self, application: Application) -> Verification:
        document = self._response_document(application)
        try:
            metadata = self._current_metadata()
        except MetadataError as exc:
            # Our configuration, not the applicant's fault: retry until an operator fixes the file.
            raise Retryable(str(exc)) from None
        settings = self.config
        assert settings.sp_entity_id is not None and settings.acs_url is not None
        expect = Expectations(
            idp_entity_id=settings.idp_entity_id or metadata.entity_id,
            sp_entity_id=settings.sp_entity_id,
            acs_url=settings.acs_url,
            certificates=metadata.certificates,
            clock_skew=timedelta(seconds=settings.clock_skew_seconds),
            grace=timedelta(seconds=settings.forwarding_grace_seconds),
            require_response_signature=settings.require_response_signature,
            max_bytes=settings.max_response_bytes,
        )
        # Validity is judged at arrival: a backlog or a retry days later must not expire an application.
        try:
            assertion = verify_response(document, expect, application.received_at)
        except SamlRejected as rejected:
            raise self._reject(application, rejected.code, rejected.reason, rejected.detail) from None
        # Kept while the assertion could still be accepted (grace, skew) and the retention after it.
        keep_until = (
            max(assertion.valid_until, utcnow())
            + expect.grace
            + expect.clock_skew
            + timedelta(days=settings.replay_retention_days)
        )
        if not await self.context.once(
            REPLAY_NAMESPACE + assertion.issuer, assertion.assertion_id, application.id, keep_until
        ):
            raise self._reject(
                application,
                RejectionCode.REPLAYED,
                "Die BundID-Anmeldung wurde bereits für einen anderen Antrag verwendet.",
                f"assertion {assertion.assertion_id} bound to another application",
            )
        identity = self._identity(assertion)
        log.info(
            "bundid assertion verified application=%s connector=%s level=%s means=%s",
            application.id,
            self.name,
            identity.level.value if identity.level else None,
            identity.means,
        )
        return Verification(identity=identity, applicant=_applicant(application.applicant, assertion))

    def _response_document(self, application: Application) -> bytes:
        raw = application.form.get(self.config.response_field)
        if isinstance(raw, list) and len(raw) == 1:
            raw = raw[0]
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            raise self._reject(
                application,
                RejectionCode.MISSING,
                "Der Antrag enthält keine BundID-Anmeldung.",
                "field empty",
            )
        if not isinstance(raw, str):
            raise self._reject(
                application,
                RejectionCode.MALFORMED,
                "Die BundID-Antwort ist kein Base64-Text.",
                "not a string (a repeated field?)",
            )
        compact = "".join(raw.split())
        limit = self.config.max_response_bytes
        if len(compact) > (limit + 2) // 3 * 4:
            raise self._reject(
                application, RejectionCode.MALFORMED, "Die BundID-Antwort ist zu groß.", f"over {limit} bytes"
            )
        try:
            return base64.b64decode(compact, validate=True)
        except (binascii.Error, ValueError):
            raise self._reject(
                application, RejectionCode.MALFORMED, "Die BundID-Antwort ist kein gültiges Base64.", "base64"
            ) from None

    def _identity(self, assertion: VerifiedAssertion) -> Identity:
        means = assertion.value("means")
        level = assertion.level
        # BundID does not reliably enforce levels: never believe more than the means of proof can give.
        ceiling = means_level(means) if means else None
        if level is not None and ceiling is not None and ceiling.rank < level.rank:
            level = ceiling
        return Identity(
            verified=True,
            provider=PROVIDER,
            asserted_by="idp",
            level=level,
            means=means,
            subject=assertion.value("bpk2") or assertion.name_id,
            assertion_id=assertion.assertion_id,
            verified_at=utcnow(),
            attribute_levels={
                key.removeprefix("address."): value.level
                for key, value in assertion.attributes.items()
                if value.level is not None
            },
        )

    def _from_form_fields(self, application: Application) -> Verification:
        fields = self.config.fields

        def field(name: str | None) -> str | None:
            if name is None:
                return None
            value = application.form.get(name)
            if isinstance(value, list) and len(value) == 1:
                value = value[0]
            if isinstance(value, bool) or value is None:
                return None
            text = str(value).strip() if isinstance(value, str | int | float) else ""
            return text or None

        stated = field(fields.level)
        if stated is None:
            raise self._reject(
                application,
                RejectionCode.MISSING,
                "Es ist kein Vertrauensniveau der Anmeldung angegeben.",
                "form-fields: level field empty",
            )
        level = parse_level(stated)
        if level is None:
            raise self._reject(
                application,
                RejectionCode.MALFORMED,
                "Das vom Formularserver angegebene Vertrauensniveau ist unbekannt.",
                "form-fields: unknown level",
            )
        values = {key: field(getattr(fields, key)) for key in (*_PARTY_KEYS, "mailbox", *_ADDRESS_KEYS)}
        identity = Identity(
            verified=False,  # verified by the form server, not by the hub
            provider=PROVIDER,
            asserted_by="form-server",
            level=level,
            means=field(fields.means),
            subject=values["bpk2"],
        )
        log.info(
            "bundid identity taken from form fields application=%s connector=%s level=%s",
            application.id,
            self.name,
            level.value,
        )
        return Verification(identity=identity, applicant=_merge(application.applicant, values))

    def _reject(self, application: Application, code: RejectionCode, reason: str, detail: str) -> Rejection:
        # The detail is technical (what did not match), never personal data; the reason goes to the
        # applicant and never names our configuration.
        log.warning(
            "bundid identity rejected application=%s connector=%s code=%s detail=%s",
            application.id,
            self.name,
            code,
            detail,
        )
        return Rejection(reason, code=code)


def _applicant(current: Party, assertion: VerifiedAssertion) -> Party:
    values: dict[str, str | None] = {key: assertion.value(key) for key in _PARTY_KEYS}
    values["mailbox"] = assertion.value("mailbox")
    for key in _ADDRESS_KEYS:
        values[key] = assertion.value(f"address.{key}")
    return _merge(current, values)


def _merge(current: Party, values: dict[str, str | None]) -> Party:
    """The applicant as the source mapped it, with every identity value present taking precedence."""
    party = current.model_copy(deep=True)
    for key in (*_PARTY_KEYS, "mailbox"):
        value = values.get(key)
        if value is not None:
            setattr(party, key, value)
    address = {key: values.get(key) for key in _ADDRESS_KEYS if values.get(key) is not None}
    if address:
        party.address = Address(**address)
    return party
