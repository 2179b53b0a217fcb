"""Setting types every connector configuration uses: secrets, and files named relative to the config.

`Secret`: a ${ENV} reference (resolved when the YAML is read) or ``file:/path``, never shown.
`ConfigPath`: a file that accompanies the configuration (a template, an OpenAPI or WSDL description, a
certificate); a relative one is relative to the configuration file's directory, like the routes' mapping
files, so `openapi: specs/fv.yaml` beside the config works whatever the working directory of
`aktenhub run` is. Data locations (store, blobs, import and answer folders) stay plain paths, relative
to the working directory.

A leaf module, so the outbound helper's auth settings take secrets the same way as every configuration.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, SecretStr, ValidationInfo

# The key of the validation context that holds the configuration file's directory.
BASE_DIR = "base_dir"


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


def _relative_to_config(value: Path, info: ValidationInfo) -> Path:
    path = value.expanduser()
    base = info.context.get(BASE_DIR) if isinstance(info.context, dict) else None
    if path.is_absolute() or base is None:
        return path
    return Path(base) / path


ConfigPath = Annotated[Path, AfterValidator(_relative_to_config)]
"""A path setting: relative paths are relative to the configuration file's directory."""
