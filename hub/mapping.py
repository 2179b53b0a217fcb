"""Mapping an application to a `FileRecord`: the route's mapping file, sandboxed Jinja2 templates.

A mapping file (YAML) describes the record an application becomes in the e-file — which Akte (object
type, fields to find an existing one by, fields to create it with), an optional Vorgang, the documents
(type, index fields, content: the PDF rendition, each attachment, the original submission) — and
payloads for other targets. Every string holding ``{{ ... }}`` or ``{% ... %}`` is a template over the
application. Templates run in Jinja's immutable sandbox with strict undefined: a field the application
does not have is an error naming the field and the place in the mapping file, never an empty string.

Filters: ``date`` (dates and times, in German local time), ``sortname``, ``initials``, ``ascii``
(names for systems that cannot store them), ``lookup`` (tables defined in the mapping file), plus what
plugins add via `aktenhub_mapping_filters`. ``file_number`` holds the application's Aktenzeichen: the
number of the applicant's existing Akte if the e-file has one, else one drawn from the mapping's number
pattern (e.g. ``63-{year}-{seq:05d}``); its sequence lives in the journal, per pattern and year, and a
number once drawn is never drawn again. The pipeline decides it (see `Pipeline._file_number`). Where a
Fachverfahren assigns it (a route's `file_number.assigned_by`), ``file_number`` is empty in the record
that target gets first, and the record is mapped again with its number before the other targets get it.

``payloads.<target>`` is data for one target of the route, checked against the pydantic `Payload` model
its sink declares: statically when the configuration loads (`MappingFile.payload_problems`) and once
rendered (`MappingFile.validate_payloads`), each problem named by file, line and field.

Without a mapping file, `default_record` files the original submission and every attachment.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal, Self
from zoneinfo import ZoneInfo

import yaml
from jinja2 import StrictUndefined, Template, TemplateError, UndefinedError, meta
from jinja2.exceptions import SecurityError
from jinja2.runtime import new_context
from jinja2.sandbox import ImmutableSandboxedEnvironment
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from hub.answers import Answer
from hub.errors import Permanent
from hub.journal.base import FileNumberSequence
from hub.models import Application, Document, DocumentContent, FileRecord, FolderSpec, OriginalSubmission
from hub.yamlpos import KeyPath as Loc
from hub.yamlpos import dotted, line_map, nearest_line

BERLIN = ZoneInfo("Europe/Berlin")
FILE_NUMBER_FIELDS = re.compile(r"\{(year|seq)(:[^{}]*)?\}")
NextNumber = Callable[[str, str], Awaitable[int]]
# A route's targets -> the pydantic model each reads from `payloads.<target>` (None: it reads none).
PayloadModels = Mapping[str, type[BaseModel] | None]


class MappingError(Permanent):
    """A mapping failed for this application; the message names the place in the mapping file."""


# -- the mapping file's shape ---------------------------------------------------------------------


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FolderTemplate(_Spec):
    """An Akte or Vorgang: object type, fields to find an existing one by, fields to create it with."""

    type: str
    search: dict[str, str] = Field(default_factory=dict)
    # An id not every submission carries (e.g. the Fachverfahren's person id): searched by when known.
    optional: list[str] = Field(
        default_factory=list, description="search fields left out of the search when they render empty"
    )
    fields: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _optional_are_searched(self) -> Self:
        unknown = [k for k in self.optional if k not in self.search]
        if unknown:
            raise ValueError(f"optional names fields that are not in search: {', '.join(unknown)}")
        return self

    def searched(self, rendered: dict[str, str]) -> dict[str, str]:
        """The rendered search without its optional fields that came out empty."""
        return {k: v for k, v in rendered.items() if v or k not in self.optional}


class DocumentTemplate(_Spec):
    """A document (or, with ``content: attachments``, one per attachment)."""

    type: str
    content: Literal["rendition", "attachment", "attachments", "original"]
    select: str | None = Field(None, description="only attachments uploaded through this form element")
    optional: bool = Field(False, description="content: attachment: none uploaded is no error")
    name: str | None = None
    fields: dict[str, str] = Field(default_factory=dict)


class FileNumberSpec(_Spec):
    """How Aktenzeichen are drawn: a pattern with {year} and {seq}, a sequence per pattern and year."""

    pattern: str

    @field_validator("pattern")
    @classmethod
    def _placeholders(cls, value: str) -> str:
        names = {m.group(1) for m in FILE_NUMBER_FIELDS.finditer(value)}
        if "seq" not in names:
            raise ValueError("the pattern needs {seq} (e.g. 63-{year}-{seq:05d})")
        rest = FILE_NUMBER_FIELDS.sub("", value)
        if "{" in rest or "}" in rest:
            raise ValueError("only {year} and {seq} may appear in braces")
        return value


class DecisionTemplate(_Spec):
    """How a Fachverfahren's decision is filed: document type, name, index fields (templates)."""

    type: str = "Bescheid"
    name: str | None = None
    fields: dict[str, str] = Field(default_factory=dict)


