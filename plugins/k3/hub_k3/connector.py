"""`type: k3`: K3 on one of the generic Fachverfahren transports, with K3's presets.

`transport:` chooses the transport (`importfolder`, the default, `sql` or `rest`); the section's other
keys are that transport's keys, laid over K3's preset for it (see README). The connector delegates to
the transport's own connector class, so K3 behaves exactly as the generic transport does; it only
shapes the mapping's Fachdaten into K3's Vorgang for `sql` (the staging row's values) and `rest` (the
JSON body).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib.resources import files
from pathlib import Path
from typing import Annotated, Any, ClassVar, Final, Literal

from hub_fachverfahren.importfolder import FieldsPayload, ImportFolderConfig, ImportFolderSink
from hub_fachverfahren.profile import TransportProfile
from hub_fachverfahren.rest import RestConfig, RestSink
from hub_fachverfahren.sql import SqlConfig, SqlSink
from pydantic import Discriminator, Field, Tag, model_validator

from hub import (
    Application,
    Connector,
    ConnectorConfig,
    ConnectorContext,
    Delivery,
    DeliveryContext,
    FileRecord,
    Manifest,
    Sink,
    revision_key,
)

from .answers import k3_answer_format
from .case import k3_vorgang
from .presets import rest_preset, sql_preset

VERSION: Final = "0.2.0"
TEMPLATE: Final = Path(str(files(__package__).joinpath("k3-import.xml.j2")))
MANIFEST_NAME: Final = "k3-import.xml"
Transport = Literal["importfolder", "sql", "rest"]
# Keys of the K3 section that are K3's own; every other key belongs to the transport.
_OWN: Final = ("type", "transport")
# Settings the operator replaces whole instead of merging into the preset (a choice of alternatives).
_REPLACED: Final = frozenset({"manifest"})


def importfolder_preset() -> dict[str, Any]:
    """K3's import manifest and result files (the import folders are the operator's)."""
    return {
        "manifest": {"template": str(TEMPLATE), "name": MANIFEST_NAME},
        "answer_format": k3_answer_format().model_dump(mode="json"),
    }


PRESETS: Final[Mapping[str, Callable[[], dict[str, Any]]]] = {
    "importfolder": importfolder_preset,
    "sql": sql_preset,
    "rest": rest_preset,
}
# The generic connector class that does the work, per transport.
TRANSPORTS: Final[Mapping[str, type[Sink[Any]]]] = {
    "importfolder": ImportFolderSink,
    "sql": SqlSink,
    "rest": RestSink,
}


def _transport_of(value: Any) -> str | None:
    found = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    return str(found) if found is not None else None


TransportConfig = Annotated[
    Annotated[ImportFolderConfig, Tag("importfolder")]
    | Annotated[SqlConfig, Tag("sql")]
    | Annotated[RestConfig, Tag("rest")],
    Discriminator(_transport_of),
]


def overlay(preset: Mapping[str, Any], given: Mapping[str, Any]) -> dict[str, Any]:
    """`given` laid over `preset`: nested mappings merge key by key, other values (and null) replace."""
    merged = dict(preset)
    for key, value in given.items():
        below = merged.get(key)
        if isinstance(value, Mapping) and isinstance(below, Mapping) and key not in _REPLACED:
            merged[key] = overlay(below, value)
        else:
            merged[key] = value
    return merged


class K3Config(ConnectorConfig):
    """Settings of a K3 target: the transport, and its settings over K3's preset for it."""

    transport: Transport = Field("importfolder", description="how K3 is reached: importfolder, sql or rest")
    settings: TransportConfig = Field(
        description="the transport's configuration: K3's preset with the section's other keys laid over it"
    )

    @model_validator(mode="before")
    @classmethod
    def _over_preset(cls, data: Any) -> Any:
        if not isinstance(data, dict) or "settings" in data:
            return data
        transport = data.get("transport", "importfolder")
        preset = PRESETS.get(transport) if isinstance(transport, str) else None
        given = {key: value for key, value in data.items() if key not in _OWN}
        own = {key: data[key] for key in (*_OWN, "max_concurrency", "retry") if key in data}
        if preset is None:
            raise ValueError(f"transport: {transport!r} is none of {', '.join(PRESETS)}")
        return {**own, "settings": {**overlay(preset(), given), "type": transport}}


class K3Sink(TransportProfile[K3Config]):
    """Delivers each application into K3 by the configured transport; K3's answers come back from it."""

    kind = "k3"
    Config: ClassVar[type[ConnectorConfig]] = K3Config
    # The same mapping for every transport: `fields` are K3's Fachdaten.
    Payload = FieldsPayload
    manifest = Manifest(
        name="K3 (K3umwelt)",
        version=VERSION,
        standards=(
            "K3Import manifest (XML) v1 and K3Rueckmeldung result files (XML) v1 in import folders (default)",
            "K3 staging table over SQL: PostgreSQL / Microsoft SQL Server / Oracle (transport sql)",
            "K3 Vorgang JSON over OpenAPI 3.0 with OAuth 2.0 client credentials (transport rest)",
        ),
        description="The Umweltamt's Fachverfahren K3: each application with the case data, the applicant, "
        "the enaio Akte and the files, by import folder, staging table or REST API; K3's answers (case "
        "number, status, error, decision PDF) back through the return channel.",
    )

    def __init__(self, config: K3Config, context: ConnectorContext) -> None:
        super().__init__(config, context)
        transport: Connector[Any] = TRANSPORTS[config.transport](config.settings, context)
        assert isinstance(transport, Sink)
        self.use(config.transport, transport)

    async def deliver(self, record: FileRecord, ctx: DeliveryContext) -> Delivery:
        """Deliver by the transport, the Fachdaten shaped into K3's Vorgang where it needs them."""
        return await self.transport.deliver(self._shaped(record, ctx.application), ctx)

    def _shaped(self, record: FileRecord, application: Application) -> FileRecord:
        """The record with this target's payload as the transport reads it (the manifest: unchanged)."""
        if self.config.transport == "importfolder":
            return record
        fields = self.payload(record, FieldsPayload).fields
        reference = revision_key(record.application_id, record.revision)
        vorgang = k3_vorgang(application, record, reference, fields)
        shaped = vorgang.columns() if self.config.transport == "sql" else vorgang.body()
        return record.model_copy(update={"payloads": {**record.payloads, self.name: shaped}})
