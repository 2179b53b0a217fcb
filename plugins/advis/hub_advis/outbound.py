"""`type: advis`: the Ausländerbehörde's own applications as XAusländer messages to ADVIS over XTA.

A preset of the generic `xoev` transport (`hub_fachverfahren.xoev`), the way `k3` presets the import
folder: every key of `type: xoev` applies, and what ADVIS needs is the default. The message of a record is
the one its mapping names (`payloads.<connector>.message`, a key of `messages`: by default
``verpflichtungserklaerung`` and ``verlaengerung-aufenthaltstitel``, packaged templates), built from the
mapping's `fields`. Validation follows the ADVIS policy (`hub_advis.schema`): every XSD of
``<schemas>/xauslaender/<version>/``, before a message is sent and for every answer taken; without them
the connector refuses to start. ADVIS's answers (``advis.rueckmeldung``: case number, status, a
decision PDF) come back through the hub's XTA mailbox into the return channel.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Annotated, ClassVar, Final

from hub_fachverfahren.importfolder import FieldsPayload
from hub_fachverfahren.xoev import (
    XoevAnswers,
    XoevConfig,
    XoevForwardSpec,
    XoevMessageSpec,
    XoevSink,
    message_kind,
)
from hub_xta import Refusal
from pydantic import Discriminator, Field, Tag

from hub import CheckResult, ConfigPath, ConnectorConfig, ConnectorContext, FileRecord, Manifest, Permanent

from .answers import advis_answers
from .exchange import BUSINESS_SCENARIO, SERVICE
from .schema import (
    DEFAULT_VERSION,
    SCHEMA_ROOT,
    InvalidMessage,
    SchemaSettings,
    XAuslaenderSchemas,
    checked,
    load_schemas,
)

VERSION: Final = "0.1.0"
MAX_MESSAGE: Final = 64 * 1024 * 1024
MESSAGES: Final = {
    # name in the mapping -> (root element = XTA message type, packaged template)
    "verpflichtungserklaerung": "abh.verpflichtungserklaerung",
    "verlaengerung-aufenthaltstitel": "abh.verlaengerungAufenthaltstitel",
}
DEFAULT_MESSAGE: Final = "verpflichtungserklaerung"
FORWARD: Final = "weiterleitung"  # the OZG message as it came (the in-direction, `advis-intake`)
INVALID_ANSWER: Final = "invalid_answer"


def template(name: str) -> Path:
    """The packaged template of message `name` (``<name>.xml.j2`` in this package)."""
    return Path(str(files(__package__).joinpath(f"{name}.xml.j2")))


class AdvisMessageSpec(XoevMessageSpec):
    """One XAusländer message: the template (or XSLT) and its XTA metadata; ADVIS's defaults."""

    schema_file: ConfigPath = Field(
        Path(SCHEMA_ROOT),
        alias="schema",
        description="not used by type advis: every XSD of <schemas>/xauslaender/<schema_version>/ applies",
    )
    payload_schema: str = Field(
        "", description="XTA PayloadSchema (default: the namespace of the XAusländer XSDs, `namespace`)"
    )
    service: str = Field(SERVICE, description="the XTA service ADVIS reads under (its DVDV service)")
    business_scenario: str = Field(BUSINESS_SCENARIO, description="XTA BusinessScenario code")


# A message built from the mapping, or (`forward: original`) the application's original sent on unchanged.
AdvisMessage = Annotated[
    Annotated[AdvisMessageSpec, Tag("build")] | Annotated[XoevForwardSpec, Tag("forward")],
    Discriminator(message_kind),
]


def preset(name: str) -> AdvisMessageSpec:
    """The packaged message `name` (a key of `MESSAGES`)."""
    return AdvisMessageSpec(template=template(name), name=f"{name}.xml", message_type=MESSAGES[name])


def presets() -> dict[str, AdvisMessageSpec | XoevForwardSpec]:
    """The messages a mapping can name by default: the packaged ones, and the forward."""
    found: dict[str, AdvisMessageSpec | XoevForwardSpec] = {name: preset(name) for name in MESSAGES}
    found[FORWARD] = XoevForwardSpec(forward="original")
    return found


class AdvisPayload(FieldsPayload):
    """What a mapping gives an ADVIS target: which message, and its `fields`."""

    message: str = Field(
        DEFAULT_MESSAGE, description="the message to send: a key of the connector's `messages`"
    )