class AnswersSpec(_Spec):
    """What a Fachverfahren's answer changes in the e-file: templates over `answer` and `application`."""

    akte_fields: dict[str, str] = Field(default_factory=dict, description="Akte index field -> template")
    decision: DecisionTemplate = Field(default_factory=DecisionTemplate)


class MappingSpec(_Spec):
    """A whole mapping file."""

    version: Literal[1] = 1
    title: str | None = Field(None, description="title of the PDF rendition (template)")
    labels: dict[str, str] = Field(default_factory=dict, description="form field -> label")
    hidden: list[str] = Field(
        default_factory=list,
        description="form fields the rendition leaves out (technical ones, e.g. a forwarded SAML response)",
    )
    tables: dict[str, dict[str, str]] = Field(default_factory=dict)
    file_number: FileNumberSpec | None = None
    akte: FolderTemplate | None = None
    vorgang: FolderTemplate | None = None
    documents: list[DocumentTemplate] = Field(default_factory=list)
    payloads: dict[str, Any] = Field(default_factory=dict)
    answers: AnswersSpec | None = None


# -- filters ----------------------------------------------------------------------------------------


def _date(value: Any, fmt: str = "%d.%m.%Y") -> str:
    """A date or time in German notation; times in Europe/Berlin. Accepts ISO strings."""
    if isinstance(value, str):
        text = value.strip()
        try:
            value = datetime.fromisoformat(text) if "T" in text or " " in text else date.fromisoformat(text)
        except ValueError:
            raise ValueError(f"{value!r} is not a date (expected YYYY-MM-DD)") from None
    if isinstance(value, datetime):
        moment = value.astimezone(BERLIN) if value.tzinfo is not None else value
        return moment.strftime(fmt)
    if isinstance(value, date):
        return value.strftime(fmt)
    raise ValueError(f"{value!r} is not a date")


_ASCII = str.maketrans(
    {
        "ä": "ae",
        "ö": "oe",
        "ü": "ue",
        "Ä": "Ae",
        "Ö": "Oe",
        "Ü": "Ue",
        "ß": "ss",
        "ẞ": "SS",
        "Æ": "AE",
        "æ": "ae",
        "Ø": "O",
        "ø": "o",
        "Œ": "OE",
        "œ": "oe",
        "Ł": "L",
        "ł": "l",
        "Đ": "D",
        "đ": "d",
        "Ð": "D",
        "ð": "d",
        "Þ": "Th",
        "þ": "th",
        "\u0131": "i",  # dotless i (Turkish)
    }
)


def _ascii(value: Any) -> str:
    """A name in plain ASCII (Müller -> Mueller, Łukasiewicz -> Lukasiewicz), for limited systems."""
    text = str(value).translate(_ASCII)
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c) and ord(c) < 128)


def _sortname(person: Any) -> str:
    """'Family, Given' from an applicant (or any mapping with given_name/family_name)."""
    family = _get(person, "family_name")
    given = _get(person, "given_name")
    return ", ".join(p for p in (family, given) if p)


