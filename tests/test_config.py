"""Configuration errors name the file, the key path (with line) and what was expected."""

from __future__ import annotations

import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest

from hub.config import load_config, parse_config
from hub.connectors import ConnectorConfig, Manifest, Sink
from hub.errors import ConfigError, PluginError
from hub.hookspecs import hookimpl
from hub.plugins import load_plugins
from hub.testing import fakes

PLUGINS = load_plugins([fakes], entry_points=False)
GOOD = """\
store: sqlite:///./data/journal.db
blobs: ./data/blobs
server:
  listen: "127.0.0.1:8080"
  admin_tokens:
    - name: ops
      token: ${ADMIN_TOKEN}
      role: operator
connectors:
  json:
    type: test-json
  rec:
    type: test-recording
    max_concurrency: 2
routes:
  - name: all
    from: json
    to: [rec]
"""


def problems(text: str, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(
            textwrap.dedent(text), "hub.yaml", PLUGINS, env={"ADMIN_TOKEN": "x"} if env is None else env
        )
    return info.value.problems


def test_good_configuration_is_typed() -> None:
    config = parse_config(GOOD, "hub.yaml", PLUGINS, env={"ADMIN_TOKEN": "s3cret"})
    assert config.hub.server.port == 8080
    assert config.hub.server.admin_tokens[0].token.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(config.hub)
    assert config.connectors["rec"].max_concurrency == 2
    assert config.hub.routes[0].from_ == "json"


def test_missing_environment_variable_names_place() -> None:
    assert problems(GOOD, env={}) == [
        "hub.yaml:7: server.admin_tokens[0].token: environment variable ADMIN_TOKEN is not set"
    ]


def test_unknown_key_and_wrong_type_name_place() -> None:
    text = GOOD.replace("max_concurrency: 2", "max_concurency: 2").replace(
        'listen: "127.0.0.1:8080"', "listen: localhost"
    )
    found = problems(text)
    assert any(p.startswith("hub.yaml:4: server.listen: Value error, expected HOST:PORT") for p in found)
    assert "hub.yaml:14: connectors.rec.max_concurency: unknown key" in found[-1]


def test_route_errors() -> None:
    text = GOOD.replace("to: [rec]", "to: [rec, nowhere, json]")
    assert problems(text) == [
        "hub.yaml:18: routes[0].to[1]: no connector named 'nowhere' (sinks: rec)",
        "hub.yaml:18: routes[0].to[2]: 'json' is a source, expected a sink",
    ]


def test_unknown_connector_type() -> None:
    found = problems(GOOD.replace("type: test-recording", "type: enaio-classic"))
    assert found[0].startswith("hub.yaml:13: connectors.rec.type: no plugin provides connector type")


def test_connector_setting_validated_by_its_plugin() -> None:
    found = problems(GOOD.replace("max_concurrency: 2", "fail_first: -1"))
    assert found == [
        "hub.yaml:14: connectors.rec.fail_first: Input should be greater than or equal to 0 (got -1)"
    ]


def test_invalid_yaml_and_missing_file(tmp_path: Path) -> None:
    assert problems("store: [unclosed\n")[0].startswith("hub.yaml:")
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "missing.yaml", PLUGINS)
    assert "cannot read the configuration" in info.value.problems[0]


def test_secret_from_file(tmp_path: Path) -> None:
    secret = tmp_path / "token"
    secret.write_text("from-file\n")
    config = parse_config(GOOD.replace("${ADMIN_TOKEN}", f"file:{secret}"), "hub.yaml", PLUGINS, env={})
    assert config.hub.server.admin_tokens[0].token.get_secret_value() == "from-file"


class OtherRecording(Sink[ConnectorConfig]):
    kind = "test-recording"
    manifest = Manifest(name="clash", version="1")


def test_two_connector_classes_with_one_kind_are_refused() -> None:
    clash = SimpleNamespace(aktenhub_connector_types=hookimpl(lambda: [OtherRecording]), __name__="clash")
    with pytest.raises(PluginError, match="connector kind 'test-recording' is provided twice"):
        load_plugins([fakes, clash], entry_points=False)


@pytest.mark.parametrize(
    "example", sorted((Path(__file__).parents[1] / "config").glob("*.example.yaml")), ids=lambda p: p.name
)
def test_example_configurations_are_valid(example: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import re

    monkeypatch.chdir(Path(__file__).parents[1])  # relative schema paths as `make` runs from here
    names = set(re.findall(r"\$\{([A-Z_]+)\}", example.read_text(encoding="utf-8")))
    env = {name: "example-secret-0123456789abcdef" for name in names}
    config = load_config(example, load_plugins(), env=env)
    assert config.hub.routes and config.connectors


def test_relative_connector_paths_are_relative_to_the_configuration_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A template beside the configuration is found whatever the working directory is; data stays put."""
    from hub.plugins import load_plugins as load_all

    conf = tmp_path / "etc"
    conf.mkdir()
    (conf / "aktenhub.yaml").write_text(
        textwrap.dedent(
            f"""
            store: {tmp_path / "journal.db"}
            blobs: {{path: {tmp_path / "blobs"}}}
            connectors:
              fv:
                type: importfolder
                path: import
                answers: /srv/k3/export
                manifest: {{template: mappings/k3-manifest.xml.j2}}
            routes: []
            """
        ),
        encoding="utf-8",
    )
    (conf / "mappings").mkdir()
    (conf / "mappings/k3-manifest.xml.j2").write_text("<fall/>", encoding="utf-8")
    monkeypatch.chdir(tmp_path)  # another working directory than the configuration's
    config = load_config(conf / "aktenhub.yaml", load_all())
    settings = config.connectors["fv"]
    assert getattr(settings, "path") == Path("import")  # noqa: B009  # data: the working directory's
    assert getattr(settings, "answers") == Path("/srv/k3/export")  # noqa: B009
    assert getattr(settings, "manifest").template == conf / "mappings/k3-manifest.xml.j2"  # noqa: B009


def test_file_number_assigned_by_a_target_not_in_to_is_refused() -> None:
    text = GOOD + "    file_number: {assigned_by: mikropro}\n"
    assert problems(text) == [
        "hub.yaml:19: routes[0].file_number.assigned_by: 'mikropro' is not a target of this route "
        "(to: rec): only a target the application is delivered to can assign its Aktenzeichen"
    ]
    config = parse_config(
        GOOD + "    file_number: {assigned_by: rec}\n", "hub.yaml", PLUGINS, env={"ADMIN_TOKEN": "x"}
    )
    assert config.hub.routes[0].assigner == "rec"


def test_file_number_assigned_by_a_target_refuses_a_mapping_that_draws_numbers(tmp_path: Path) -> None:
    mapping = tmp_path / "bau.yaml"
    mapping.write_text('version: 1\nfile_number: {pattern: "63-{year}-{seq:05d}"}\n', "utf-8")
    text = GOOD + f"    map: {mapping}\n    file_number: {{assigned_by: rec}}\n"
    assert problems(text) == [
        f"hub.yaml:19: routes[0].map: {mapping} has a file_number pattern, but 'rec' assigns this "
        "route's Aktenzeichen (routes[0].file_number): remove the pattern from the mapping, or the setting "
        "from the route"
    ]
