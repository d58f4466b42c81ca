"""The kustomize base and overlays, rendered by the real kustomize (``kubectl kustomize``)
offline, are valid, safe Kubernetes objects."""

from __future__ import annotations

import base64
import binascii
import json
import subprocess
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
from kubernetes_validate.utils import SchemaNotFoundError

from tests.deploy.manifests import (
    DRAIN_DEFAULT_SECONDS,
    OVERLAY_NAMESPACES,
    SECRET_EXAMPLE,
    SETTINGS,
    TARGETS,
    get,
    is_pushgate_container,
    kubectl,
    kustomization_files,
    load_yaml_documents,
    objects,
    prestop_sleep_seconds,
    pushgate_workload,
    rendered,
    resource_id,
    secret_example_keys,
    secret_references,
    selects,
    workloads,
)

K8S_VERSIONS = ("1.30.0", "1.33.0")
BACKLOG_METRIC = "pushgate_job_backlog"
# Custom resources kubernetes-validate has no schema for; checked by SERVICE_MONITOR_SCHEMA.
CRD_ALLOWLIST = frozenset({("monitoring.coreos.com/v1", "ServiceMonitor")})
SERVICE_MONITOR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "ServiceMonitor"},
        "metadata": {
            "type": "object",
            "required": ["name"],
            "properties": {
                "name": {"type": "string"},
                "namespace": {"type": "string"},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            },
        },
        "spec": {
            "type": "object",
            "required": ["selector", "endpoints"],
            "additionalProperties": False,
            "properties": {
                "selector": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "matchLabels": {
                            "type": "object",
                            "additionalProperties": {"type": "string"},
                        }
                    },
                },
                "endpoints": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["port"],
                        "additionalProperties": False,
                        "properties": {
                            "port": {"type": "string"},
                            "path": {"type": "string", "pattern": "^/"},
                            "interval": {"type": "string", "pattern": "^[0-9]+(ms|s|m|h)$"},
                            "scrapeTimeout": {"type": "string", "pattern": "^[0-9]+(ms|s|m)$"},
                        },
                    },
                },
            },
        },
    },
}


def all_workloads() -> list[Any]:
    return [w for target in TARGETS for w in workloads(target)]


def pushgate_containers() -> list[tuple[Any, dict[str, Any]]]:
    return [
        (w, c) for w in all_workloads() for c in w.pod["containers"] if is_pushgate_container(c)
    ]


def test_kubectl_embeds_kustomize_v5() -> None:
    """The renderer is the real kustomize, v5 or newer, from the dev extras' kubectl."""
    out = subprocess.run(
        [kubectl(), "version", "--client", "-o", "json"],
        capture_output=True, text=True, check=True, timeout=30,
    ).stdout  # fmt: skip
    version = json.loads(out)["kustomizeVersion"]
    assert int(version.lstrip("v").split(".")[0]) >= 5, version


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("target", TARGETS)
def test_every_object_validates_against_the_kubernetes_schema(target: str, version: str) -> None:
    """Each rendered object passes the strict JSON schema of its kind (CRDs: allowlisted)."""
    for obj in rendered(target):
        kind = (obj["apiVersion"], obj["kind"])
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except SchemaNotFoundError:
            assert kind in CRD_ALLOWLIST, f"{target}: no schema for {kind}"
        except kubernetes_validate.ValidationError as exc:
            path = ".".join(str(p) for p in exc.path)
            pytest.fail(f"{target}: {resource_id(obj)} invalid at {path}: {exc.message}")
        else:
            assert kind not in CRD_ALLOWLIST


@pytest.mark.parametrize("target", TARGETS)
def test_service_monitors_are_well_formed_and_select_services_by_port_name(target: str) -> None:
    """ServiceMonitors match their structural schema and point at real Service ports."""
    services = objects(target, "Service")
    for monitor in objects(target, "ServiceMonitor"):
        jsonschema.validate(monitor, SERVICE_MONITOR_SCHEMA)
        selected = [s for s in services if selects(monitor["spec"]["selector"], labels_of(s))]
        assert selected, f"{monitor['metadata']['name']} selects no Service"
        for endpoint in monitor["spec"]["endpoints"]:
            for service in selected:
                assert endpoint["port"] in {p.get("name") for p in service["spec"]["ports"]}