def _initials(person: Any) -> str:
    """'J. G.' from an applicant."""
    names = " ".join(p for p in (_get(person, "given_name"), _get(person, "family_name")) if p)
    return " ".join(f"{part[0]}." for part in re.split(r"[\s-]+", names) if part)


def _get(obj: Any, key: str) -> str:
    value = obj.get(key) if isinstance(obj, Mapping) else getattr(obj, key, None)
    return "" if value is None else str(value)


BUILTIN_FILTERS: dict[str, Callable[..., Any]] = {
    "date": _date,
    "ascii": _ascii,
    "sortname": _sortname,
    "initials": _initials,
}


# -- compiled mappings ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Compiled:
    """One template (or a literal) with its place in the mapping file."""

    loc: Loc
    line: int | None
    render_fn: Callable[[dict[str, Any]], str] | None
    literal: str
    names: frozenset[str] = frozenset()  # the variables the template reads

    def place(self, source: str) -> str:
        where = f"{source}:{self.line}" if self.line else source
        return f"{where}: {dotted(self.loc)}"


class MappingFile:
    """A validated, compiled mapping file."""

    def __init__(
        self,
        spec: MappingSpec,
        source: str,
        templates: dict[Loc, _Compiled],
        lines: dict[Loc, int] | None = None,
    ) -> None:
        self.spec = spec
        self.source = source
        self._templates = templates
        self._lines = lines or {}

    def payload_problems(self, targets: PayloadModels, all_targets: bool = True) -> list[str]:
        """What can be told wrong about the payloads before any application (start-up, `check`).

        Unknown targets, targets that read no payload, keys a model forbids, required keys missing and
        literal values that do not fit; values that are templates are checked when rendered. With
        `all_targets` false, `targets` is not the route's whole list: payloads for others are skipped.
        """
        problems = []
        for target in self.spec.payloads:
            loc: Loc = ("payloads", target)
            if target not in targets:
                if not all_targets:
                    continue
                known = ", ".join(targets) or "none"
                problems.append(
                    f"{self._at(loc)}: {dotted(loc)}: {target!r} is no target of the route ({known})"
                )
            elif targets[target] is None:
                problems.append(
                    f"{self._at(loc)}: {dotted(loc)}: target {target!r} reads no payload (its connector "
                    "type declares no Payload model)"
                )
        for target, model in targets.items():
            if model is None:
                continue
            try:
                model.model_validate(self.spec.payloads.get(target, {}))
            except ValidationError as exc:
                for err in exc.errors(include_url=False):
                    loc = ("payloads", target, *err["loc"])
                    if err["type"] not in ("missing", "extra_forbidden") and self._is_template(loc):
                        continue
                    problems.append(f"{self._at(loc)}: {dotted(loc)}: {_payload_error(err, target)}")
        return problems

    def validate_payloads(self, record: FileRecord, targets: PayloadModels) -> FileRecord:
        """The record with each target's payload validated by its model (defaults filled in).

        Raises `MappingError` naming file, line and field of the first value that does not fit.
        """
        payloads: dict[str, dict[str, Any]] = {}
        for target, model in targets.items():
            if model is None:
                continue
            try:
                value = model.model_validate(record.payloads.get(target, {}))
            except ValidationError as exc:
                err = exc.errors(include_url=False)[0]
                loc = ("payloads", target, *err["loc"])
                raise MappingError(f"{self._at(loc)}: {dotted(loc)}: {_payload_error(err, target)}") from None
            payloads[target] = value.model_dump(mode="json")
        return record.model_copy(update={"payloads": payloads})

    def _is_template(self, loc: Loc) -> bool:
        compiled = self._templates.get(loc)
        return compiled is not None and compiled.render_fn is not None

    def _at(self, loc: Loc) -> str:
        line = nearest_line(self._lines, loc)
        return f"{self.source}:{line}" if line else self.source

    @property
    def needs_rendition(self) -> bool:
        """Whether a document of this mapping is the PDF rendition."""
        return any(d.content == "rendition" for d in self.spec.documents)

    def file_number_sequence(self, app: Application) -> FileNumberSequence | None:
        """Where the application's Aktenzeichen is drawn from: per pattern and year (None: no pattern)."""
        spec = self.spec.file_number
        if spec is None:
            return None
        year = app.received_at.astimezone(BERLIN).year
        period = str(year) if "{year}" in spec.pattern or "{year:" in spec.pattern else "-"
        pattern = spec.pattern
        return FileNumberSequence(pattern, period, lambda seq: pattern.format(year=year, seq=seq))

    async def draw_file_number(self, app: Application, next_number: NextNumber) -> str | None:
        """Draw the next Aktenzeichen for the application's year (None without a pattern)."""
        sequence = self.file_number_sequence(app)
        if sequence is None:
            return None
        return sequence.compose(await next_number(sequence.name, sequence.period))

    @property
    def finds_akte(self) -> bool:
        """Whether the Akte can be searched for before the Aktenzeichen is decided.

        Not when there is nothing to search by, or when the search itself needs the Aktenzeichen.
        """
        akte = self.spec.akte
        if akte is None or not akte.search:
            return False
        locs = [("akte", "type"), *(("akte", "search", k) for k in akte.search)]
        return not any("file_number" in self._templates[loc].names for loc in locs)

    def akte_lookup(self, app: Application) -> FolderSpec | None:
        """The Akte's type and search fields, to find it before its Aktenzeichen is decided."""
        akte = self.spec.akte
        if akte is None or not self.finds_akte:
            return None
        ctx = _context(app, None)
        return FolderSpec(
            type=self._render(("akte", "type"), ctx),
            search=akte.searched({k: self._render(("akte", "search", k), ctx) for k in akte.search}),
        )

    def title(self, app: Application, file_number: str | None = None) -> str | None:
        """The rendition's title, rendered."""
        if self.spec.title is None:
            return None
        return self._render(("title",), _context(app, file_number))

    def render(
        self, app: Application, file_number: str | None = None, rendition: str | None = None
    ) -> FileRecord:
        """The record for an application; raises `MappingError` naming the place that failed."""
        ctx = _context(app, file_number)
        spec = self.spec
        akte = self._folder("akte", spec.akte, ctx) if spec.akte else None
        vorgang = self._folder("vorgang", spec.vorgang, ctx) if spec.vorgang else None
        documents: list[Document] = []
        for i, doc in enumerate(spec.documents):
            documents.extend(self._documents(i, doc, app, ctx, rendition))
        payloads = {
            target: self._payload(("payloads", target), value, ctx) for target, value in spec.payloads.items()
        }
        return FileRecord(
            application_id=app.id,
            service=app.service,
            file_number=file_number or None,  # empty: not assigned yet
            akte=akte,
            vorgang=vorgang,
            documents=documents,
            payloads=payloads,
        )

    def answer_changes(self, app: Application, answer: Answer) -> tuple[dict[str, str], list[Document]]:
        """The Akte index fields and documents an answer files, per the `answers:` section (else none)."""
        spec = self.spec.answers
        if spec is None:
            return {}, []
        ctx = _context(app, app.file_number)
        ctx["answer"] = _without_none(answer.model_dump(mode="python"))
        fields = {k: self._render(("answers", "akte_fields", k), ctx) for k in spec.akte_fields}
        decision = answer.decision
        if decision is None:
            return fields, []
        loc = ("answers", "decision")
        document = Document(
            type=self._render((*loc, "type"), ctx),
            name=self._render((*loc, "name"), ctx) if spec.decision.name is not None else decision.name,
            content=DocumentContent.ATTACHMENT,
            blob=decision.blob,
            media_type=decision.media_type,
            fields={k: self._render((*loc, "fields", k), ctx) for k in spec.decision.fields},
        )
        return fields, [document]

    def _folder(self, key: str, folder: FolderTemplate, ctx: dict[str, Any]) -> FolderSpec:
        return FolderSpec(
            type=self._render((key, "type"), ctx),
            search=folder.searched({k: self._render((key, "search", k), ctx) for k in folder.search}),
            fields={k: self._render((key, "fields", k), ctx) for k in folder.fields},
        )

    def _documents(
        self, i: int, doc: DocumentTemplate, app: Application, ctx: dict[str, Any], rendition: str | None
    ) -> list[Document]:
        loc: Loc = ("documents", i)

        def one(
            content: DocumentContent,
            blob: str | None,
            media: str,
            default_name: str,
            extra: dict[str, Any],
            attachment: str | None = None,
        ) -> Document:
            local = {**ctx, **extra}
            name = self._render((*loc, "name"), local) if doc.name is not None else default_name
            return Document(
                type=self._render((*loc, "type"), local),
                name=name,
                content=content,
                blob=blob,
                media_type=media,
                attachment=attachment,
                fields={k: self._render((*loc, "fields", k), local) for k in doc.fields},
            )

        if doc.content == "rendition":
            return [
                one(DocumentContent.RENDITION, rendition, "application/pdf", f"Antrag {app.service}.pdf", {})
            ]
        if doc.content == "original":
            if app.original is None:
                raise MappingError(f"{self._place(loc)}: the application has no original submission")
            refuse_unredacted(app.original, self._place(loc))
            return [
                one(
                    DocumentContent.ORIGINAL, app.original.blob, app.original.media_type, "Originalantrag", {}
                )
            ]
        chosen = [a for a in app.attachments if doc.select is None or a.field == doc.select]
        if doc.content == "attachment":
            if not chosen:
                if doc.optional:
                    return []
                what = f"through form element {doc.select!r}" if doc.select else "at all"
                raise MappingError(f"{self._place(loc)}: no attachment was uploaded {what}")
            chosen = chosen[:1]
        attachments = ctx["attachments"]
        return [
            one(
                DocumentContent.ATTACHMENT,
                a.blob,
                a.media_type,
                a.name,
                {"attachment": attachments[app.attachments.index(a)], "index": n},
                attachment=a.name,
            )
            for n, a in enumerate(chosen, start=1)
        ]

    def _payload(self, loc: Loc, value: Any, ctx: dict[str, Any]) -> Any:
        if isinstance(value, dict):
            return {k: self._payload((*loc, k), v, ctx) for k, v in value.items()}
        if isinstance(value, list):
            return [self._payload((*loc, n), v, ctx) for n, v in enumerate(value)]
        if isinstance(value, str):
            return self._render(loc, ctx)
        return value

    def _place(self, loc: Loc) -> str:
        compiled = self._templates.get(loc)
        return compiled.place(self.source) if compiled else f"{self.source}: {dotted(loc)}"

    def _render(self, loc: Loc, ctx: dict[str, Any]) -> str:
        compiled = self._templates[loc]
        if compiled.render_fn is None:
            return compiled.literal
        try:
            return str(compiled.render_fn(ctx))
        except UndefinedError as exc:
            raise MappingError(f"{compiled.place(self.source)}: {_undefined(exc)}") from None
        except SecurityError as exc:
            raise MappingError(f"{compiled.place(self.source)}: not allowed in a mapping: {exc}") from None
        except (TemplateError, ValueError, TypeError, KeyError, LookupError) as exc:
            raise MappingError(f"{compiled.place(self.source)}: {exc}") from None


