"""The sink: files a record into enaio as Akte (folder), Vorgang (register) and documents.

One delivery is several requests. A crash, a timeout or a lost answer between them must neither lose
nor repeat work, so every object is found before it is created:

- the **Akte** is searched by the record's ``akte.search`` fields; if none matches it is created with
  ``akte.fields`` (plus the search fields, so the next search finds it). If several match (two
  deliveries raced, or a clerk created a second one), the **oldest — lowest object id —** is taken, the
  same one every time. With ``akte_not_found: tray`` an Akte that is not found is not created: the
  documents go into the technical user's tray (scanned post must not open an Akte; the delivery's note
  says so in the timeline); ``refuse`` fails the delivery instead;
- the **Vorgang** (register, optional) carries the application id in ``application_id_field`` and is
  searched by it before it is created (skipped when the Akte was created by this very attempt: it
  cannot hold anything yet, as for the documents below);
- each **document** carries ``"<application id>/<index in the record>"`` (from the application's second
  revision on ``"<application id>/r<revision>/<index>"``, so the new documents join the same Vorgang)
  in ``application_id_field`` and is searched by it before it is inserted (skipped when its parent was
  created by this very attempt: it cannot hold anything yet);
- progress is checkpointed (``akte``, ``aktenzeichen``, ``vorgang``, ``documents``) once when an
  attempt ends: a failed attempt's in one journal write, a successful one's with the delivery's
  completion; a retry resumes without even searching; the lookups keep it idempotent when a checkpoint
  was lost (an answer dropped after enaio stored the object, a crash before the attempt's checkpoint
  was written).

A Fachverfahren's answer (`record_answer`) finds the Akte again (the id recorded at delivery, else the
mapped search), sets the index fields the answer changes (never the Aktenzeichen) and files its
documents (the decision) into the Vorgang, found-or-inserted by ``"<application id>/a-<answer key>/<index>"``
in the same way.

Failures are classified for the core, which owns retrying: no answer in time, no connection, 5xx, 408,
425 and 429 are `Retryable`; other 4xx (credentials, rights, index data enaio refuses) are `Permanent`
with enaio's message. Logs carry ids and counts, never index data or document names.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import re
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

from hub import (
    AnswerRecord,
    BlobNotFound,
    CheckResult,
    ConnectorConfig,
    ConnectorContext,
    Delivery,
    DeliveryContext,
    Document,
    FileRecord,
    FolderSpec,
    Manifest,
    Permanent,
    Retryable,
    Sink,
    revision_key,
)

from . import __version__
from .client import TRAY, DmsApi, EnaioApi, EnaioHttp, Hit, NewDocument, OsrestApi, Upload
from .config import NAME_PATTERN, TYPE_PATTERN, EnaioConfig

log = logging.getLogger(__name__)

STANDARDS = ("enaio DMS Service REST API (/api/dms)", "enaio OSRest appconnector (/osrest/api)")
PROGRESS_KEYS = ("akte", "aktenzeichen", "vorgang", "documents", "akte_fields")
_NAME = re.compile(NAME_PATTERN)
_TYPE = re.compile(TYPE_PATTERN)


@dataclass(frozen=True)
class _Folder:
    type: str
    search: dict[str, str]
    fields: dict[str, str]


@dataclass(frozen=True)
class _Document:
    index: int
    type: str
    upload: Upload
    fields: dict[str, str]


@dataclass(frozen=True)
class _Plan:
    """A record checked completely and turned into what is sent to enaio, before anything is sent."""

    akte: _Folder | None
    vorgang: _Folder | None
    documents: list[_Document]
    fingerprint: str


@dataclass
class _Progress:
    """What earlier attempts of this delivery recorded (nothing if the record has changed since)."""

    ctx: DeliveryContext
    fingerprint: str
    akte: str | None = None
    aktenzeichen: str | None = None
    vorgang: str | None = None
    documents: dict[str, str] = field(default_factory=dict)
    akte_fields: str | None = None  # an answer's index fields were set on the Akte (its fingerprint)
    _valid: bool = False
    _pending: dict[str, Any] = field(default_factory=dict)  # noted, recorded when the attempt ends

    @classmethod
    def load(cls, ctx: DeliveryContext, fingerprint: str) -> _Progress:
        saved = ctx.checkpoints
        if saved.get("record") != fingerprint:
            # Another record (the mapping changed before a replay): the lookups decide, not old ids.
            return cls(ctx, fingerprint)
        documents = saved.get("documents")
        return cls(
            ctx,
            fingerprint,
            akte=_str_or_none(saved.get("akte")),
            aktenzeichen=_str_or_none(saved.get("aktenzeichen")),
            vorgang=_str_or_none(saved.get("vorgang")),
            documents={str(k): str(v) for k, v in documents.items()} if isinstance(documents, dict) else {},
            akte_fields=_str_or_none(saved.get("akte_fields")),
            _valid=True,
        )

    def save(self, key: str, value: Any) -> None:
        """Note progress of this attempt; recorded when the attempt ends (see `recorded`)."""
        if not self._valid:
            # Progress of another record must not come back once this record's fingerprint is saved.
            for stale in PROGRESS_KEYS:
                if self.ctx.checkpoints.get(stale):
                    self._pending[stale] = None
            self._pending["record"] = self.fingerprint
            self._valid = True
        self._pending[key] = value

    @contextlib.asynccontextmanager
    async def recorded(self) -> AsyncIterator[None]:
        """Record the attempt's progress when it ends: a failed one's in one journal write, a successful
        one's with the delivery's completion (in the transaction that ends the step, no write of its own).

        Once per attempt rather than once per object (eight for an application with four documents): a
        retry after a failure (or a replay) resumes from it; an attempt that crashed in between, or whose
        completion was lost, leaves the work to the lookups, which find every object it created.
        """
        try:
            yield
        except Exception:
            try:
                if self._pending:
                    pending, self._pending = self._pending, {}
                    await self.ctx.checkpoint_many(pending)
            except Exception as exc:  # the attempt's own failure is what the core must see
                log.warning(
                    "progress of a failed attempt not recorded application=%s: %s",
                    self.ctx.application.id,
                    type(exc).__name__,
                )
            raise
        if self._pending:
            pending, self._pending = self._pending, {}
            self.ctx.checkpoint_with_completion(pending)


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


class EnaioSink(Sink[EnaioConfig]):
    """Files each application into enaio: the applicant's Akte (found or created), a Vorgang, documents."""

    kind: ClassVar[str] = "enaio"
    is_efile: ClassVar[bool] = True
    Config: ClassVar[type[ConnectorConfig]] = EnaioConfig
    manifest: ClassVar[Manifest] = Manifest(
        name="enaio",
        version=__version__,
        standards=STANDARDS,
        description="Akte, Vorgang and documents with index data into enaio (OPTIMAL SYSTEMS), "
        "via the DMS Service or OSRest; Basic or session-cookie authentication",
    )

    def __init__(self, config: EnaioConfig, context: ConnectorContext) -> None:
        super().__init__(config, context)
        self.http = EnaioHttp(config, lambda: self.context.http)
        self.api: EnaioApi = DmsApi(self.http) if config.api == "dms" else OsrestApi(self.http)
        self._counters: Counter[str] = Counter()

    # -- operators -------------------------------------------------------------------------------------

    async def check(self) -> CheckResult:
        """The server accepts the credentials, and knows the configured object types."""
        details = {
            "base_url": self.config.base_url,
            "api": self.config.api,
            "auth": self.config.auth,
            "username": self.config.username,
        }
        try:
            details.update(await self.api.identity())
            missing = await self.api.missing_types(self.config.object_types)
        except (Retryable, Permanent) as exc:
            return CheckResult(ok=False, message=str(exc), details=details)
        types = self.config.object_types
        details["object_types"] = ", ".join(types) or "(none configured)"
        if missing:
            return CheckResult(
                ok=False,
                message=f"enaio at {self.config.base_url} does not know the object type(s) "
                f"{', '.join(missing)}",
                details=details,
            )
        known = f" and knows the {len(types)} configured object type(s)" if types else ""
        server = f"{self.config.base_url} ({self.config.api})"
        return CheckResult(
            ok=True,
            message=f"{server} accepts user {self.config.username}{known}",
            details=details,
        )

    async def diagnostics(self) -> dict[str, Any]:
        """Configuration (the password masked) and what this process has done since it started."""
        state = await super().diagnostics()
        state["counters"] = dict(self._counters)
        state["session"] = {"open": self.http.has_session, "logins": self.http.logins}
        return state

    # -- delivery --------------------------------------------------------------------------------------

    async def deliver(self, record: FileRecord, ctx: DeliveryContext) -> Delivery:
        """Find or create the Akte, then the Vorgang, then insert the documents not there yet."""
        app_id = ctx.application.id
        if record.application_id != app_id:
            raise Permanent(f"record belongs to application {record.application_id}, the context to {app_id}")
        plan = await self._plan(record, ctx)  # everything checkable is checked before anything is created
        progress = _Progress.load(ctx, plan.fingerprint)

        async with progress.recorded():
            akte_id, aktenzeichen, akte_created = await self._akte(plan, progress)
            vorgang_id, vorgang_created = await self._vorgang(plan, progress, akte_id, app_id, akte_created)
            if vorgang_id is not None:
                location: str = vorgang_id
                fresh = vorgang_created
            elif akte_id is not None:
                location, fresh = akte_id, akte_created
            else:
                location, fresh = TRAY, False
            # Only with `akte_not_found: tray`: the record named an Akte that enaio does not hold.
            not_found = plan.akte is not None and akte_id is None
            ids, inserted = await self._documents(plan.documents, progress, location, fresh, ctx)

        log.info(
            "delivered application=%s target=%s api=%s akte=%s akte_created=%s vorgang=%s "
            "vorgang_created=%s documents=%d inserted_now=%d",
            app_id,
            self.name,
            self.api.name,
            akte_id,
            akte_created,
            vorgang_id,
            vorgang_created,
            len(ids),
            inserted,
        )
        correlations = {"akte": akte_id, "vorgang": vorgang_id, "documents": ",".join(ids) or None}
        return Delivery(
            target=self.name,
            reference=akte_id if akte_id is not None else (ids[0] if ids else None),
            file_number=aktenzeichen or record.file_number,
            correlations={k: v for k, v in correlations.items() if v is not None},
            duplicate=not (akte_created or vorgang_created or inserted),
            note=_tray_note(plan, not_found),
            details={
                "api": self.api.name,
                "location": "vorgang" if vorgang_id else "akte" if akte_id else "tray",
                "akte_not_found": not_found,
                "akte_created": akte_created,
                "vorgang_created": vorgang_created,
                "documents": len(ids),
                "documents_inserted": inserted,
            },
        )

    # -- answers of a Fachverfahren ---------------------------------------------------------------------

    async def record_answer(self, record: AnswerRecord, ctx: DeliveryContext) -> Delivery:
        """Set the Akte's index fields the answer changes, file its documents into the Vorgang; once."""
        app_id = ctx.application.id
        if record.application_id != app_id:
            raise Permanent(f"answer belongs to application {record.application_id}, the context to {app_id}")
        number_field = self.config.file_number_field
        _check_names(record.akte_fields, "akte_fields")
        if number_field is not None and number_field in record.akte_fields:
            raise Permanent(
                f"akte_fields would overwrite the Aktenzeichen field {number_field!r}: a Fachverfahren's "
                "case number goes into a field of its own"
            )
        # Documents of an answer are marked by the answer (its connector and id), so a repeat finds them.
        answer_key = hashlib.sha256(f"{record.source}\n{record.answer_id}".encode()).hexdigest()[:16]
        documents = await self._documents_plan(record.documents, f"{app_id}/a-{answer_key}", ctx)
        fingerprint = _fingerprint([record.answer_id, record.akte_fields, _sent(documents)])
        progress = _Progress.load(ctx, fingerprint)

        async with progress.recorded():
            akte_id = await self._answer_akte(record, progress)
            updated = False
            if record.akte_fields and progress.akte_fields != fingerprint:
                akte_type = record.akte.type if record.akte is not None else None
                await self.api.update(
                    akte_id, akte_type, record.akte_fields, "update of the Akte's index data"
                )
                self._counters["akten_updated"] += 1
                updated = True
                progress.save("akte_fields", fingerprint)
            vorgang_id = await self._answer_vorgang(record, progress, app_id)
            ids, inserted = await self._documents(documents, progress, vorgang_id or akte_id, False, ctx)

        log.info(
            "answer filed application=%s target=%s api=%s akte=%s fields_updated=%s vorgang=%s "
            "documents=%d inserted_now=%d",
            app_id,
            self.name,
            self.api.name,
            akte_id,
            updated,
            vorgang_id,
            len(ids),
            inserted,
        )
        # The core keeps them under the answer (``<target>.answer-<n>.documents``), the Akte as reference.
        correlations = {"documents": ",".join(ids)} if ids else {}
        return Delivery(
            target=self.name,
            reference=akte_id,
            correlations=correlations,
            duplicate=not (updated or inserted),
            details={
                "api": self.api.name,
                "akte_fields": sorted(record.akte_fields),
                "akte_updated": updated,
                "location": "vorgang" if vorgang_id else "akte",
                "documents": len(ids),
                "documents_inserted": inserted,
            },
        )

    async def _answer_akte(self, record: AnswerRecord, progress: _Progress) -> str:
        """The Akte the application was filed into: as recorded at delivery, else found as mapped."""
        if progress.akte is not None:
            return progress.akte
        akte_id = progress.ctx.application.correlations.get(f"{self.name}.akte")
        if not akte_id and record.akte is not None:
            akte = self._akte_spec(record.akte)
            found = await self._find_akte(akte.type, akte.search, record.application_id)
            akte_id = found.id if found is not None else None
        if not akte_id:
            raise Permanent(
                f"the application's Akte is not known: it was not filed through {self.name!r} and the "
                "mapping's akte.search finds none in enaio"
            )
        progress.save("akte", akte_id)
        return akte_id

    async def _answer_vorgang(self, record: AnswerRecord, progress: _Progress, app_id: str) -> str | None:
        """The application's Vorgang (None: it has none; the documents go into the Akte)."""
        if progress.vorgang is not None:
            return progress.vorgang
        vorgang_id = progress.ctx.application.correlations.get(f"{self.name}.vorgang")
        if not vorgang_id and record.vorgang is not None:
            _check_type(record.vorgang.type, "vorgang.type")
            criteria = {self.config.application_id_field: app_id}
            hits = await self.api.search(record.vorgang.type, criteria, [], "Vorgang lookup")
            vorgang_id = _oldest(hits).id if hits else None
        if vorgang_id:
            progress.save("vorgang", vorgang_id)
        return vorgang_id or None

    async def existing_file_number(self, akte: FolderSpec) -> str | None:
        """The Aktenzeichen of the Akte a delivery would file into (the oldest match), if one exists."""
        number_field = self.config.file_number_field
        if number_field is None:
            return None
        _check_type(akte.type, "akte.type")
        _check_names(akte.search, "akte.search")
        found = await self._find_akte(akte.type, akte.search)
        if found is None:
            return None
        return found.fields.get(number_field) or None

    async def _find_akte(self, akte_type: str, search: dict[str, str], application: str = "-") -> Hit | None:
        """The Akte the search finds; of several, the oldest (the same one every time)."""
        number_field = self.config.file_number_field
        columns = [number_field] if number_field else []
        hits = await self.api.search(akte_type, search, columns, "Akte lookup")
        if not hits:
            return None
        chosen = _oldest(hits)
        if len(hits) > 1:
            log.warning(
                "several Akten match application=%s target=%s count=%d chosen=%s (the oldest)",
                application,
                self.name,
                len(hits),
                chosen.id,
            )
        return chosen

    # -- the record --------------------------------------------------------------------------------------

    async def _plan(self, record: FileRecord, ctx: DeliveryContext) -> _Plan:
        settings = self.config
        app_id = ctx.application.id
        akte = None
        if record.akte is not None:
            akte = self._akte_spec(record.akte)
        elif settings.without_akte == "refuse":
            raise Permanent(
                "the record names no Akte: give the route a mapping file with an `akte`, "
                "or set `without_akte: tray` to put such documents into the user's tray"
            )
        vorgang = None
        if record.vorgang is not None:
            if akte is None:
                raise Permanent("the record has a Vorgang but no Akte: a register needs a folder")
            spec = record.vorgang
            _check_type(spec.type, "vorgang.type")
            fields = {**spec.search, **spec.fields, settings.application_id_field: app_id}
            _check_names(fields, "vorgang.fields")
            vorgang = _Folder(spec.type, {settings.application_id_field: app_id}, fields)
        # A later revision of the application files its documents beside the earlier ones.
        documents = await self._documents_plan(record.documents, revision_key(app_id, record.revision), ctx)
        fingerprint = _fingerprint(
            [
                None if akte is None else [akte.type, akte.search, akte.fields],
                None if vorgang is None else [vorgang.type, vorgang.fields],
                _sent(documents),
            ]
        )
        return _Plan(akte, vorgang, documents, fingerprint)

    async def _documents_plan(
        self, documents: list[Document], key: str, ctx: DeliveryContext
    ) -> list[_Document]:
        """The documents checked, each marked ``<key>/<index>`` in the application id field."""
        settings = self.config
        planned = []
        for index, document in enumerate(documents):
            what = f"document {index} (type {document.type!r})"
            object_type = settings.document_types.get(document.type, document.type)
            _check_type(object_type, f"{what}: type")
            if document.blob is None:
                raise Permanent(f"{what} has no content (no blob reference): nothing to deliver")
            try:
                size = (await ctx.blobs.info(document.blob)).size
            except BlobNotFound:  # not stored, or not even a valid reference
                raise Permanent(
                    f"{what} references {document.blob!r}, which is not in the blob store"
                ) from None
            fields = dict(document.fields)
            title = settings.document_title_field
            if title and not fields.get(title):
                fields[title] = document.name
            fields[settings.application_id_field] = f"{key}/{index}"
            _check_names(fields, f"{what}: fields")
            upload = Upload(document.name, document.media_type, document.blob, size)
            planned.append(_Document(index, object_type, upload, fields))
        return planned

    def _akte_spec(self, spec: FolderSpec) -> _Folder:
        _check_type(spec.type, "akte.type")
        _check_names(spec.search, "akte.search")
        _check_names(spec.fields, "akte.fields")
        search = dict(spec.search)
        number_field = self.config.file_number_field
        if not search and number_field and spec.fields.get(number_field):
            search = {number_field: spec.fields[number_field]}
        if not search:
            raise Permanent(
                "akte.search is empty: the Akte could never be found again (every delivery would create "
                "one); name the index fields that identify it in the mapping file"
            )
        for name, value in search.items():
            if name in spec.fields and spec.fields[name] != value:
                raise Permanent(
                    f"akte.search and akte.fields disagree on index field {name!r}: an Akte created with "
                    "these fields would not be found by this search"
                )
        return _Folder(spec.type, search, {**spec.fields, **search})

    # -- the steps -----------------------------------------------------------------------------------------

    async def _akte(self, plan: _Plan, progress: _Progress) -> tuple[str | None, str | None, bool]:
        """(Akte id, its Aktenzeichen, created by this attempt) — (None, None, False) for the tray."""
        akte = plan.akte
        if akte is None:
            return None, None, False
        if progress.akte is not None:
            return progress.akte, progress.aktenzeichen, False
        number_field = self.config.file_number_field
        chosen = await self._find_akte(akte.type, akte.search, progress.ctx.application.id)
        if chosen is None and self.config.akte_not_found != "create":
            if self.config.akte_not_found == "refuse":
                raise Permanent("the mapping's akte.search finds no Akte in enaio (akte_not_found: refuse)")
            self._counters["akten_not_found"] += 1
            return None, None, False  # into the tray; its documents are found again by their id field
        created = chosen is None
        if chosen is not None:
            akte_id = chosen.id
            aktenzeichen = chosen.fields.get(number_field) if number_field else None
            self._counters["akten_found"] += 1
        else:
            akte_id = await self.api.insert(
                akte.type, None, akte.fields, None, progress.ctx.blobs, "Akte creation"
            )
            aktenzeichen = akte.fields.get(number_field) if number_field else None
            self._counters["akten_created"] += 1
        progress.save("aktenzeichen", aktenzeichen or None)
        progress.save("akte", akte_id)
        return akte_id, aktenzeichen or None, created

    async def _vorgang(
        self, plan: _Plan, progress: _Progress, akte_id: str | None, app_id: str, fresh: bool
    ) -> tuple[str | None, bool]:
        """(Vorgang id, created by this attempt); `fresh`: the Akte was created by this attempt."""
        vorgang = plan.vorgang
        if vorgang is None or akte_id is None:
            return None, False
        if progress.vorgang is not None:
            return progress.vorgang, False
        hits = [] if fresh else await self.api.search(vorgang.type, vorgang.search, [], "Vorgang lookup")
        if hits:
            vorgang_id = _oldest(hits).id
            created = False
        else:
            vorgang_id = await self.api.insert(
                vorgang.type, akte_id, vorgang.fields, None, progress.ctx.blobs, "Vorgang creation"
            )
            created = True
            self._counters["vorgaenge_created"] += 1
        progress.save("vorgang", vorgang_id)
        return vorgang_id, created

    async def _documents(
        self,
        documents: list[_Document],
        progress: _Progress,
        location: str,
        fresh: bool,
        ctx: DeliveryContext,
    ) -> tuple[list[str], int]:
        done = dict(progress.documents)
        id_field = self.config.application_id_field
        missing: list[_Document] = []
        for document in documents:
            key = str(document.index)
            if key in done:
                continue
            hits: list[Hit] = []
            if not fresh:
                hits = await self.api.search(
                    document.type,
                    {id_field: document.fields[id_field]},
                    [],
                    f"lookup of document {document.index}",
                )
            if hits:
                done[key] = _oldest(hits).id
                self._counters["documents_found"] += 1
                progress.save("documents", dict(done))
            else:
                missing.append(document)
        # The missing ones in as few requests as the API allows (the DMS Service: usually one).
        new = [NewDocument(d.type, d.fields, d.upload, f"insert of document {d.index}") for d in missing]
        position = 0
        async for object_ids in self.api.insert_documents(location, new, ctx.blobs):
            for object_id in object_ids:
                done[str(missing[position].index)] = object_id
                position += 1
                self._counters["documents_inserted"] += 1
            progress.save("documents", dict(done))
        return [done[str(d.index)] for d in documents], position


def _tray_note(plan: _Plan, not_found: bool) -> str | None:
    """What the timeline says when the documents went into the tray rather than an Akte."""
    if not_found and plan.akte is not None:
        searched = ", ".join(sorted(plan.akte.search))
        return f"in den Eingangskorb: keine {plan.akte.type} zu {searched} gefunden"
    if plan.akte is None:
        return "in den Eingangskorb: der Datensatz nennt keine Akte"
    return None


def _fingerprint(value: Any) -> str:
    """What a checkpoint belongs to: progress of another record (or answer) must not be reused."""
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()


def _sent(documents: list[_Document]) -> list[Any]:
    return [[d.index, d.type, d.upload.blob, d.fields] for d in documents]


def _oldest(hits: list[Hit]) -> Hit:
    return min(hits, key=lambda h: h.order)


def _check_type(value: str, where: str) -> None:
    if not _TYPE.match(value):
        raise Permanent(f"{where}: {value[:60]!r} is not an enaio object type (internal name or numeric id)")


def _check_names(fields: dict[str, str], where: str) -> None:
    for name in fields:
        if not _NAME.match(name):
            raise Permanent(f"{where}: {name[:60]!r} is not an enaio index field name")
