"""What the deployment examples in contrib/ are checked against: the hub's own commands, endpoints and
configuration model (shared by tests/test_contrib_compose.py, _kubernetes.py and _systemd.py)."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from hub.cli import main
from hub.config import ENV_REF, Configuration, load_config
from hub.plugins import load_plugins

ROOT = Path(__file__).parents[1]
CONTRIB = ROOT / "contrib"
CONFIG_IN_IMAGE = "/etc/aktenhub/aktenhub.yaml"
# Keys whose values are secrets wherever they appear in a configuration.
SECRET_KEY = re.compile(r"(token|password|secret|key)$", re.IGNORECASE)


async def probes_answer(hub_factory: Any, paths: set[str]) -> None:
    """Each path answers 200 on a running, healthy hub (its liveness and readiness endpoints)."""
    assert paths, "no probe found"
    running = await hub_factory({}, [])
    for path in sorted(paths):
        status, body = await running.get(path)
        assert status == 200, (path, status, body)


def cli_commands() -> set[str]:
    """The `aktenhub` subcommands (`aktenhub --help`)."""
    return set(main.commands)


def aktenhub_command(argv: list[str]) -> tuple[str, str]:
    """(subcommand, configuration path) of an ``aktenhub SUBCOMMAND -c PATH`` command line."""
    assert Path(argv[0]).name == "aktenhub", argv
    assert argv[1] in cli_commands(), f"`aktenhub {argv[1]}` is not a command of the hub: {argv}"
    assert argv[2] == "-c", argv
    return argv[1], argv[3]


def http_paths(command: str | list[str]) -> list[tuple[int | None, str]]:
    """(port, path) of every http:// URL in a command (a healthcheck's)."""
    text = command if isinstance(command, str) else " ".join(command)
    found = []
    for url in re.findall(r"https?://[^\s'\")]+", text):
        parts = urlsplit(url)
        found.append((parts.port, parts.path))
    return found


def env_names(text: str) -> set[str]:
    """The ${NAME} references in a configuration text (comments left out)."""
    lines = (line.split(" #", 1)[0] for line in text.splitlines() if not line.lstrip().startswith("#"))
    return set(ENV_REF.findall("\n".join(lines)))


def read_env_file(path: Path) -> dict[str, str]:
    """NAME=value lines of an env file (systemd EnvironmentFile, compose env_file)."""
    values = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


def load_mounted(
    tmp: Path, config_text: str, mounts: Mapping[str, Path], env: Mapping[str, str]
) -> Configuration:
    """Load a hub configuration as the container or unit sees it: written at /etc/aktenhub/aktenhub.yaml
    under `tmp`, with `mounts` (path inside -> path on this machine) linked in, and `env`."""
    config = tmp / CONFIG_IN_IMAGE.lstrip("/")
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(config_text, encoding="utf-8")
    for inside, outside in mounts.items():
        link = tmp / inside.lstrip("/")
        if link != config:
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(outside.resolve())
    return load_config(config, load_plugins(), env=dict(env))


def walk(node: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every (key path, scalar value) of a parsed YAML document."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from walk(value, (*path, str(key)))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from walk(value, (*path, str(i)))
    else:
        yield path, node


def secret_literals(config_text: str) -> list[str]:
    """Secrets written into a hub configuration instead of referenced: a secret-named key whose value is
    not a ${NAME} or file: reference, or a URL with a literal password."""
    found = []
    for path, value in walk(yaml.safe_load(config_text)):
        if not isinstance(value, str):
            continue
        referenced = ENV_REF.fullmatch(value.strip()) or value.startswith("file:")
        if path and SECRET_KEY.search(path[-1]) and not referenced:
            found.append(".".join(path))
        password = urlsplit(value).password if "://" in value else None
        if password is not None and not ENV_REF.fullmatch(password):
            found.append(".".join(path))
    return found


def installed(program: str) -> bool:
    """Whether a program is on PATH."""
    return shutil.which(program) is not None
