"""The operator's OpenAPI 3 file: find an operation by its id, build its request, validate it (openapi-core).

The request is validated before it is sent (body against the operation's request schema, path, query
and header parameters against theirs) with openapi-core, the same library the simulator validates
with on the server side. Security requirements are not checked here: the outbound helper adds the
configured credentials when it sends.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import yaml
from openapi_core import OpenAPI
from openapi_core.datatypes import RequestParameters
from openapi_core.protocols import Request
from openapi_core.validation.request import (
    V30RequestBodyValidator,
    V30RequestParametersValidator,
    V31RequestBodyValidator,
    V31RequestParametersValidator,
)
from openapi_spec_validator.versions import consts as versions

_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_TEMPLATE = re.compile(r"\{([^}/]+)\}")
_VALIDATORS: dict[Any, tuple[type[Any], ...]] = {
    versions.OPENAPIV30: (V30RequestBodyValidator, V30RequestParametersValidator),
    versions.OPENAPIV31: (V31RequestBodyValidator, V31RequestParametersValidator),
}
MAX_ERRORS = 5


class OpenApiError(ValueError):
    """The OpenAPI file cannot be used: unreadable, invalid, or without the configured operation."""


class InvalidRequest(ValueError):
    """A request does not fit the operation's description; the message names each misfit."""


@dataclass
class PlannedRequest:
    """A request as it will be sent, in the shape openapi-core validates (its `Request` protocol)."""

    host_url: str
    path: str
    method: str
    content_type: str
    body: bytes | None
    parameters: RequestParameters = field(default_factory=RequestParameters)


@dataclass(frozen=True)
class Operation:
    """One operation of the description: how to call it and how to check a call."""

    operation_id: str
    method: str  # upper case
    path: str  # the template relative to the base URL, e.g. "/cases/{tenant}"
    parameters: Mapping[str, str]  # name -> where it goes ("path", "query", "header", "cookie")
    required: frozenset[str]
    takes_json: bool  # has an application/json request body

    def fill_path(self, values: Mapping[str, str]) -> str:
        """The path with its parameters filled in (percent-encoded)."""
        return _TEMPLATE.sub(lambda m: quote(values[m.group(1)], safe=""), self.path)


