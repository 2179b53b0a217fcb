"""contrib/compose is a deployment the hub can really run: Docker Compose and Caddy accept its files,
every command and healthcheck names a command or endpoint the hub has, the hub configuration it mounts
loads with the secrets make-secrets.sh writes, and no secret is written into the files."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from click.testing import CliRunner
from contrib_checks import (
    CONFIG_IN_IMAGE,
    CONTRIB,
    ROOT,
    aktenhub_command,
    env_names,
    http_paths,
    installed,
    load_mounted,
    probes_answer,
    read_env_file,
    secret_literals,
)

from hub.cli import main
from hub.config import Configuration

COMPOSE = CONTRIB / "compose"
HUB_CONFIG = COMPOSE / "aktenhub.yaml"


def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((COMPOSE / "compose.yaml").read_text(encoding="utf-8"))
    return document


def hubs() -> dict[str, dict[str, Any]]:
    """The services that run `aktenhub run` (the image's entrypoint, not overridden)."""
    return {n: s for n, s in compose()["services"].items() if "build" in s and "entrypoint" not in s}


def image_entrypoint() -> list[str]:
    """The ENTRYPOINT of the repository's Dockerfile, the image every hub service builds."""
    line = next(x for x in (ROOT / "Dockerfile").read_text().splitlines() if x.startswith("ENTRYPOINT"))
    entrypoint: list[str] = json.loads(line.removeprefix("ENTRYPOINT"))
    return entrypoint


@pytest.fixture
def secrets_made(tmp_path: Path) -> Path:
    """A copy of contrib/compose (where ../../config is still the repository's) after make-secrets.sh."""
    copy = tmp_path / "contrib" / "compose"
    shutil.copytree(COMPOSE, copy)
    (tmp_path / "config").symlink_to(ROOT / "config")
    (tmp_path / "Dockerfile").symlink_to(ROOT / "Dockerfile")
    subprocess.run(["sh", str(copy / "make-secrets.sh")], check=True, capture_output=True, timeout=60)
    return copy


def hub_environment(compose_dir: Path, service: dict[str, Any]) -> dict[str, str]:
    """What a hub container's environment holds: its env files, then its `environment:`."""
    env: dict[str, str] = {}
    for name in service.get("env_file", []):
        env.update(read_env_file(compose_dir / name))
    env.update(service.get("environment") or {})
    return env


def mounts(compose_dir: Path, service: dict[str, Any]) -> dict[str, Path]:
    """A service's bind mounts: path inside the container -> path on this machine."""
    found = {}
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith("."):
            found[target] = compose_dir / source
    return found


def loaded_hub_config(tmp_path: Path, compose_dir: Path) -> Configuration:
    (name, service), *_ = hubs().items()
    return load_mounted(
        tmp_path / name,
        HUB_CONFIG.read_text(encoding="utf-8"),
        mounts(compose_dir, service),
        hub_environment(compose_dir, service),
    )


def test_the_services_are_a_shared_journal_an_object_store_a_migration_two_hubs_and_a_proxy() -> None:
    services = compose()["services"]
    assert services["postgres"]["image"] == "postgres:15"
    assert services["seaweedfs"]["image"].startswith("chrislusf/seaweedfs:")
    assert len(hubs()) >= 2
    for name, hub in hubs().items():
        # Every hub waits for the schema and the bucket; it is stateless (no volume of its own).
        needs = hub["depends_on"]
        assert needs["migrate"]["condition"] == "service_completed_successfully", name
        assert needs["s3-bucket"]["condition"] == "service_completed_successfully", name
        assert all(not v.split(":")[0].startswith(("/", "postgres", "seaweedfs")) for v in hub["volumes"])
    assert {
        n for n, c in services["caddy"]["depends_on"].items() if c["condition"] == "service_healthy"
    } == set(hubs())


def test_every_command_is_a_command_of_the_hub_on_the_mounted_configuration() -> None:
    services = compose()["services"]
    commands = {name: s["entrypoint"] for name, s in services.items() if "entrypoint" in s}
    commands.update({name: image_entrypoint() for name in hubs()})
    assert {aktenhub_command(argv)[0] for argv in commands.values()} == {"migrate", "run"}
    for name, argv in commands.items():
        _, config = aktenhub_command(argv)
        assert config == CONFIG_IN_IMAGE
        assert f"./aktenhub.yaml:{config}:ro" in services[name]["volumes"], name


def test_every_healthcheck_asks_an_endpoint_the_hub_has() -> None:
    services = compose()["services"]
    port = yaml.safe_load(HUB_CONFIG.read_text(encoding="utf-8"))["server"]["listen"].rpartition(":")[2]
    for name, service in services.items():
        if service.get("restart") == "no":
            continue  # a one-shot: it ends, nothing to check
        assert "healthcheck" in service, f"{name} has no healthcheck"
    for name in [*hubs(), "caddy"]:
        found = http_paths(services[name]["healthcheck"]["test"])
        assert found and all(path in ("/healthz", "/readyz") for _, path in found), (name, found)
        if name in hubs():
            assert {p for p, _ in found} == {int(port)}, name


async def test_the_probes_answer_on_a_running_hub(hub_factory: Any) -> None:
    services = compose()["services"]
    used = {
        path for name in [*hubs(), "caddy"] for _, path in http_paths(services[name]["healthcheck"]["test"])
    }
    await probes_answer(hub_factory, used)


def test_the_hub_configuration_loads_with_the_secrets_make_secrets_writes(
    tmp_path: Path, secrets_made: Path
) -> None:
    config = loaded_hub_config(tmp_path, secrets_made)
    hub = config.hub
    assert hub.roles == ("intake", "workers")
    assert (hub.server.host, hub.server.port) == ("0.0.0.0", 8080)
    store = urlsplit(hub.store)
    assert (store.scheme, store.hostname, store.port) == ("postgresql", "postgres", 5432)
    assert store.password == read_env_file(secrets_made / "secrets" / "postgres.env")["POSTGRES_PASSWORD"]
    s3 = hub.blobs.s3
    assert s3 is not None and (s3.bucket, s3.addressing) == ("aktenhub", "path")
    assert s3.endpoint is not None and urlsplit(s3.endpoint).netloc == "seaweedfs:8333"
    bucket = compose()["services"]["s3-bucket"]["command"]
    assert f"-name {s3.bucket}" in " ".join(bucket)
    # The object store and the hubs read the same keys: the store's identity is the hubs' credentials.
    for name in ["seaweedfs", *hubs()]:
        assert "secrets/s3.env" in compose()["services"][name]["env_file"], name
    assert {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} <= set(
        read_env_file(secrets_made / "secrets/s3.env")
    )


def test_make_secrets_keeps_them_to_the_owner_and_out_of_git(secrets_made: Path) -> None:
    written = sorted((secrets_made / "secrets").iterdir())
    assert [p.name for p in written] == ["hub.env", "postgres.env", "s3.env"]
    for path in written:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert (secrets_made / "secrets").stat().st_mode & 0o077 == 0
    assert "secrets/" in (COMPOSE / ".gitignore").read_text(encoding="utf-8").split()
    before = {p.name: p.read_text() for p in written}
    subprocess.run(["sh", str(secrets_made / "make-secrets.sh")], check=True, capture_output=True, timeout=60)
    assert {p.name: p.read_text() for p in written} == before  # a second run changes nothing


def test_no_secret_is_written_into_the_files() -> None:
    text = HUB_CONFIG.read_text(encoding="utf-8")
    assert secret_literals(text) == []
    assert env_names(text) >= {"POSTGRES_PASSWORD", "AKTENHUB_ADMIN_TOKEN", "FORMCYCLE_TOKEN"}
    for name, service in compose()["services"].items():
        inline = {
            k for k in service.get("environment") or {} if any(s in k for s in ("PASSWORD", "SECRET", "KEY"))
        }
        assert inline == set(), f"{name} has secrets inline: {inline}"


@pytest.mark.skipif(not installed("docker-compose"), reason="docker-compose is not installed")
def test_docker_compose_accepts_the_file(secrets_made: Path) -> None:
    checked = subprocess.run(
        ["docker-compose", "-f", "compose.yaml", "config", "-q"],
        cwd=secrets_made,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COMPOSE_PROJECT_NAME": "aktenhub"},
    )
    assert (checked.returncode, checked.stderr) == (0, "")


def caddy_json(site: str | None = None) -> dict[str, Any]:
    """The Caddyfile as Caddy reads it (`caddy adapt`), with AKTENHUB_SITE set or not."""
    env = {k: v for k, v in os.environ.items() if k != "AKTENHUB_SITE"}
    if site is not None:
        env["AKTENHUB_SITE"] = site
    adapted = subprocess.run(
        ["caddy", "adapt", "--config", str(COMPOSE / "Caddyfile"), "--adapter", "caddyfile"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=True,
    )
    document: dict[str, Any] = json.loads(adapted.stdout)
    return document


def handlers(node: Any, kind: str) -> list[dict[str, Any]]:
    """Every handler of a kind anywhere in Caddy's JSON configuration."""
    found = []
    if isinstance(node, dict):
        if node.get("handler") == kind:
            found.append(node)
        for value in node.values():
            found += handlers(value, kind)
    elif isinstance(node, list):
        for value in node:
            found += handlers(value, kind)
    return found


@pytest.mark.skipif(not installed("caddy"), reason="caddy is not installed")
def test_caddy_sends_to_every_hub_that_is_ready(tmp_path: Path, secrets_made: Path) -> None:
    validated = subprocess.run(
        ["caddy", "validate", "--config", str(COMPOSE / "Caddyfile"), "--adapter", "caddyfile"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert validated.returncode == 0, validated.stderr
    config = loaded_hub_config(tmp_path, secrets_made)
    for site in (None, "aktenhub.kreis.example"):
        document = caddy_json(site)
        proxies = handlers(document, "reverse_proxy")
        assert proxies, "Caddy proxies to the hubs"
        for proxy in proxies:
            assert {u["dial"] for u in proxy["upstreams"]} == {
                f"{n}:{config.hub.server.port}" for n in hubs()
            }
            assert proxy["health_checks"]["active"]["uri"] == "/readyz"
        # Caddy takes bodies as large as the hub does: the hub answers what is larger itself.
        assert {h["max_size"] for h in handlers(document, "request_body")} == {
            int(config.hub.server.max_body)
        }
    # The healthcheck's port is the Caddyfile's internal site.
    listens = {a for server in caddy_json()["apps"]["http"]["servers"].values() for a in server["listen"]}
    port = http_paths(compose()["services"]["caddy"]["healthcheck"]["test"])[0][0]
    assert f":{port}" in listens


def test_the_migrate_service_brings_a_database_up_to_date_once(
    tmp_path: Path, secrets_made: Path, postgres_url: str
) -> None:
    # The migrate service's command on the mounted configuration, its store a real (throw-away) PostgreSQL.
    service = compose()["services"]["migrate"]
    subcommand, config_path = aktenhub_command(service["entrypoint"])
    text = HUB_CONFIG.read_text(encoding="utf-8")
    store = next(line for line in text.splitlines() if line.startswith("store:"))
    env = hub_environment(secrets_made, service)
    load_mounted(tmp_path, text.replace(store, f"store: {postgres_url}"), mounts(secrets_made, service), env)
    argv = [subcommand, "-c", str(tmp_path / config_path.lstrip("/"))]
    first = CliRunner().invoke(main, argv, env=env)
    assert first.exit_code == 0, first.output
    assert "now at schema" in " ".join(first.output.split())  # the console wraps long lines
    again = CliRunner().invoke(main, argv, env=env)
    assert again.exit_code == 0, again.output
    assert "is up to date, nothing to do" in " ".join(again.output.split())