def labels_of(obj: dict[str, Any]) -> dict[str, str]:
    return dict(obj["metadata"].get("labels", {}))


def test_gateway_probes_hit_healthz_and_readyz_on_the_named_http_port() -> None:
    """Startup and liveness probe /healthz, readiness probes /readyz, all on port "http"."""
    for target in TARGETS:
        gateway = pushgate_workload(target, "gateway").container("gateway")
        assert {p["name"] for p in gateway["ports"]} == {"http"}
        expected = {"startupProbe": "/healthz", "livenessProbe": "/healthz"}
        expected["readinessProbe"] = "/readyz"
        for probe, path in expected.items():
            assert gateway[probe]["httpGet"] == {"path": path, "port": "http"}, (target, probe)


def test_worker_probes_hit_healthz_and_readyz_on_the_named_metrics_port() -> None:
    """The worker's startup and liveness probes GET /healthz, its readiness probe /readyz
    (503 while Redis is unreachable), all on port "metrics"."""
    for target in TARGETS:
        worker = pushgate_workload(target, "worker").container("worker")
        for probe in ("startupProbe", "livenessProbe"):
            assert worker[probe]["httpGet"] == {"path": "/healthz", "port": "metrics"}
        assert worker["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
        workload = pushgate_workload(target, "worker")
        # The metrics listener binds PUSHGATE_HOST: loopback would fail the kubelet's probes.
        assert workload.env(worker)["PUSHGATE_HOST"] == "0.0.0.0"  # noqa: S104


def test_container_ports_match_the_port_settings() -> None:
    """The gateway's http port is PUSHGATE_PORT and the worker's metrics port its setting."""
    for target in TARGETS:
        gateway = pushgate_workload(target, "gateway")
        port = int(gateway.env(gateway.container("gateway"))["PUSHGATE_PORT"])
        assert gateway.container("gateway")["ports"][0]["containerPort"] == port == 8080
        worker = pushgate_workload(target, "worker")
        metrics = int(worker.env(worker.container("worker"))["PUSHGATE_WORKER_METRICS_PORT"])
        assert worker.container("worker")["ports"] == [
            {"name": "metrics", "containerPort": metrics, "protocol": "TCP"}
        ]


def test_pushgate_containers_keep_the_image_entrypoint_and_run_serve_or_worker() -> None:
    """No `command` override (tini + pushgate stay PID 1), args select serve or worker."""
    for workload, container in pushgate_containers():
        assert "command" not in container
        component = workload.labels["app.kubernetes.io/component"]
        assert container["args"] == [{"gateway": "serve", "worker": "worker"}[component]]


def test_every_environment_name_is_a_pushgate_setting() -> None:
    """Env entries and ConfigMap keys use only the settings names of the contract."""
    for workload, container in pushgate_containers():
        unknown = set(workload.env(container)) - SETTINGS
        assert not unknown, f"{workload.target}/{workload.name}: {sorted(unknown)}"
    for target in TARGETS:
        for config in objects(target, "ConfigMap"):
            assert set(config["data"]) <= SETTINGS, f"{target}/{config['metadata']['name']}"


def test_manifest_settings_are_fields_the_app_reads() -> None:
    """Every setting name used by the manifests is a field of pushgate's Settings."""
    settings = pytest.importorskip("pushgate.settings", reason="pushgate.settings not present")
    fields = {"PUSHGATE_" + name.upper() for name in settings.Settings.model_fields}
    used = {name for w, c in pushgate_containers() for name in w.env(c)}
    assert used <= fields, sorted(used - fields)


def test_rendered_settings_pass_the_app_validation() -> None:
    """Each container's environment (secrets as placeholders) loads as valid Settings."""
    settings = pytest.importorskip("pushgate.settings", reason="pushgate.settings not present")
    placeholders = {
        "secret-key": base64.b64encode(bytes(32)).decode(),
        "redis-url": "redis://redis.invalid:6379/0",
    }
    for workload, container in pushgate_containers():
        values = {}
        for name, value in workload.env(container).items():
            if isinstance(value, dict):
                value = placeholders[value["secretKeyRef"]["key"]]
            values[name.removeprefix("PUSHGATE_").lower()] = value
        loaded = settings.Settings(_env_file=None, **values)
        assert loaded.host == "0.0.0.0"  # noqa: S104 - the pod must listen on its IP
        assert loaded.log_format == "json"


def test_apns_key_file_comes_with_key_id_team_and_topic() -> None:
    """Wherever PUSHGATE_APNS_KEY_FILE is set, the other APNs settings it needs are too."""
    for workload, container in pushgate_containers():
        env = workload.env(container)
        if "PUSHGATE_APNS_KEY_FILE" in env:
            for name in ("PUSHGATE_APNS_KEY_ID", "PUSHGATE_APNS_TEAM_ID", "PUSHGATE_APNS_TOPIC"):
                assert env.get(name), f"{workload.target}/{workload.name}: {name}"


def test_every_secret_reference_is_defined_in_the_secret_example() -> None:
    """Each secretKeyRef and secret volume item names a Secret key of secret.example.yaml."""
    defined = secret_example_keys()
    references = [ref for target in TARGETS for ref in secret_references(target)]
    assert references
    for where, name, key in references:
        assert (name, key) in defined, f"{where} uses {name}/{key}"


def test_secret_values_stay_out_of_every_kustomization() -> None:
    """No rendered Secret, secret.example.yaml is in no kustomization, it holds placeholders."""
    for target in TARGETS:
        assert not objects(target, "Secret"), target
    for kustomization in kustomization_files():
        (fields,) = load_yaml_documents(kustomization)
        listed = fields.get("resources", []) + [p["path"] for p in fields.get("patches", [])]
        assert not [entry for entry in listed if "secret" in entry], kustomization
    example = {doc["metadata"]["name"]: doc for doc in load_yaml_documents(SECRET_EXAMPLE)}
    key = example["pushgate-secrets"]["stringData"]["secret-key"]
    with pytest.raises((binascii.Error, ValueError)):
        base64.b64decode(key, validate=True)
    for doc in example.values():
        assert any("REPLACE" in value for value in doc["stringData"].values())


def test_termination_grace_outlasts_drain_plus_prestop_sleep() -> None:
    """terminationGracePeriodSeconds > PUSHGATE_DRAIN_SECONDS + preStop sleep, every pod."""
    for workload in all_workloads():
        grace = workload.pod["terminationGracePeriodSeconds"]
        for container in workload.pod["containers"]:
            drain = float(workload.env(container).get("PUSHGATE_DRAIN_SECONDS", 0))
            if is_pushgate_container(container):
                drain = drain or DRAIN_DEFAULT_SECONDS
            assert grace > drain + prestop_sleep_seconds(container), workload.name


def test_gateway_waits_in_prestop_before_sigterm() -> None:
    """The gateway sleeps a few seconds in preStop so endpoints drop before SIGTERM."""
    for target in TARGETS:
        gateway = pushgate_workload(target, "gateway").container("gateway")
        assert 3 <= prestop_sleep_seconds(gateway) <= 15


def test_every_pod_runs_non_root_read_only_and_restricted() -> None:
    """Pods meet the restricted Pod Security Standard and have a read-only root filesystem."""
    for workload in all_workloads():
        pod, where = workload.pod, f"{workload.target}/{workload.name}"
        assert pod["securityContext"]["runAsNonRoot"] is True, where
        assert pod["securityContext"].get("runAsUser", 1) != 0, where
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", where
        assert pod["automountServiceAccountToken"] is False, where
        assert not {"hostNetwork", "hostPID", "hostIPC"} & set(pod), where
        assert all("hostPath" not in volume for volume in pod.get("volumes", [])), where
        for container in pod["containers"] + pod.get("initContainers", []):
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True, where
            assert context["allowPrivilegeEscalation"] is False, where
            assert context.get("privileged", False) is False, where
            assert context["capabilities"] == {"drop": ["ALL"]}, where
            assert context.get("runAsUser", 1) != 0, where
            assert {"requests", "limits"} <= set(container["resources"]), where


def test_every_volume_mount_has_a_volume_and_writable_tmp() -> None:
    """Mounts name defined volumes, and pushgate containers get an emptyDir at /tmp."""
    for workload in all_workloads():
        volumes = {v["name"]: v for v in workload.pod.get("volumes", [])}
        claims = {
            c["metadata"]["name"] for c in workload.obj["spec"].get("volumeClaimTemplates", [])
        }
        for container in workload.pod["containers"]:
            mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
            assert set(mounts.values()) <= set(volumes) | claims, workload.name
            if is_pushgate_container(container):
                assert "emptyDir" in volumes[mounts["/tmp"]], workload.name


def test_worker_credential_files_are_mounted_read_only_from_secrets() -> None:
    """PUSHGATE_APNS_KEY_FILE / PUSHGATE_FCM_CREDENTIALS_FILE point into read-only Secret mounts."""
    for target in ("base", "overlays/production"):
        worker = pushgate_workload(target, "worker")
        container = worker.container("worker")
        env = worker.env(container)
        volumes = {v["name"]: v for v in worker.pod["volumes"]}
        for setting in ("PUSHGATE_APNS_KEY_FILE", "PUSHGATE_FCM_CREDENTIALS_FILE"):
            directory, _, filename = env[setting].rpartition("/")
            (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == directory]
            assert mount["readOnly"] is True
            secret = volumes[mount["name"]]["secret"]
            assert filename in {item["path"] for item in secret["items"]}
        gateway = pushgate_workload(target, "gateway").container("gateway")
        assert all("secret" not in m["name"] for m in gateway["volumeMounts"])


def test_network_policies_allow_only_the_needed_traffic() -> None:
    """Every pod is selected by a policy; ingress on its own ports; egress Redis, DNS (+443)."""
    for target in TARGETS:
        policies = objects(target, "NetworkPolicy")
        for workload in workloads(target):
            selecting = [p for p in policies if selects(p["spec"]["podSelector"], workload.labels)]
            assert len(selecting) == 1, f"{target}/{workload.name}"
            spec = selecting[0]["spec"]
            assert set(spec["policyTypes"]) == {"Ingress", "Egress"}
            named = {p["name"] for c in workload.pod["containers"] for p in c["ports"]}
            for rule in spec["ingress"]:
                assert {p["port"] for p in rule["ports"]} <= named, workload.name
            egress = {
                (p["port"], p["protocol"]) for r in spec.get("egress", []) for p in r["ports"]
            }
            component = workload.labels["app.kubernetes.io/component"]
            expected = {
                "gateway": {(6379, "TCP"), (53, "UDP"), (53, "TCP")},
                "worker": {(6379, "TCP"), (53, "UDP"), (53, "TCP"), (443, "TCP")},
                "redis": set(),
            }[component]
            assert egress == expected, f"{target}/{workload.name}"


def test_production_gateway_ingress_is_limited_to_ingress_controller_and_prometheus() -> None:
    """In production only the ingress-nginx and monitoring namespaces reach the gateway."""
    policy = get("overlays/production", "NetworkPolicy", "pushgate-gateway")
    (rule,) = policy["spec"]["ingress"]
    namespaces = {
        p["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] for p in rule["from"]
    }
    assert namespaces == {"ingress-nginx", "monitoring"}


def hpa_of(target: str, component: str) -> dict[str, Any]:
    """The HorizontalPodAutoscaler that scales a pushgate Deployment."""
    name = pushgate_workload(target, component).name
    (hpa,) = [
        h
        for h in objects(target, "HorizontalPodAutoscaler")
        if h["spec"]["scaleTargetRef"]["name"] == name
    ]
    return dict(hpa)


def test_hpa_scales_the_gateway_deployment_on_cpu_and_open_websockets() -> None:
    """The HPA targets the gateway Deployment, which leaves its replica count to the HPA."""
    for target in ("base", "overlays/production"):
        hpa = hpa_of(target, "gateway")
        ref = hpa["spec"]["scaleTargetRef"]
        assert (ref["apiVersion"], ref["kind"]) == ("apps/v1", "Deployment")
        gateway = pushgate_workload(target, "gateway")
        assert ref["name"] == gateway.name
        assert "replicas" not in gateway.obj["spec"]
        metrics = {
            m["resource"]["name"] if m["type"] == "Resource" else m["pods"]["metric"]["name"]
            for m in hpa["spec"]["metrics"]
        }
        assert metrics == {"cpu", "pushgate_open_websockets"}
        assert 2 <= hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]


def test_production_workers_scale_on_their_job_backlog_and_cpu() -> None:
    """Production: an HPA owns the worker count (none in the Deployment) and scales it on the
    backlog the workers export (an External metric) and on CPU, slowly down."""
    target = "overlays/production"
    hpa = hpa_of(target, "worker")
    ref = hpa["spec"]["scaleTargetRef"]
    assert (ref["apiVersion"], ref["kind"]) == ("apps/v1", "Deployment")
    assert "replicas" not in pushgate_workload(target, "worker").obj["spec"]
    external = [m["external"] for m in hpa["spec"]["metrics"] if m["type"] == "External"]
    assert [m["metric"]["name"] for m in external] == [BACKLOG_METRIC]
    assert external[0]["target"]["type"] == "AverageValue"
    resources = [m["resource"]["name"] for m in hpa["spec"]["metrics"] if m["type"] == "Resource"]
    assert resources == ["cpu"]
    assert 2 <= hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]
    assert hpa["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"] >= 300
    for other in ("base", "overlays/dev"):
        assert pushgate_workload(other, "worker").name not in {
            h["spec"]["scaleTargetRef"]["name"] for h in objects(other, "HorizontalPodAutoscaler")
        }