class OpenApiDocument:
    """An OpenAPI 3.0/3.1 description loaded from a file, its servers replaced by the configured base URL."""

    def __init__(self, path: Path, base_url: str | None) -> None:
        self.path = path
        self.base_url = (base_url or "").rstrip("/")
        try:
            document = yaml.safe_load(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise OpenApiError(f"cannot read the OpenAPI file {str(path)!r}: {exc.strerror}") from None
        except yaml.YAMLError as exc:
            raise OpenApiError(f"the OpenAPI file {str(path)!r} is not YAML or JSON: {exc}") from None
        if not isinstance(document, dict) or not isinstance(document.get("paths"), dict):
            raise OpenApiError(f"{str(path)!r} is no OpenAPI 3 description (no paths)")
        if base_url is not None:
            _serve_at(document, self.base_url)
        self.document = document
        try:
            self.api = OpenAPI.from_dict(document, base_uri=path.resolve().as_uri())
        except Exception as exc:  # openapi-spec-validator raises its own kinds for an invalid file
            raise OpenApiError(f"{str(path)!r} is no valid OpenAPI 3 description: {exc}"[:600]) from None
        classes = _VALIDATORS.get(self.api.version)
        if classes is None:
            raise OpenApiError(f"{str(path)!r}: only OpenAPI 3.0 and 3.1 are supported")
        self._body, self._parameters = (cls(self.api.spec) for cls in classes)

    def operation(self, operation_id: str) -> Operation:
        """The operation with this operationId; `OpenApiError` if the file has none."""
        for template, item in self.document["paths"].items():
            if not isinstance(item, dict):
                continue
            shared = item.get("parameters", [])
            for method in _METHODS:
                op = item.get(method)
                if isinstance(op, dict) and op.get("operationId") == operation_id:
                    return self._operation(
                        operation_id, method, template, [*shared, *op.get("parameters", [])], op
                    )
        raise OpenApiError(f"{str(self.path)!r} has no operation {operation_id!r}")

    def _operation(
        self, operation_id: str, method: str, template: str, parameters: list[Any], op: dict[str, Any]
    ) -> Operation:
        where: dict[str, str] = {}
        required: set[str] = set()
        for parameter in parameters:
            parameter = self._resolve(parameter)
            name, location = parameter.get("name"), parameter.get("in")
            if isinstance(name, str) and isinstance(location, str):
                where[name] = location
                if parameter.get("required") or location == "path":
                    required.add(name)
        body = self._resolve(op.get("requestBody", {}))
        content = body.get("content", {}) if isinstance(body, dict) else {}
        takes_json = any(_is_json(media) for media in content)
        return Operation(operation_id, method.upper(), template, where, frozenset(required), takes_json)

    def _resolve(self, node: Any) -> Any:
        """A local `$ref` (``#/components/...``) followed; other nodes as they are."""
        seen = 0
        while isinstance(node, dict) and isinstance(node.get("$ref"), str) and seen < 20:
            ref: str = node["$ref"]
            if not ref.startswith("#/"):
                return node
            target: Any = self.document
            for part in ref[2:].split("/"):
                target = (
                    target.get(part.replace("~1", "/").replace("~0", "~"), {})
                    if isinstance(target, dict)
                    else {}
                )
            node, seen = target, seen + 1
        return node

    def check(self, request: Request, *, body: bool = True) -> None:
        """Raise `InvalidRequest` naming what in the request does not fit the description.

        `body=False`: the parameters only (a streamed upload's body is not at hand to check).
        """
        problems: list[str] = []
        for validator in (self._body, self._parameters) if body else (self._parameters,):
            for error in validator.iter_errors(request):
                problems.extend(describe_errors(error))
        if problems:
            shown = "; ".join(problems[:MAX_ERRORS])
            more = f" (and {len(problems) - MAX_ERRORS} more)" if len(problems) > MAX_ERRORS else ""
            raise InvalidRequest(shown + more)

    def planned(
        self,
        operation: Operation,
        path: str,
        *,
        body: Any,
        query: Mapping[str, str],
        headers: Mapping[str, str],
        content_type: str = "",
    ) -> PlannedRequest:
        """The request to `path` (relative to the base URL) as openapi-core reads it."""
        url = urlsplit(self.base_url + path)
        return PlannedRequest(
            host_url=f"{url.scheme}://{url.netloc}",
            path=url.path,
            method=operation.method.lower(),
            content_type=content_type if body is None else "application/json",
            body=json.dumps(body).encode() if body is not None else None,
            parameters=RequestParameters(query=dict(query), header=dict(headers)),
        )


def _serve_at(document: dict[str, Any], base_url: str) -> None:
    """Requests go to the configured base URL, whatever servers the vendor's file lists."""
    document["servers"] = [{"url": base_url}]
    for item in document["paths"].values():
        if isinstance(item, dict):
            item.pop("servers", None)
            for method in _METHODS:
                if isinstance(item.get(method), dict):
                    item[method].pop("servers", None)


def _is_json(media: str) -> bool:
    media = media.split(";")[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


def describe_errors(error: Exception) -> list[str]:
    """Readable misfits of one openapi-core error: the schema errors with their JSON path."""
    found: list[str] = []
    cause: BaseException | None = error
    while cause is not None:
        schema_errors = getattr(cause, "schema_errors", None)
        if schema_errors:
            for schema_error in schema_errors:
                where = schema_error.json_path if hasattr(schema_error, "json_path") else "$"
                found.append(f"{where}: {schema_error.message}")
            return found
        cause = cause.__cause__ or cause.__context__
    return [str(error)]


@functools.lru_cache(maxsize=32)
def _load(path: Path, base_url: str, mtime: float) -> OpenApiDocument:
    return OpenApiDocument(path, base_url)


def load_document(path: Path, base_url: str) -> OpenApiDocument:
    """The description in `path` for requests to `base_url`, loaded once per file version."""
    try:
        mtime = path.stat().st_mtime
    except OSError as exc:
        raise OpenApiError(f"cannot read the OpenAPI file {str(path)!r}: {exc.strerror}") from None
    return _load(path.resolve(), base_url, mtime)