class AdvisConfig(XoevConfig, SchemaSettings):
    """Settings of an ADVIS target: XTA, ADVIS's XTA identity; messages, answers and validation preset."""

    message: AdvisMessageSpec = Field(
        default_factory=lambda: preset(DEFAULT_MESSAGE),
        description="not used by type advis: the mapping names one of `messages`",
    )
    messages: dict[str, AdvisMessage] = Field(
        default_factory=presets,
        description="the messages a mapping can name (default: verpflichtungserklaerung, "
        f"{FORWARD} (an OZG message taken in by advis-intake, sent on unchanged), "
        "verlaengerung-aufenthaltstitel with the packaged templates); setting it replaces the presets",
    )
    answers: XoevAnswers | None = Field(
        default_factory=advis_answers, description="ADVIS's answers (default: advis.rueckmeldung)"
    )
    namespace: str | None = Field(
        None,
        description="the XAusländer namespace (template `namespace`, XTA PayloadSchema); default: the one "
        "the XSDs in <schemas>/xauslaender/<schema_version>/ declare",
    )


class AdvisSink(XoevSink):
    """Sends an XAusländer message per application to ADVIS over XTA; ADVIS's answers come back."""

    kind = "advis"
    Config: ClassVar[type[ConnectorConfig]] = AdvisConfig
    Payload = AdvisPayload
    manifest = Manifest(
        name="ADVIS (Kommunix, Ausländerbehörde)",
        version=VERSION,
        standards=(f"XAusländer {DEFAULT_VERSION}", "XTA 2 Version 3.1"),
        description="The Ausländerbehörde's Fachverfahren ADVIS: its own FormCycle services "
        "(Verpflichtungserklärung, Verlängerung eines Aufenthaltstitels) as XAusländer messages over XTA, "
        "validated against the operator's XAusländer XSDs; ADVIS's answers (case number, status, "
        "decision) back through the return channel.",
    )

    def __init__(self, config: AdvisConfig, context: ConnectorContext) -> None:
        super().__init__(config, context)
        self.advis: AdvisConfig = config
        self.schemas: XAuslaenderSchemas | None = None
        self.namespace = config.namespace
        self._loaded = False

    def _load(self) -> None:
        """The XSDs (or the WARNING that validation is off) and the namespace; refuses without them."""
        if self._loaded:
            return
        self.schemas = load_schemas(self.context.schemas, self.advis, purpose=f"connector {self.name!r}")
        if self.namespace is None:
            if self.schemas is None:
                raise Permanent(f"connector {self.name!r}: with `validate: false`, set `namespace:`")
            self.namespace = self.schemas.namespace
        self._loaded = True

    async def start(self) -> None:
        """Refuse to start without the XAusländer XSDs (unless `validate: false`, which warns)."""
        self._load()
        await super().start()

    async def check(self) -> CheckResult:
        """The XAusländer XSDs are in the schema directory and the XTA account is active."""
        try:
            self._load()
            client = self.client
        except Permanent as exc:
            return CheckResult(ok=False, message=str(exc))
        return await client.check()

    def message_spec(self, record: FileRecord) -> XoevMessageSpec | XoevForwardSpec:
        """The message the record's mapping names, with the XAusländer namespace as PayloadSchema."""
        name = self.payload(record, AdvisPayload).message
        spec = self.advis.messages.get(name)
        if spec is None:
            known = ", ".join(sorted(self.advis.messages))
            raise Permanent(f"payloads.{self.name}.message {name!r} is none of this connector's ({known})")
        if isinstance(spec, XoevForwardSpec) or spec.payload_schema:
            return spec
        self._load()
        return spec.model_copy(update={"payload_schema": self.namespace})

    def message_fields(self, record: FileRecord) -> dict[str, str]:
        """The mapping's `fields`."""
        return self.payload(record, AdvisPayload).fields

    def template_values(self) -> dict[str, str]:
        """`namespace` for the templates."""
        self._load()
        assert self.namespace is not None
        return {"namespace": self.namespace}

    def validate_message(self, content: bytes, spec: XoevMessageSpec) -> None:
        """Raise `Permanent` unless the message is well-formed and meets the XAusländer XSDs."""
        self._load()
        checked(self.schemas, content, limit=MAX_MESSAGE)

    def screen_answer(self, content: bytes) -> Refusal | None:
        """An answer that does not meet the XAusländer XSDs is held for an operator, not taken."""
        self._load()
        try:
            checked(self.schemas, content, limit=MAX_MESSAGE)
        except InvalidMessage as exc:
            return Refusal(INVALID_ANSWER, str(exc))
        return None