def test_the_backlog_metric_is_one_the_worker_exports() -> None:
    """The HPA's metric name is the worker's Prometheus gauge of the job backlog."""
    from pusher.metrics import WorkerMetrics

    exported = {metric.name for metric in WorkerMetrics().registry.collect()}
    assert BACKLOG_METRIC in exported


def test_disruption_budgets_cover_gateway_and_worker() -> None:
    """Each pushgate Deployment has a PodDisruptionBudget that allows one eviction at a time."""
    for target in TARGETS:
        budgets = objects(target, "PodDisruptionBudget")
        for component in ("gateway", "worker"):
            labels = pushgate_workload(target, component).labels
            (budget,) = [b for b in budgets if selects(b["spec"]["selector"], labels)]
            assert budget["spec"]["maxUnavailable"] == 1


def test_services_select_pods_and_target_named_ports() -> None:
    """Every Service selects a pod template and targets a port name it declares."""
    for target in TARGETS:
        for service in objects(target, "Service"):
            pods = [w for w in workloads(target) if selects(service["spec"]["selector"], w.labels)]
            assert pods, service["metadata"]["name"]
            named = {p["name"] for w in pods for c in w.pod["containers"] for p in c["ports"]}
            assert {p["targetPort"] for p in service["spec"]["ports"]} <= named


