"""Secret settings: a ${ENV} reference (resolved when the YAML is read) or ``file:/path``, never shown.

A leaf module, so the outbound helper's auth settings take secrets the same way as every configuration.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import BeforeValidator, SecretStr


def _read_secret_file(value: Any) -> Any:
    if isinstance(value, str) and value.startswith("file:"):
        path = Path(value[len("file:") :]).expanduser()
        try:
            return path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ValueError(f"cannot read secret file {str(path)!r}: {exc.strerror}") from None
    return value


Secret = Annotated[SecretStr, BeforeValidator(_read_secret_file)]
"""A secret setting: a ${ENV} reference or a file:/path, never shown in logs or diagnostics."""