def _payload_error(err: Any, target: str) -> str:
    """A pydantic error about a payload value, in words an operator writing a mapping file reads."""
    if err["type"] == "extra_forbidden":
        return f"unknown key (not in the payload model of target {target!r})"
    if err["type"] == "missing":
        return f"required by target {target!r}, missing"
    got = err.get("input")
    shown = f" (got {got!r})" if isinstance(got, str | int | float | bool) else ""
    return f"{err['msg']}{shown} (payload of target {target!r})"


def _undefined(exc: UndefinedError) -> str:
    message = str(exc.message or exc)
    m = re.match(r"'(?:dict object|[\w.]+ object)' has no attribute '([^']+)'", message)
    if m:
        return f"the application has no field {m.group(1)!r} here ({message})"
    m = re.match(r"'([^']+)' is undefined", message)
    if m:
        return f"{m.group(1)!r} is not defined in a mapping (see the variables in the README)"
    return message


def _context(app: Application, file_number: str | None) -> dict[str, Any]:
    """The variables a template sees; absent values (None) are left out, so using them is an error."""
    data = _without_none(app.model_dump(mode="python"))
    applicant = data.get("applicant", {})
    if app.applicant.display_name:
        applicant["display_name"] = app.applicant.display_name
    ctx: dict[str, Any] = {
        "application": data,
        "id": app.id,
        "service": app.service,
        "source": app.source,
        "external_id": app.external_id,
        "received_at": app.received_at,
        "form": data.get("form", {}),
        "applicant": applicant,
        "identity": data.get("identity", {}),
        "attachments": data.get("attachments", []),
        "correlations": data.get("correlations", {}),
    }
    if file_number is not None:
        ctx["file_number"] = file_number
    return ctx


