"""`type: mikropro`: Mikropro Bauamt as a profile of the generic `xoev` (default) or `importfolder` transport.

`transport:` chooses how Mikropro is reached; every key of that transport applies, and Mikropro's formats
are the defaults (see README): over XTA an XBau message (a FormCycle form built by the packaged 0900
template; a message from Bauportal.NRW forwarded as it came) and Mikropro's 1121/1170 answers; through an
import folder Mikropro's import manifest and result files. The connector delegates to the transport's own
connector class: one implementation of each transport.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Any, ClassVar, Final, Literal

from hub_fachverfahren.importfolder import (
    AnswerFields,
    AnswerFormat,
    FieldsPayload,
    ImportFolderConfig,
    ImportFolderSink,
    ManifestSpec,
)
from hub_fachverfahren.profile import TransportProfile
from hub_fachverfahren.xoev import (
    XoevAnswers,
    XoevConfig,
    XoevForwardSpec,
    XoevMessageSpec,
    XoevSink,
)
from hub_xta import XtaOrigin
from pydantic import BaseModel, ConfigDict, Field, model_validator

from hub import (
    ConnectorConfig,
    ConnectorContext,
    Delivery,
    DeliveryContext,
    FileRecord,
    Manifest,
)

from . import profile

VERSION: Final = "0.1.0"
TEMPLATES: Final = Path(str(files(__package__).joinpath("templates")))
MESSAGE_TEMPLATE: Final = TEMPLATES / "baubeginnanzeige-0900.xml.j2"
MANIFEST_TEMPLATE: Final = TEMPLATES / "mikropro-import.xml.j2"
MANIFEST_NAME: Final = "mikropro-import.xml"
RESULT_ROOT: Final = "MikroproRueckmeldung"
# The transport's field -> Mikropro's element in a result file (import folder).
RESULT_ELEMENTS: Final = {
    "reference": "Referenz",
    "case_number": "Aktenzeichen",
    "status": "Status",
    "message": "Mitteilung",
    "error": "Fehler",
    "decision": "Bescheid",
}


class XBauAuthority(BaseModel):
    """An authority as an XBau message head names it (DVDV kennung and name)."""

    model_config = ConfigDict(extra="forbid")

    kennung: str = Field(pattern=r"^[a-z]{3}:\d+$", description="DVDV kennung, e.g. vbe:053820004")
    name: str = Field(min_length=1)


class XBauMessageSpec(XoevMessageSpec):
    """An XBau message from a template, with the message head's authorities as template values."""

    values: dict[str, str] = Field(default_factory=dict, description="extra template values")

    def render(self, **values: Any) -> bytes:
        """The message; the head's authorities (`autor_*`, `leser_*`) beside the transport's values."""
        return super().render(**{**self.values, **values})


def _baubeginnanzeige() -> XBauMessageSpec:
    return XBauMessageSpec.model_validate(
        {
            "template": MESSAGE_TEMPLATE,
            "schema": profile.xsd_for(profile.BAUBEGINN),
            "message_type": profile.BAUBEGINN,
            "payload_schema": profile.XBAU,
            "service": profile.SERVICE,
            "business_scenario": profile.BUSINESS_SCENARIO,
        }
    )


def mikropro_answers() -> XoevAnswers:
    """How Mikropro's answer messages are read: 1121 (its Aktenzeichen), 1170 (status, decision), 1100."""
    return XoevAnswers(
        format="xml",
        message_types=[profile.AKTENZEICHEN, profile.STATUS, profile.RUECKWEISUNG],
        namespaces=dict(profile.NAMESPACES),
        fields=profile.ANSWER_FIELDS.model_copy(),
        status_map={code: status for code, status in profile.STATUS_CODES.items()},
        status_by_type={profile.AKTENZEICHEN: "accepted"},
    )


def mikropro_results() -> AnswerFormat:
    """How Mikropro's result files are read (import folder): MikroproRueckmeldung XML."""
    return AnswerFormat(
        format="xml",
        fields=AnswerFields(**{field: f"/{RESULT_ROOT}/{name}" for field, name in RESULT_ELEMENTS.items()}),
        status_map={word: profile.STATUS_CODES[code] for word, code in profile.STATUS_WORDS.items()},
    )


class MikroproXoevConfig(XoevConfig):
    """Mikropro over XTA: XBau messages to its account, its 1121/1170 answers from the hub's account."""

    transport: Literal["xoev"] = "xoev"
    authority: XBauAuthority = Field(description="the Bauaufsicht: autor of the messages the hub builds")
    fachverfahren: XBauAuthority = Field(description="Mikropro as XBau names it: leser of those messages")
    message: XBauMessageSpec = Field(
        default_factory=_baubeginnanzeige,
        description="the message built from a FormCycle form (default: the packaged XBau 0900 template)",
    )
    answers: XoevAnswers | None = Field(
        default_factory=mikropro_answers, description="Mikropro's answers (default: XBau 1121 and 1170)"
    )
    forward: bool = Field(
        True,
        description="an application that came as an XBau message over XTA (a 0200 from Bauportal.NRW) "
        "is forwarded as it came, with its Anlagen; false: every application is built by `message`",
    )

    @model_validator(mode="after")
    def _head(self) -> MikroproXoevConfig:
        self.message.values.update(
            autor_kennung=self.authority.kennung,
            autor_name=self.authority.name,
            leser_kennung=self.fachverfahren.kennung,
            leser_name=self.fachverfahren.name,
        )
        return self


