"""Configuration of the `sql` transport: where the staging table is, what goes into which column, how
answers are read back. Every key is described for operators in the plugin's README."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from hub import AnswerStatus, ConnectorConfig

# Record fields a column may take besides the mapping's payload fields.
RECORD_FIELDS = ("record.application_id", "record.service", "record.file_number", "record.revision")
# A column or table name: letters, digits, underscore (quoting is SQLAlchemy's job; this keeps
# configuration typos and injected SQL out).
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_$#]{0,127}")
MIB = 1024 * 1024

# Status values that need no map: the hub's own names (`accepted`, `in_progress`, ...).
DEFAULT_STATUSES: dict[str, AnswerStatus | None] = {status.value: status for status in AnswerStatus}


def _name(value: str | None) -> str | None:
    if value is not None and not _NAME.fullmatch(value):
        raise ValueError(f"{value!r} is not a plain SQL name (letters, digits, '_', '$', '#')")
    return value


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SqlDocuments(_Section):
    """The second table: one row per document, its content as a BLOB (bytea, varbinary(max), BLOB)."""

    table: str
    schema_: str | None = Field(None, alias="schema", description="defaults to the staging table's schema")
    key_column: str = Field(description="the staging row's key (same value as the staging table's key)")
    number_column: str = Field(description="the document's number within the application, 1..n")
    name_column: str = Field(description="the document's file name")
    content_column: str = Field(description="the content (BLOB)")
    type_column: str | None = Field(None, description="the document's type from the mapping")
    media_type_column: str | None = None
    max_size: int = Field(64 * MIB, ge=1, description="bytes; a larger document is refused (Permanent)")

    _names = field_validator(
        "table",
        "schema_",
        "key_column",
        "number_column",
        "name_column",
        "content_column",
        "type_column",
        "media_type_column",
    )(_name)


class SqlAnswers(_Section):
    """How the Fachverfahren's answers are read from the staging table (polled)."""

    status_column: str
    changed_column: str = Field(
        description="a value that grows with every change of the row: a version number or a timestamp"
    )
    case_number_column: str | None = None
    message_column: str | None = None
    error_column: str | None = Field(
        None, description="why the Fachverfahren refused the row (status failed)"
    )
    decision_column: str | None = Field(None, description="the decision (Bescheid) as a BLOB, e.g. a PDF")
    decision_name_column: str | None = None
    decision_media_type: str = "application/pdf"
    interval: float = Field(30.0, gt=0, le=86400, description="seconds between polls")
    batch: int = Field(200, ge=1, le=10000, description="rows read per poll at most")
    # The system's status values -> the hub's; a value mapped to null is no answer (e.g. "NEU").
    statuses: dict[str, AnswerStatus | None] = Field(default_factory=dict)
    # How an answer is remembered as taken: `ack_column` (the hub writes the row's `changed_column`
    # value into this column of the same type) or, when the table takes no writes to its columns, the
    # hub's own high-water mark of `changed_column` (a file in the hub's data directory).
    ack_column: str | None = None

    _names = field_validator(
        "status_column",
        "changed_column",
        "case_number_column",
        "message_column",
        "error_column",
        "decision_column",
        "decision_name_column",
        "ack_column",
    )(_name)

    @property
    def acknowledge(self) -> Literal["ack_column", "high_water_mark"]:
        """How answers are remembered as taken."""
        return "ack_column" if self.ack_column else "high_water_mark"

    def status_of(self, value: str) -> tuple[bool, AnswerStatus | None]:
        """(known, status) of a system status value: unknown values are neither mapped nor ignored."""
        table = {**DEFAULT_STATUSES, **self.statuses}
        if value in table:
            return True, table[value]
        return False, None


class SqlConfig(ConnectorConfig):
    """Settings of a `sql` target: a staging table in the Fachverfahren's database."""

    url: str = Field(
        description="SQLAlchemy URL with an async driver, without password: "
        "postgresql+asyncpg://user@host/db, mssql+aioodbc://user@dsn, oracle+oracledb://user@host/?service_name=x"
    )
    password: SecretStr | None = Field(None, description="merged into the URL; use ${ENV}, never a literal")
    table: str
    schema_: str | None = Field(None, alias="schema")
    key_column: str = Field(description="unique column: the hub's key of the row (application id + revision)")
    # column -> where its value comes from: a field of the mapping's `payloads.<target>`, or one of
    # RECORD_FIELDS
    columns: dict[str, str] = Field(default_factory=dict)
    # column -> a fixed value written with every row (e.g. the initial status "NEU")
    constants: dict[str, str | int | float | bool] = Field(default_factory=dict)
    documents: SqlDocuments | None = None
    answers: SqlAnswers | None = None
    timeout: float = Field(30.0, gt=0, le=600, description="seconds one delivery or poll may take")
    pool_size: int = Field(2, ge=1, le=50, description="connections kept open to the database")

    _names = field_validator("table", "schema_", "key_column")(_name)

    @field_validator("columns", "constants")
    @classmethod
    def _column_names(cls, value: dict[str, Any]) -> dict[str, Any]:
        for column in value:
            _name(column)
        return value

    @field_validator("url")
    @classmethod
    def _async_url(cls, value: str) -> str:
        try:
            url = make_url(value)
        except ArgumentError:
            raise ValueError("url is not a database URL (dialect+driver://user@host/database)") from None
        if url.password is not None:
            raise ValueError("url must not hold a password: set `password:` (e.g. ${FV_DB_PASSWORD}) instead")
        try:
            dialect = url.get_dialect(_is_async=True)
        except NoSuchModuleError:
            raise ValueError(f"unknown database dialect or driver {url.drivername!r}") from None
        if not getattr(dialect, "is_async", False):
            raise ValueError(
                f"driver {url.drivername!r} is not async: use e.g. postgresql+asyncpg, mssql+aioodbc, "
                "oracle+oracledb"
            )
        try:
            dialect.import_dbapi()
        except ImportError as exc:
            extra = {"mssql": "[mssql]", "oracle": "[oracle]"}.get(url.get_backend_name(), "")
            raise ValueError(
                f"driver {url.drivername!r} is not installed ({exc.name or exc}): "
                f"pip install 'aktenhub-fachverfahren{extra}'"
            ) from None
        return value

    @model_validator(mode="after")
    def _consistent(self) -> SqlConfig:
        for column, source in self.columns.items():
            if source.startswith("record.") and source not in RECORD_FIELDS:
                raise ValueError(
                    f"columns.{column}: {source!r} is no record field ({', '.join(RECORD_FIELDS)})"
                )
        written = [self.key_column, *self.columns, *self.constants]
        twice = sorted({c for c in written if written.count(c) > 1})
        if twice:
            raise ValueError(f"column(s) written twice (key_column, columns, constants): {', '.join(twice)}")
        if self.answers is not None:
            # A constant may set the initial status (e.g. "NEU"); mapped values may not touch the answer.
            hub_written = {self.key_column, *self.columns}
            fv_written = {
                self.answers.status_column,
                self.answers.changed_column,
                self.answers.case_number_column,
            }
            clash = sorted(c for c in hub_written & fv_written if c is not None)
            if clash:
                raise ValueError(f"answers: column(s) {', '.join(clash)} are written by the hub on delivery")
        return self

    def database_url(self) -> URL:
        """The URL with the password merged in (never log it: `redacted_url` is for people)."""
        url = make_url(self.url)
        if self.password is not None:
            url = url.set(password=self.password.get_secret_value())
        return url

    def redacted_url(self) -> str:
        """The URL as operators may see it."""
        return make_url(self.url).render_as_string(hide_password=True)