def _without_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_none(v) for v in value]
    return value


# -- loading ----------------------------------------------------------------------------------------


class MappingLoadError(Exception):
    """A mapping file is invalid; `problems` name the file, line and key path of each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def _environment(
    filters: Mapping[str, Callable[..., Any]], tables: dict[str, dict[str, str]]
) -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(
        undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False
    )
    env.filters.update(BUILTIN_FILTERS)
    env.filters.update(filters)

    def lookup(value: Any, table: str, *default: str) -> str:
        if table not in tables:
            raise ValueError(f"lookup: no table {table!r} in this mapping file")
        key = str(value)
        if key in tables[table]:
            return tables[table][key]
        if default:
            return default[0]
        raise ValueError(f"lookup: {key!r} is not in table {table!r}")

    env.filters["lookup"] = lookup
    return env


def load_mapping(path: Path, filters: Mapping[str, Callable[..., Any]] | None = None) -> MappingFile:
    """Read, validate and compile a mapping file; raise `MappingLoadError` listing every problem."""
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise MappingLoadError([f"{source}: cannot read the mapping file: {exc.strerror}"]) from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        raise MappingLoadError([f"{source}{where}: not valid YAML: {exc}"]) from None
    lines = line_map(node) if node is not None else {}
    try:
        spec = MappingSpec.model_validate(raw if raw is not None else {})
    except ValidationError as exc:
        found = []
        for err in exc.errors(include_url=False):
            loc = tuple(err["loc"])
            msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
            found.append(f"{_at(source, lines, loc)}: {dotted(loc)}: {msg}")
        raise MappingLoadError(found) from None
    env = _environment(filters or {}, spec.tables)
    templates: dict[Loc, _Compiled] = {}
    problems: list[str] = []
    for loc, text_value in _template_strings(spec):
        line = nearest_line(lines, loc)
        if "{{" not in text_value and "{%" not in text_value:
            templates[loc] = _Compiled(loc, line, None, text_value)
            continue
        try:
            template = env.from_string(text_value)
            names = frozenset(meta.find_undeclared_variables(env.parse(text_value)))
        except TemplateError as exc:
            problems.append(f"{_at(source, lines, loc)}: {dotted(loc)}: {exc}")
            continue
        templates[loc] = _Compiled(loc, line, _renderer(template), text_value, names)
    if problems:
        raise MappingLoadError(problems)
    return MappingFile(spec, source, templates, lines)


def _renderer(template: Template) -> Callable[[dict[str, Any]], str]:
    """`template.render(variables)`, with the template's globals taken from a plain dict.

    `Template.render` walks its globals, a ChainMap over the environment's, key by key twice on every
    call (merging them into the variables, listing their names): that was over a third of a mapping's
    CPU (27 renders per application). The same from a dict taken once; the result is the same.
    """
    env = template.environment
    template_globals = dict(template.globals)

    def render(variables: dict[str, Any]) -> str:
        merged = {**template_globals, **variables}
        context = new_context(env, template.name, template.blocks, merged, True, template_globals)
        try:
            return env.concat(template.root_render_func(context))
        except Exception:
            env.handle_exception()  # re-raises it, as `Template.render` does

    return render


def _template_strings(spec: MappingSpec) -> list[tuple[Loc, str]]:
    out: list[tuple[Loc, str]] = []
    if spec.title is not None:
        out.append((("title",), spec.title))
    for key, folder in (("akte", spec.akte), ("vorgang", spec.vorgang)):
        if folder is None:
            continue
        out.append(((key, "type"), folder.type))
        out += [((key, "search", k), v) for k, v in folder.search.items()]
        out += [((key, "fields", k), v) for k, v in folder.fields.items()]
    for i, doc in enumerate(spec.documents):
        out.append((("documents", i, "type"), doc.type))
        if doc.name is not None:
            out.append((("documents", i, "name"), doc.name))
        out += [(("documents", i, "fields", k), v) for k, v in doc.fields.items()]

    def walk(loc: Loc, value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk((*loc, k), v)
        elif isinstance(value, list):
            for n, v in enumerate(value):
                walk((*loc, n), v)
        elif isinstance(value, str):
            out.append((loc, value))

    walk(("payloads",), spec.payloads)
    if spec.answers is not None:
        out += [(("answers", "akte_fields", k), v) for k, v in spec.answers.akte_fields.items()]
        decision = spec.answers.decision
        out.append((("answers", "decision", "type"), decision.type))
        if decision.name is not None:
            out.append((("answers", "decision", "name"), decision.name))
        out += [(("answers", "decision", "fields", k), v) for k, v in decision.fields.items()]
    return out


def _at(source: str, lines: dict[Loc, int], loc: Loc) -> str:
    line = nearest_line(lines, loc)
    return f"{source}:{line}" if line else source


# -- samples (aktenhub mapping test) ---------------------------------------------------------------


def sample_application(data: Any) -> Application:
    """An application from a sample file: defaults for ids; attachments referenced by their sha256."""
    if not isinstance(data, dict):
        raise ValueError("expected a mapping with service, received_at, form, ...")
    data = dict(data)
    data.setdefault("id", "app_sample")
    data.setdefault("source", "sample")
    data.setdefault("external_id", "sample-1")
    attachments = []
    for att in data.get("attachments", []) or []:
        if isinstance(att, dict) and "blob" not in att and "sha256" in att:
            att = {**att, "blob": f"sha256:{att['sha256']}"}
        attachments.append(att)
    data["attachments"] = attachments
    original = data.get("original")
    if isinstance(original, dict) and "blob" not in original and "sha256" in original:
        data["original"] = {**original, "blob": f"sha256:{original['sha256']}"}
    try:
        return Application.model_validate(data)
    except ValidationError as exc:
        raise ValueError(str(exc)) from None


def refuse_unredacted(original: OriginalSubmission, place: str) -> None:
    """Refuse to file an original that still holds spent credentials (its source cannot redact it)."""
    if original.unredacted:
        raise MappingError(
            f"{place}: the original submission still holds the credential field(s) "
            f"{', '.join(original.unredacted)} (its source cannot remove them), so it is not filed; "
            "file the rendition instead of `content: original`"
        )


# -- without a mapping file ----------------------------------------------------------------------------


def default_record(app: Application) -> FileRecord:
    """The record of an application without a mapping file: original submission plus attachments."""
    documents: list[Document] = []
    if app.original is not None:
        refuse_unredacted(app.original, "the default record (no mapping file)")
        documents.append(
            Document(
                type="original",
                name=f"antrag-original{_extension(app.original.media_type)}",
                content=DocumentContent.ORIGINAL,
                blob=app.original.blob,
                media_type=app.original.media_type,
            )
        )
    for att in app.attachments:
        documents.append(
            Document(
                type="attachment",
                name=att.name,
                content=DocumentContent.ATTACHMENT,
                blob=att.blob,
                media_type=att.media_type,
                attachment=att.name,
            )
        )
    return FileRecord(
        application_id=app.id,
        service=app.service,
        file_number=app.file_number,
        documents=documents,
    )


def _extension(media_type: str) -> str:
    return {
        "application/json": ".json",
        "application/xml": ".xml",
        "text/xml": ".xml",
        "application/x-www-form-urlencoded": ".txt",
        "multipart/form-data": ".eml",
        "application/pdf": ".pdf",
    }.get(media_type.split(";")[0].strip().lower(), ".bin")
