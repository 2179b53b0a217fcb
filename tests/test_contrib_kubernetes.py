"""contrib/kubernetes is valid Kubernetes (checked against the API's schemas by kubernetes-validate), its
probes and ports are the hub's endpoints, its commands are the hub's, the configuration in its ConfigMap
loads, and its secrets come from a Secret it only references."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from contrib_checks import (
    CONFIG_IN_IMAGE,
    CONTRIB,
    ROOT,
    aktenhub_command,
    env_names,
    load_mounted,
    probes_answer,
    secret_literals,
)

from hub.config import Configuration

MANIFESTS = CONTRIB / "kubernetes"
KUBERNETES = "1.30.0"  # the oldest release still maintained upstream when this was written


def documents() -> list[tuple[str, dict[str, Any]]]:
    """(file name, resource) of every manifest (the kustomization is kustomize's, not the API's)."""
    found = []
    for path in sorted(MANIFESTS.glob("*.yaml")):
        if path.name != "kustomization.yaml":
            found += [(path.name, d) for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]
    return found


def resource(kind: str, name: str | None = None) -> dict[str, Any]:
    (found,) = [d for _, d in documents() if d["kind"] == kind and name in (None, d["metadata"]["name"])]
    return found


def pod_spec(kind: str) -> dict[str, Any]:
    spec: dict[str, Any] = resource(kind)["spec"]["template"]["spec"]
    return spec


def hub_config_text() -> str:
    text: str = resource("ConfigMap", "aktenhub-config")["data"]["aktenhub.yaml"]
    return text


def loaded(tmp_path: Path) -> Configuration:
    """The ConfigMap's configuration as a pod sees it: the mappings ConfigMap made from config/mappings
    (README), each ${NAME} from the Secret (placeholders here)."""
    text = hub_config_text()
    env = {name: secrets.token_hex(32) for name in env_names(text)}
    return load_mounted(tmp_path, text, {"/etc/aktenhub/mappings": ROOT / "config" / "mappings"}, env)


@pytest.mark.parametrize("name", sorted({n for n, _ in documents()}))
def test_every_manifest_is_valid_for_the_kubernetes_api(name: str) -> None:
    for file, document in documents():
        if file == name:
            kubernetes_validate.validate(document, KUBERNETES, strict=True)


def test_the_kustomization_applies_every_manifest_but_the_migrate_job() -> None:
    listed = yaml.safe_load((MANIFESTS / "kustomization.yaml").read_text(encoding="utf-8"))["resources"]
    assert sorted(listed) == sorted({n for n, _ in documents()} - {"migrate-job.yaml"})


def test_two_replicas_behind_a_service_with_a_disruption_budget() -> None:
    deployment = resource("Deployment")
    assert deployment["spec"]["replicas"] == 2
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    service = resource("Service")
    assert service["spec"]["selector"].items() <= labels.items()
    ports = {p["name"] for c in pod_spec("Deployment")["containers"] for p in c["ports"]}
    assert {p["targetPort"] for p in service["spec"]["ports"]} <= ports
    budget = resource("PodDisruptionBudget")["spec"]
    assert budget["selector"]["matchLabels"].items() <= labels.items()
    assert 1 <= budget["minAvailable"] < deployment["spec"]["replicas"]


def test_the_probes_and_the_port_are_the_hubs(tmp_path: Path) -> None:
    (container,) = pod_spec("Deployment")["containers"]
    (port,) = container["ports"]
    assert port["containerPort"] == loaded(tmp_path).hub.server.port
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": port["name"]}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": port["name"]}
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"


async def test_the_probes_answer_on_a_running_hub(hub_factory: Any) -> None:
    (container,) = pod_spec("Deployment")["containers"]
    paths = {container[p]["httpGet"]["path"] for p in ("readinessProbe", "livenessProbe", "startupProbe")}
    await probes_answer(hub_factory, paths)


@pytest.mark.parametrize(("kind", "subcommand"), [("Deployment", "run"), ("Job", "migrate")])
def test_each_pod_runs_a_command_of_the_hub_on_the_mounted_configuration(kind: str, subcommand: str) -> None:
    spec = pod_spec(kind)
    (container,) = spec["containers"]
    assert aktenhub_command([*container["command"], *container["args"]]) == (subcommand, CONFIG_IN_IMAGE)
    mounted = {m["mountPath"]: m for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in spec["volumes"]}
    config = mounted[CONFIG_IN_IMAGE]
    assert volumes[config["name"]]["configMap"]["name"] == "aktenhub-config"
    assert config["subPath"] == "aktenhub.yaml"
    assert volumes[mounted["/etc/aktenhub/mappings"]["name"]]["configMap"]["name"] == "aktenhub-mappings"
    assert container["envFrom"] == [{"secretRef": {"name": "aktenhub"}}]
    assert container["image"] == pod_spec("Deployment")["containers"][0]["image"]
    assert spec["securityContext"]["runAsUser"] == 10001  # the image's user (Dockerfile)


def test_the_configuration_in_the_config_map_loads(tmp_path: Path) -> None:
    hub = loaded(tmp_path).hub
    assert hub.roles == ("intake", "workers")
    assert hub.store.startswith("postgresql://")
    assert hub.blobs.s3 is not None  # nor a local blob directory
    assert hub.console.session_secret is not None  # one key for every pod: a login works on all


def test_no_secret_is_written_into_the_manifests() -> None:
    assert secret_literals(hub_config_text()) == []
    assert [d for _, d in documents() if d["kind"] == "Secret"] == []
    for kind in ("Deployment", "Job"):
        for container in pod_spec(kind)["containers"]:
            assert "env" not in container, "secrets come from the Secret, by envFrom"