def test_overlay_images_are_pinned_never_latest() -> None:
    """Every container image an overlay deploys has an explicit tag that is not `latest`."""
    for workload in [w for target in OVERLAY_NAMESPACES for w in workloads(target)]:
        for container in workload.pod["containers"]:
            name, _, tag = container["image"].rpartition(":")
            assert name, f"untagged image {container['image']}"
            assert "/" not in tag, f"untagged image {container['image']}"
            assert tag != "latest", container["image"]


def test_overlays_put_every_namespaced_object_in_their_namespace() -> None:
    """Overlays set one namespace (and create it with restricted Pod Security); base sets none."""
    assert all("namespace" not in obj["metadata"] for obj in rendered("base"))
    for target, namespace in OVERLAY_NAMESPACES.items():
        (ns,) = objects(target, "Namespace")
        assert ns["metadata"]["name"] == namespace
        assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
        others = [obj for obj in rendered(target) if obj["kind"] != "Namespace"]
        assert {obj["metadata"]["namespace"] for obj in others} == {namespace}


def test_dev_overlay_runs_one_of_each_against_an_aof_redis_statefulset() -> None:
    """Dev: one gateway, one worker, no HPA, and a pinned non-root Redis 7.4 with AOF on a PVC."""
    target = "overlays/dev"
    assert not objects(target, "HorizontalPodAutoscaler")
    for component in ("gateway", "worker"):
        workload = pushgate_workload(target, component)
        assert workload.obj["spec"]["replicas"] == 1
        env = workload.env(workload.container(component))
        assert env["PUSHGATE_REDIS_URL"] == "redis://pushgate-redis:6379/0"
        assert env["PUSHGATE_REDIS_CLUSTER"] == "false"
    redis = get(target, "StatefulSet", "pushgate-redis")
    (container,) = redis["spec"]["template"]["spec"]["containers"]
    assert container["image"].startswith("redis:7.4.")
    args = container["args"]
    assert args[args.index("--appendonly") + 1] == "yes"
    assert args[args.index("--maxmemory-policy") + 1] == "noeviction"
    (claim,) = redis["spec"]["volumeClaimTemplates"]
    assert {"name": claim["metadata"]["name"], "mountPath": "/data"} in container["volumeMounts"]
    service = get(target, "Service", redis["spec"]["serviceName"])
    assert service["spec"]["ports"][0]["port"] == 6379


