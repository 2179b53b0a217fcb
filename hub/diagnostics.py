"""Connector diagnostics for operators: every connector's redacted state, shown by the CLI and the API.

`Connector.diagnostics()` promises no secrets and no personal data; this module enforces the first once
more on the way out (a value that is a `SecretStr`, or sits under a key that names a secret, is masked),
so a plugin that dumps a nested model with a secret cannot leak it through an operator's screen.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, SecretBytes, SecretStr

from hub.connectors import Connector
from hub.gate import TargetStatus

MASK = "**********"
NOT_SECRET = ("_url", "_file", "_path", "_kind", "_type")  # where a secret is, not what it is
SECRET_KEY = re.compile(r"secret|password|passwd|token|private|credential|api[_-]?key", re.IGNORECASE)


class ConnectorDiagnostics(BaseModel):
    """One connector as operators see it: name, type, role, its redacted state (or why none), and as a
    target whether the hub may run its tasks now (pause, circuit breaker, rate limit)."""

    name: str
    kind: str
    role: str
    state: dict[str, Any] | None = None
    error: str | None = None
    gate: TargetStatus | None = None


async def collect(
    connectors: Mapping[str, Connector[Any]],
    timeout: float = 10.0,
    targets: Sequence[TargetStatus] = (),
) -> list[ConnectorDiagnostics]:
    """Every connector's diagnostics, redacted, with its `targets` status; one that fails or hangs
    reports why instead."""
    gates = {t.target: t for t in targets}

    async def one(name: str, connector: Connector[Any]) -> ConnectorDiagnostics:
        found = ConnectorDiagnostics(
            name=name, kind=connector.kind, role=connector.role, gate=gates.get(name)
        )
        try:
            state = await asyncio.wait_for(connector.diagnostics(), timeout)
        except TimeoutError:
            found.error = f"no answer within {timeout:g}s"
        except Exception as exc:  # a broken plugin must not hide the others
            found.error = f"{type(exc).__name__}: diagnostics failed"
        else:
            found.state = redact(state)
        return found

    return list(await asyncio.gather(*(one(n, c) for n, c in connectors.items())))


def redact(value: Any, key: str = "") -> Any:
    """`value` as JSON-able data with every secret masked (by type, or by the key it is under)."""
    if isinstance(value, SecretStr | SecretBytes):
        return MASK
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    if isinstance(value, Mapping):
        return {str(k): redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [redact(v, key) for v in value]
    if isinstance(value, str) and value and SECRET_KEY.search(key) and not key.endswith(NOT_SECRET):
        return MASK
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)
