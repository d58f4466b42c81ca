"""A small, strict kustomize renderer for the features deploy/k8s uses, so tests run offline.

Supported kustomization fields: ``resources`` (files and kustomization directories),
``namespace``, ``labels`` (``includeSelectors: false`` only), ``images``, ``replicas`` and
``patches`` given by ``path`` (strategic merge patches naming their target by kind and
name). Anything else raises ``UnsupportedFeature`` rather than rendering something that
differs from ``kustomize build``; the tests compare both outputs when kubectl is present.

Strategic merge follows kustomize (kyaml): maps merge, ``null`` deletes a field,
``$patch: delete`` removes a list item (or, at the top, the whole resource), lists with a
Kubernetes merge key merge by that key (patch items first, then the other original items),
and every other list is replaced.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

Resource = dict[str, Any]

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
SUPPORTED_FIELDS = frozenset(
    {"apiVersion", "kind", "resources", "namespace", "labels", "images", "replicas", "patches"}
)
CLUSTER_SCOPED_KINDS = frozenset(
    {
        "APIService",
        "ClusterRole",
        "ClusterRoleBinding",
        "CustomResourceDefinition",
        "IngressClass",
        "MutatingWebhookConfiguration",
        "Namespace",
        "PersistentVolume",
        "PriorityClass",
        "StorageClass",
        "ValidatingWebhookConfiguration",
    }
)
TEMPLATE_KINDS = frozenset(
    {"Deployment", "ReplicaSet", "DaemonSet", "StatefulSet", "Job", "ReplicationController"}
)
REPLICA_KINDS = frozenset({"Deployment", "ReplicaSet", "StatefulSet", "ReplicationController"})
CONTAINER_LISTS = frozenset({"containers", "initContainers", "ephemeralContainers"})
# Merge keys of the Kubernetes lists that patches here touch (patchMergeKey in the API).
MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "imagePullSecrets": "name",
}
# Associative lists whose multi-key merge this renderer does not implement.
UNSUPPORTED_MERGE_LISTS = frozenset({"topologySpreadConstraints", "hostAliases"})


class UnsupportedFeature(ValueError):
    """The kustomization uses something this renderer does not implement."""


def render(directory: Path | str) -> list[Resource]:
    """Build the kustomization in ``directory`` and return its resources."""
    root = Path(directory)
    kustomization = _load_kustomization(root)
    resources: list[Resource] = []
    for entry in kustomization.get("resources", []):
        resources.extend(_load_resource_entry(root / entry))
    _check_unique(resources)
    for patch_entry in kustomization.get("patches", []):
        resources = _apply_patch_entry(resources, root, patch_entry)
    if "namespace" in kustomization:
        _set_namespace(resources, kustomization["namespace"])
    for label in kustomization.get("labels", []):
        _add_labels(resources, label)
    for replica in kustomization.get("replicas", []):
        _set_replicas(resources, replica)
    for image in kustomization.get("images", []):
        _set_image(resources, image)
    return resources


def resource_id(resource: Resource) -> tuple[str, str, str, str]:
    """(apiVersion, kind, namespace, name): what identifies a rendered object."""
    meta = resource.get("metadata", {})
    return (
        resource["apiVersion"],
        resource["kind"],
        meta.get("namespace", ""),
        meta["name"],
    )


def load_yaml_documents(path: Path) -> list[Resource]:
    """Every non-empty YAML document in ``path``."""
    with path.open(encoding="utf-8") as handle:
        return [doc for doc in yaml.safe_load_all(handle) if doc]


def _load_kustomization(root: Path) -> dict[str, Any]:
    for name in KUSTOMIZATION_FILES:
        candidate = root / name
        if candidate.is_file():
            docs = load_yaml_documents(candidate)
            if len(docs) != 1:
                raise UnsupportedFeature(f"{candidate}: expected one YAML document")
            kustomization: dict[str, Any] = docs[0]
            unknown = set(kustomization) - SUPPORTED_FIELDS
            if unknown:
                raise UnsupportedFeature(f"{candidate}: unsupported fields {sorted(unknown)}")
            return kustomization
    raise FileNotFoundError(f"no kustomization file in {root}")


def _load_resource_entry(path: Path) -> list[Resource]:
    if path.is_dir():
        return render(path)
    if path.is_file():
        return load_yaml_documents(path)
    raise FileNotFoundError(f"resource {path} does not exist")


def _check_unique(resources: list[Resource]) -> None:
    seen: set[tuple[str, str, str, str]] = set()
    for resource in resources:
        rid = resource_id(resource)
        if rid in seen:
            raise ValueError(f"resource {rid} is defined twice")
        seen.add(rid)


def _apply_patch_entry(
    resources: list[Resource], root: Path, entry: dict[str, Any]
) -> list[Resource]:
    if set(entry) != {"path"}:
        raise UnsupportedFeature(f"patch entry {entry}: only `path` is supported")
    result = resources
    for patch in load_yaml_documents(root / entry["path"]):
        result = _apply_patch(result, patch)
    return result


def _group(api_version: str) -> str:
    return api_version.rpartition("/")[0]


def _apply_patch(resources: list[Resource], patch: Resource) -> list[Resource]:
    name = patch["metadata"]["name"]
    matches = [
        index
        for index, resource in enumerate(resources)
        if resource["kind"] == patch["kind"]
        and _group(resource["apiVersion"]) == _group(patch["apiVersion"])
        and resource["metadata"]["name"] == name
    ]
    if len(matches) != 1:
        raise ValueError(f"patch for {patch['kind']}/{name} matches {len(matches)} resources")
    index = matches[0]
    if patch.get("$patch") == "delete":
        return resources[:index] + resources[index + 1 :]
    body = {key: value for key, value in patch.items() if key not in ("apiVersion", "kind")}
    merged = strategic_merge(resources[index], body, kind=patch["kind"])
    return [*resources[:index], merged, *resources[index + 1 :]]


def strategic_merge(original: Resource, patch: Resource, *, kind: str) -> Resource:
    """Return ``original`` with the strategic merge ``patch`` applied (inputs untouched)."""
    return _merge_map(copy.deepcopy(original), patch, path=(), kind=kind)


def _merge_map(
    original: dict[str, Any], patch: dict[str, Any], *, path: tuple[str, ...], kind: str
) -> dict[str, Any]:
    directive = patch.get("$patch")
    if directive == "replace":
        return _strip_directives({k: v for k, v in patch.items() if k != "$patch"})
    if directive is not None:
        raise UnsupportedFeature(f"$patch: {directive} at {'/'.join(path) or 'top'}")
    for key, value in patch.items():
        if key.startswith("$"):
            raise UnsupportedFeature(f"directive {key} at {'/'.join(path)}")
        here = (*path, key)
        current = original.get(key)
        if value is None:
            original.pop(key, None)
        elif isinstance(value, dict) and isinstance(current, dict):
            original[key] = _merge_map(current, value, path=here, kind=kind)
        elif isinstance(value, list) and isinstance(current, list):
            original[key] = _merge_list(current, value, path=here, kind=kind)
        else:
            original[key] = _strip_directives(value)
    return original


def _merge_key(path: tuple[str, ...], kind: str) -> str | None:
    field = path[-1]
    if field in UNSUPPORTED_MERGE_LISTS:
        raise UnsupportedFeature(f"merging the associative list {'/'.join(path)}")
    if field == "ports":
        if len(path) >= 2 and path[-2] in CONTAINER_LISTS:
            return "containerPort"
        if kind == "Service" and path == ("spec", "ports"):
            return "port"
        return None
    return MERGE_KEYS.get(field)


def _merge_list(
    original: list[Any], patch: list[Any], *, path: tuple[str, ...], kind: str
) -> list[Any]:
    key = _merge_key(path, kind)
    if key is None:
        return _strip_directives(patch)
    by_key = {item[key]: item for item in original}
    result: list[Any] = []
    patched: set[Any] = set()
    for item in patch:
        item_key = item[key]
        patched.add(item_key)
        directive = item.get("$patch")
        if directive == "delete":
            continue
        if directive is not None:
            raise UnsupportedFeature(f"$patch: {directive} in {'/'.join(path)}")
        if item_key in by_key:
            result.append(_merge_map(by_key[item_key], item, path=path, kind=kind))
        else:
            result.append(_strip_directives(item))
    result.extend(item for item in original if item[key] not in patched)
    return result


def _strip_directives(value: Any) -> Any:
    """A deep copy of new content, nulls dropped; directives there are not supported."""
    if isinstance(value, dict):
        directives = [key for key in value if key.startswith("$")]
        if directives:
            raise UnsupportedFeature(f"directives {directives} in new content")
        return {key: _strip_directives(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [_strip_directives(item) for item in value]
    return value


def _set_namespace(resources: list[Resource], namespace: str) -> None:
    for resource in resources:
        if resource["kind"] not in CLUSTER_SCOPED_KINDS:
            resource["metadata"]["namespace"] = namespace


def _add_labels(resources: list[Resource], label: dict[str, Any]) -> None:
    unknown = set(label) - {"pairs", "includeSelectors", "includeTemplates"}
    if unknown or label.get("includeSelectors", False):
        raise UnsupportedFeature(f"labels entry {label}: only pairs and includeTemplates")
    pairs = label["pairs"]
    for resource in resources:
        targets = [resource["metadata"]]
        if label.get("includeTemplates", False):
            targets.extend(_template_metadata(resource))
        for meta in targets:
            meta.setdefault("labels", {}).update(pairs)


def _template_metadata(resource: Resource) -> Iterator[dict[str, Any]]:
    kind = resource["kind"]
    spec = resource.get("spec", {})
    if kind in TEMPLATE_KINDS:
        yield spec.setdefault("template", {}).setdefault("metadata", {})
    if kind == "StatefulSet":
        for claim in spec.get("volumeClaimTemplates", []):
            yield claim.setdefault("metadata", {})
    if kind == "CronJob":
        job_template = spec.setdefault("jobTemplate", {})
        yield job_template.setdefault("metadata", {})
        pod_template = job_template.setdefault("spec", {}).setdefault("template", {})
        yield pod_template.setdefault("metadata", {})


def _set_replicas(resources: list[Resource], replica: dict[str, Any]) -> None:
    matches = [
        resource
        for resource in resources
        if resource["kind"] in REPLICA_KINDS and resource["metadata"]["name"] == replica["name"]
    ]
    if not matches:
        raise ValueError(f"replicas entry {replica} matches no workload")
    for resource in matches:
        resource["spec"]["replicas"] = replica["count"]


def split_image(reference: str) -> tuple[str, str | None, str | None]:
    """``name[:tag][@digest]`` -> (name, tag, digest)."""
    name, _, digest = reference.partition("@")
    slash = name.rfind("/")
    colon = name.rfind(":")
    tag = None
    if colon > slash:
        name, tag = name[:colon], name[colon + 1 :]
    return name, tag, digest or None


def _set_image(resources: list[Resource], image: dict[str, Any]) -> None:
    unknown = set(image) - {"name", "newName", "newTag", "digest"}
    if unknown:
        raise UnsupportedFeature(f"images entry {image}: unsupported {sorted(unknown)}")
    for container in _containers(resources):
        name, tag, digest = split_image(container["image"])
        if name != image["name"]:
            continue
        name = image.get("newName", name)
        if "newTag" in image:
            tag = str(image["newTag"])
        if "digest" in image:
            digest, tag = image["digest"], None
        reference = name + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")
        container["image"] = reference


def _containers(value: Any) -> Iterator[dict[str, Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            if key in CONTAINER_LISTS and isinstance(item, list):
                yield from (c for c in item if isinstance(c, dict) and "image" in c)
            else:
                yield from _containers(item)
    elif isinstance(value, list):
        for item in value:
            yield from _containers(item)