class MikroproImportConfig(ImportFolderConfig):
    """Mikropro through an import folder: its import manifest, its result files."""

    transport: Literal["importfolder"]
    manifest: ManifestSpec = Field(
        default_factory=lambda: ManifestSpec(template=MANIFEST_TEMPLATE, name=MANIFEST_NAME),
        description="Mikropro's import manifest (default: the packaged mikropro-import.xml.j2)",
    )
    answer_format: AnswerFormat = Field(
        default_factory=mikropro_results, description="Mikropro's result files (MikroproRueckmeldung XML)"
    )


TransportConfig = MikroproXoevConfig | MikroproImportConfig
TRANSPORTS: Final[dict[str, type[TransportConfig]]] = {
    "xoev": MikroproXoevConfig,
    "importfolder": MikroproImportConfig,
}


class MikroproConfig(ConnectorConfig):
    """Settings of a Mikropro target: `transport` and that transport's keys (see README)."""

    model_config = ConfigDict(extra="allow")

    transport: Literal["xoev", "importfolder"] = Field(
        "xoev", description="how Mikropro is reached: xoev (XBau over XTA) or importfolder"
    )

    @classmethod
    def model_validate(  # type: ignore[override]
        cls,
        obj: Any,
        *,
        strict: bool | None = None,
        from_attributes: bool | None = None,
        context: Any | None = None,
        **kwargs: Any,
    ) -> ConnectorConfig:
        """The chosen transport's configuration, so that errors name the very key that is wrong."""
        transport = obj.get("transport", "xoev") if isinstance(obj, dict) else None
        if cls is not MikroproConfig or transport not in TRANSPORTS:
            # an unknown transport: refused here, naming both
            return super().model_validate(
                obj, strict=strict, from_attributes=from_attributes, context=context, **kwargs
            )
        model = TRANSPORTS[transport]
        return model.model_validate(obj, strict=strict, from_attributes=from_attributes, context=context)


class MikroproSink(TransportProfile[Any]):
    """Hands each application to Mikropro Bauamt through the configured transport; its answers come back."""

    kind = "mikropro"
    Config: ClassVar[type[ConnectorConfig]] = MikroproConfig
    Payload = FieldsPayload
    manifest = Manifest(
        name="Mikropro Bauamt",
        version=VERSION,
        standards=(
            "XBau 2.6 (anzeige.baubeginn.0900 built, baugenehmigung.antrag.0200 forwarded)",
            "XBau-Kernmodul 1.3.0 (answers: aktenzeichen.1121, statusFuerAntragsportal.1170)",
            "XTA 2 Version 3.1",
            "Mikropro import folder: MikroproImport manifest (XML) v1, MikroproRueckmeldung result files v1",
        ),
        description="The untere Bauaufsicht's Fachverfahren: building applications from Bauportal.NRW and "
        "the Bauaufsicht's FormCycle forms as XBau messages over XTA (or through an import folder); "
        "Mikropro's Aktenzeichen, status changes and decisions back through the return channel.",
    )

    def __init__(self, config: TransportConfig, context: ConnectorContext) -> None:
        super().__init__(config, context)
        # Over XTA, a message from the portal is forwarded as it came; a form is built. Both send from
        # the same account, and only `transport` reads Mikropro's answers from it.
        self.forwarding: XoevSink | None = None
        if isinstance(config, MikroproXoevConfig):
            self.use(config.transport, XoevSink(config, context))
            if config.forward:
                forward = XoevForwardSpec(forward="original")
                self.forwarding = XoevSink(config.model_copy(update={"message": forward}), context)
        else:
            self.use(config.transport, ImportFolderSink(config, context))

    async def deliver(self, record: FileRecord, ctx: DeliveryContext) -> Delivery:
        """Deliver through the transport: an XBau message from XTA forwarded as it came, else built."""
        # Mikropro's answers refer to the message by its nachrichtenUUID: for a forwarded 0200 the
        # portal's, which the forward keeps as the correlation `<connector>.original`.
        if self.forwarding is None or not _came_as_xbau(ctx):
            return await self.transport.deliver(record, ctx)
        return await self.forwarding.deliver(record, ctx)


def _came_as_xbau(ctx: DeliveryContext) -> bool:
    """Whether the application came as an XBau message over XTA (its source recorded the transport data)."""
    origin = XtaOrigin.from_correlations(ctx.application.correlations)
    return origin is not None and origin.payload_schema in (profile.XBAU, profile.XBAUK)
