"""Connector diagnostics shown to operators: `aktenhub diagnostics` and `GET /api/v1/connectors`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from click.testing import CliRunner
from pydantic import BaseModel, SecretStr

from hub.cli import main
from hub.diagnostics import MASK, redact

PASSWORD = "pw-Geheim-42"
TOKENS = {"VIEWER_TOKEN": "v-secret-1", "ENAIO_PASSWORD": PASSWORD}
SERVER = {
    "listen": "127.0.0.1:0",
    "admin_tokens": [{"name": "dashboard", "token": "${VIEWER_TOKEN}", "role": "viewer"}],
}


def connectors(tmp_path: Path) -> dict[str, Any]:
    return {
        "json": {"type": "test-json"},
        "dms": {
            "type": "enaio",
            "base_url": "http://127.0.0.1:9",
            "username": "aktenhub",
            "password": "${ENAIO_PASSWORD}",
        },
        "k3": {"type": "filedrop", "path": str(tmp_path / "import")},
    }


ROUTES = [{"name": "r", "from": "json", "to": ["dms", "k3"]}]


async def test_api_shows_every_connector_redacted_to_viewers(tmp_path: Path, hub_factory: Any) -> None:
    running = await hub_factory(connectors(tmp_path), ROUTES, env=TOKENS, server=SERVER)
    status, body = await running.get("/api/v1/connectors")
    assert status == 401
    status, body = await running.get("/api/v1/connectors", headers={"Authorization": "Bearer v-secret-1"})
    assert status == 200, body
    found = {c["name"]: c for c in body["connectors"]}
    assert set(found) == {"json", "dms", "k3"}
    assert (found["dms"]["kind"], found["dms"]["role"]) == ("enaio", "sink")
    assert found["dms"]["state"]["config"]["username"] == "aktenhub"
    assert found["k3"]["state"]["config"]["path"] == str(tmp_path / "import")
    assert PASSWORD not in json.dumps(body)
    status, body = await running.get("/api/v1/connectors?x=1", headers={"Authorization": "Bearer v-secret-1"})
    assert status == 400


def test_cli_shows_every_connector_redacted(tmp_path: Path) -> None:
    config = tmp_path / "aktenhub.yaml"
    settings = {
        "store": f"sqlite:///{tmp_path / 'journal.db'}",
        "blobs": str(tmp_path / "blobs"),
        "connectors": {k: v for k, v in connectors(tmp_path).items() if k != "json"},
        "routes": [],
    }
    config.write_text(yaml.safe_dump(settings), encoding="utf-8")
    result = CliRunner().invoke(main, ["diagnostics", "-c", str(config), "--json"], env=TOKENS)
    assert result.exit_code == 0, result.output
    found = {c["name"]: c for c in json.loads(result.stdout)}
    assert found["k3"]["state"]["config"]["folder_name"] == "{application_id}"
    assert found["dms"]["state"]["session"] == {"open": False, "logins": 0}
    assert (found["dms"]["gate"]["circuit"], found["dms"]["gate"]["failures"]) == ("closed", 0)
    assert PASSWORD not in result.output
    table = CliRunner().invoke(main, ["diagnostics", "-c", str(config)], env=TOKENS)
    assert table.exit_code == 0, table.output
    assert "dms (enaio, sink)" in table.output and "username: aktenhub" in table.output
    assert "target: circuit closed" in table.output
    assert PASSWORD not in table.output


class _Auth(BaseModel):
    client_secret: SecretStr
    token_url: str


def test_redaction_masks_secrets_a_plugin_forgot() -> None:
    state = {
        "auth": _Auth(client_secret=SecretStr("s1"), token_url="https://idp.example/token"),
        "nested": [{"api_token": "s2", "password": None}],
        "key": SecretStr("s3"),
    }
    assert redact(state) == {
        "auth": {"client_secret": MASK, "token_url": "https://idp.example/token"},
        "nested": [{"api_token": MASK, "password": None}],
        "key": MASK,
    }
