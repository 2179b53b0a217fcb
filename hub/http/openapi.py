"""The admin API's routes and their OpenAPI 3.1 description, from one registry.

Each endpoint is registered once, as an `Operation`: the registry mounts the aiohttp route behind the
role check and the same record yields the operation's OpenAPI description. Bodies, answers and query
parameters are pydantic models; their JSON Schemas (``model_json_schema``, draft 2020-12, which OpenAPI
3.1 uses as is) become ``components.schemas``. The document is served without a token at
``/api/v1/openapi.json``: it holds no data, only how to ask for it, and clients need it before they
have a token.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, Field
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from hub.http.auth import Handler, Role, TokenAuth

OPENAPI_PATH = "/api/v1/openapi.json"
REF = "#/components/schemas/{model}"
Method = Literal["GET", "POST"]

# What each status of an admin answer means; every error answer has the `ApiError` body.
STATUS_TEXT = {
    400: "The request is unusable (query parameter, body); the message says what is wrong.",
    401: "No, an unknown or more than one bearer token.",
    403: "The token's role is too low for this operation.",
    404: "No such resource.",
    409: "The action does not apply to the state things are in; the message says why.",
    413: "The request body is too large.",
    502: "The remote system refused the action; nothing changed.",
    503: "The remote system failed; nothing changed, try again later.",
}


class ApiError(BaseModel):
    """Every refusal of the admin API: what is wrong, in one sentence for operators."""

    error: str = Field(description="what is wrong and, where it helps, how to ask instead")


@dataclass(frozen=True)
class Operation:
    """One endpoint of the admin API: route, role, query, body and answers."""

    method: Method
    path: str
    operation_id: str
    summary: str
    role: Role | None  # None: no token needed
    answer: type[BaseModel]
    query: type[BaseModel] | None = None  # its fields are the query parameters (all optional)
    body: type[BaseModel] | None = None
    body_required: bool = False
    refusals: Sequence[int] = ()  # statuses beyond those that follow from role, query and body
    description: str = ""
    tags: Sequence[str] = ()


@dataclass
class ApiRoutes:
    """Registers the admin API's routes and describes them (`document`)."""

    app: web.Application
    auth: TokenAuth
    operations: list[Operation] = field(default_factory=list)

    def add(self, operation: Operation, handler: Handler) -> None:
        """Mount `handler` for `operation` behind its role check and remember its description."""
        guarded = handler if operation.role is None else self.auth.require(operation.role)(handler)
        self.app.router.add_route(operation.method, operation.path, guarded)
        self.operations.append(operation)

    def document(self) -> dict[str, Any]:
        """The OpenAPI 3.1 document of every registered operation."""
        models: list[tuple[type[BaseModel], JsonSchemaMode]] = [(ApiError, "serialization")]
        for op in self.operations:
            models.append((op.answer, "serialization"))
            models.extend((m, "validation") for m in (op.body, op.query) if m is not None)
        refs, defs = models_json_schema(models, ref_template=REF)
        paths: dict[str, dict[str, Any]] = {}
        for op in self.operations:
            described = _operation(op, refs, defs.get("$defs", {}))
            paths.setdefault(op.path, {})[op.method.lower()] = described
        return {
            "openapi": "3.1.0",
            "info": {
                "title": "Aktenhub admin API",
                "version": "1",
                "description": (
                    "Operators' API of an Aktenhub: applications, replay and abandon, held inbound "
                    "messages, targets, connectors and the audit trail. Every operation but this "
                    "document needs a bearer token (`server.admin_tokens`); roles rank viewer < "
                    "operator < admin, and each operation names the least role it needs "
                    "(`x-required-role`). Viewers see metadata only, no personal data."
                ),
            },
            "servers": [{"url": "/"}],
            "security": [{"bearer": []}],
            "paths": paths,
            "components": {
                "schemas": defs.get("$defs", {}),
                "securitySchemes": {
                    "bearer": {
                        "type": "http",
                        "scheme": "bearer",
                        "description": "an admin token of `server.admin_tokens` (viewer, operator, admin)",
                    }
                },
            },
        }


