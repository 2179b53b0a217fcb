"""The systemd units in contrib/ are ones systemd accepts without a warning, running commands of the hub
on a configuration that loads for every instance of the template unit."""

from __future__ import annotations

import configparser
import secrets
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from contrib_checks import (
    CONFIG_IN_IMAGE,
    CONTRIB,
    ROOT,
    SECRET_KEY,
    aktenhub_command,
    env_names,
    installed,
    load_mounted,
    read_env_file,
    secret_literals,
)

UNITS = CONTRIB / "systemd"
UNIT = UNITS / "aktenhub.service"
TEMPLATE = UNITS / "aktenhub@.service"
MIGRATE = UNITS / "aktenhub-migrate.service"
SEVERAL = UNITS / "several.yaml"
INSTANCES = sorted((UNITS / "instances").glob("*.env"))
INSTALLED = "/opt/aktenhub/bin/aktenhub"
needs_systemd = pytest.mark.skipif(not installed("systemd-analyze"), reason="systemd-analyze is missing")


def unit(path: Path) -> configparser.RawConfigParser:
    """A unit file's settings (repeated keys, e.g. EnvironmentFile=, keep their last value)."""
    parser = configparser.RawConfigParser(strict=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(path.read_text(encoding="utf-8"))
    return parser


def verify(tmp_path: Path, *names: str) -> tuple[int, str]:
    """`systemd-analyze verify` of the units, pointed at this checkout's `aktenhub`: verify checks that
    the programs they run exist."""
    installed = Path(sys.executable).parent / "aktenhub"
    assert installed.exists()
    for path in (UNIT, TEMPLATE, MIGRATE):
        (tmp_path / path.name).write_text(path.read_text(encoding="utf-8").replace(INSTALLED, str(installed)))
    checked = subprocess.run(
        ["systemd-analyze", "verify", *(str(tmp_path / n) for n in names)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        cwd=tmp_path,
    )
    return checked.returncode, checked.stdout + checked.stderr


@needs_systemd
def test_systemd_accepts_the_unit_without_a_warning(tmp_path: Path) -> None:
    assert verify(tmp_path, UNIT.name) == (0, "")
    assert unit(UNIT)["Service"]["ExecStart"] == f"{INSTALLED} run -c /etc/aktenhub/aktenhub.yaml"


@needs_systemd
def test_systemd_accepts_the_template_and_the_migration_without_a_warning(tmp_path: Path) -> None:
    (tmp_path / "aktenhub@intake.service").symlink_to(tmp_path / TEMPLATE.name)
    assert verify(tmp_path, "aktenhub@intake.service", MIGRATE.name) == (0, "")


def test_every_unit_runs_a_command_of_the_hub_on_the_installed_configuration() -> None:
    ran = {}
    for path in (UNIT, TEMPLATE, MIGRATE):
        argv = shlex.split(unit(path)["Service"]["ExecStart"])
        assert argv[0] == INSTALLED, path.name
        ran[path.name] = aktenhub_command(argv)
    assert ran == {
        UNIT.name: ("run", CONFIG_IN_IMAGE),
        TEMPLATE.name: ("run", CONFIG_IN_IMAGE),
        MIGRATE.name: ("migrate", CONFIG_IN_IMAGE),
    }


def test_the_processes_start_after_the_migration_and_do_not_need_it_to_succeed() -> None:
    # Ordered after it, but wanted rather than required: a database down at boot fails the migration,
    # and the processes then retry by themselves (Restart=on-failure) instead of never starting.
    template = unit(TEMPLATE)["Unit"]
    assert MIGRATE.name in template["After"].split() and MIGRATE.name in template["Wants"].split()
    assert "Requires" not in template
    migrate = unit(MIGRATE)["Service"]
    assert (migrate["Type"], migrate["RemainAfterExit"], migrate["Restart"]) == (
        "oneshot",
        "yes",
        "on-failure",
    )
    assert unit(TEMPLATE)["Service"]["Restart"] == "on-failure"


@pytest.mark.parametrize("instance", INSTANCES, ids=lambda p: p.stem)
def test_every_instance_loads_the_shared_configuration_with_its_own_port_and_roles(
    tmp_path: Path, instance: Path
) -> None:
    text = SEVERAL.read_text(encoding="utf-8")
    settings = read_env_file(instance)
    # The secrets of /etc/aktenhub/aktenhub.env (placeholders), then the instance's own file.
    env = {name: secrets.token_hex(32) for name in env_names(text) - set(settings)} | settings
    config = load_mounted(tmp_path, text, {"/etc/aktenhub/mappings": ROOT / "config" / "mappings"}, env)
    hub = config.hub
    assert hub.server.port == int(settings["AKTENHUB_PORT"])
    assert hub.roles == tuple(r for r in ("intake", "workers") if settings[f"AKTENHUB_{r.upper()}"] == "true")
    assert hub.store.startswith("postgresql://")  # several processes cannot share an SQLite journal
    assert hub.blobs.s3 is not None  # nor a local blob directory


def test_the_instances_split_the_roles_on_ports_of_their_own() -> None:
    settings = [read_env_file(p) for p in INSTANCES]
    assert len({s["AKTENHUB_PORT"] for s in settings}) == len(settings)
    assert any(s["AKTENHUB_INTAKE"] == "true" for s in settings)
    assert any(s["AKTENHUB_WORKERS"] == "true" for s in settings)
    # The migration sets what the configuration asks of an instance: it loads the same file.
    migrate_env = dict(v.split("=", 1) for v in shlex.split(unit(MIGRATE)["Service"]["Environment"]))
    assert set(migrate_env) == set(settings[0])


def test_no_secret_is_written_into_the_files() -> None:
    assert secret_literals(SEVERAL.read_text(encoding="utf-8")) == []
    for path in INSTANCES:
        assert set(read_env_file(path)) == {"AKTENHUB_PORT", "AKTENHUB_INTAKE", "AKTENHUB_WORKERS"}, path
    for path in (UNIT, TEMPLATE, MIGRATE):
        # Secrets only from the root-owned env file, never an Environment= line of the unit.
        assert "EnvironmentFile=/etc/aktenhub/aktenhub.env" in path.read_text(encoding="utf-8").splitlines()
        inline = shlex.split(unit(path)["Service"].get("Environment", ""))
        assert [v for v in inline if SECRET_KEY.search(v.split("=", 1)[0])] == [], path.name