def test_production_overlay_scales_out_against_external_redis_cluster() -> None:
    """Production: at least 3 gateways and 2 workers, Redis Cluster URL from a Secret, no Redis."""
    target = "overlays/production"
    assert hpa_of(target, "gateway")["spec"]["minReplicas"] == 3
    assert hpa_of(target, "worker")["spec"]["minReplicas"] == 2
    assert not objects(target, "StatefulSet")
    for component in ("gateway", "worker"):
        workload = pushgate_workload(target, component)
        env = workload.env(workload.container(component))
        assert env["PUSHGATE_REDIS_CLUSTER"] == "true"
        ref = env["PUSHGATE_REDIS_URL"]["secretKeyRef"]
        assert (ref["name"], ref["key"]) == ("pushgate-secrets", "redis-url")
    image = pushgate_workload(target, "gateway").container("gateway")["image"]
    assert image == "registry.example.com/pushgate:0.1.0"


def test_production_ingress_terminates_tls_and_keeps_websockets_open() -> None:
    """The Ingress has TLS, hour-long proxy timeouts, and routes only the public API."""
    (ingress,) = objects("overlays/production", "Ingress")
    annotations = ingress["metadata"]["annotations"]
    for timeout in ("proxy-read-timeout", "proxy-send-timeout"):
        assert int(annotations[f"nginx.ingress.kubernetes.io/{timeout}"]) >= 3600
    spec = ingress["spec"]
    assert spec["ingressClassName"] == "nginx"
    hosts = {rule["host"] for rule in spec["rules"]}
    assert hosts <= {host for tls in spec["tls"] for host in tls["hosts"]}
    service = get("overlays/production", "Service", "pushgate-gateway")
    port_names = {p["name"] for p in service["spec"]["ports"]}
    for rule in spec["rules"]:
        for path in rule["http"]["paths"]:
            backend = path["backend"]["service"]
            assert backend["name"] == "pushgate-gateway"
            assert backend["port"]["name"] in port_names
            for private in ("/metrics", "/healthz", "/readyz"):
                assert not private.startswith(path["path"]), path["path"]