def _operation(
    op: Operation,
    refs: Mapping[tuple[Any, JsonSchemaMode], dict[str, Any]],
    defs: dict[str, Any],
) -> dict[str, Any]:
    described: dict[str, Any] = {
        "operationId": op.operation_id,
        "summary": op.summary,
        "tags": list(op.tags),
    }
    if op.description:
        described["description"] = op.description
    statuses = set(op.refusals)
    if op.role is None:
        described["security"] = []
    else:
        described["x-required-role"] = op.role
        role_note = f"Needs role {op.role} or higher."
        described["description"] = f"{op.description} {role_note}".strip()
        statuses.add(401)
        if op.role != "viewer":
            statuses.add(403)
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}}
        for name in _path_names(op.path)
    ]
    if op.query is not None:
        query = defs[refs[(op.query, "validation")]["$ref"].rsplit("/", 1)[-1]]
        for name, given in query.get("properties", {}).items():
            prop = _not_null(given)
            description = prop.pop("description", None)
            parameter: dict[str, Any] = {"name": name, "in": "query", "required": False, "schema": prop}
            if description:
                parameter["description"] = description
            parameters.append(parameter)
    # Unknown query parameters are refused, and so is every parameter given twice.
    if op.query is not None or (op.method == "GET" and op.role is not None):
        statuses.add(400)
    if parameters:
        described["parameters"] = parameters
    if op.body is not None:
        described["requestBody"] = {
            "required": op.body_required,
            "content": {"application/json": {"schema": refs[(op.body, "validation")]}},
        }
        statuses.update((400, 413))
    responses: dict[str, Any] = {
        "200": {
            "description": op.answer.__doc__ or "OK",
            "content": {"application/json": {"schema": refs[(op.answer, "serialization")]}},
        }
    }
    error = {"application/json": {"schema": refs[(ApiError, "serialization")]}}
    for status in sorted(statuses):
        responses[str(status)] = {"description": STATUS_TEXT[status], "content": error}
        if status == 401:
            responses["401"]["headers"] = {
                "WWW-Authenticate": {"schema": {"type": "string"}, "description": 'Bearer realm="aktenhub"'}
            }
    described["responses"] = responses
    return described


def _not_null(schema: dict[str, Any]) -> dict[str, Any]:
    """A query parameter's schema without pydantic's `null` branch: a parameter is given or left out
    (or given empty, which leaves it out too)."""
    prop = {k: v for k, v in schema.items() if k not in ("title", "default")}
    given = prop.pop("anyOf", [])
    branches = [b for b in given if b != {"type": "null"}]
    if len(branches) < len(given) and branches != [{"type": "string"}] and "maxLength" not in branches[0]:
        branches.append({"const": ""})  # an empty value leaves the filter out, as None does in the model
    if len(branches) == 1:
        prop.update(branches[0])
    elif branches:
        prop["anyOf"] = branches
    if "default" in schema and schema["default"] is not None:
        prop["default"] = schema["default"]
    return prop


def _path_names(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{") and part.endswith("}")]


class OpenApiDocument(BaseModel):
    """This OpenAPI 3.1 document."""

    openapi: str


def add_openapi_route(api: ApiRoutes) -> None:
    """Serve the description of every registered operation (and of itself), built on first request."""
    built: dict[str, Any] = {}

    async def serve(request: web.Request) -> web.StreamResponse:
        if not built:
            built.update(api.document())
        return web.json_response(built)

    api.add(
        Operation(
            "GET",
            OPENAPI_PATH,
            "openapi",
            "This description of the admin API (OpenAPI 3.1)",
            None,
            OpenApiDocument,
            tags=("meta",),
        ),
        serve,
    )
