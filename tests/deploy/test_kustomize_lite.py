"""The offline kustomize renderer merges like kustomize and refuses what it cannot do."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.deploy.kustomize_lite import UnsupportedFeature, render, split_image, strategic_merge

DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: app}
spec:
  template:
    spec:
      containers:
        - name: app
          image: example/app
          env:
            - {name: A, value: "1"}
            - name: B
              valueFrom: {secretKeyRef: {name: s, key: b}}
          volumeMounts:
            - {name: keys, mountPath: /keys}
      volumes:
        - name: keys
          secret: {secretName: s}
"""


def write_tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def test_strategic_merge_follows_kustomize_list_and_null_rules() -> None:
    """Keyed lists merge (patch items first), null deletes, `$patch: delete` drops items."""
    original = {
        "env": [{"name": "A", "value": "1"}, {"name": "B", "valueFrom": {"x": 1}}],
        "args": ["serve"],
        "volumes": [{"name": "keys"}, {"name": "tmp"}],
    }
    patch = {
        "env": [{"name": "B", "value": "2", "valueFrom": None}, {"name": "C", "value": "3"}],
        "args": ["worker"],
        "volumes": [{"name": "keys", "$patch": "delete"}],
    }
    merged = strategic_merge(original, patch, kind="Deployment")
    assert merged["env"] == [
        {"name": "B", "value": "2"},
        {"name": "C", "value": "3"},
        {"name": "A", "value": "1"},
    ]
    assert merged["args"] == ["worker"]
    assert merged["volumes"] == [{"name": "tmp"}]
    assert original["env"][1] == {"name": "B", "valueFrom": {"x": 1}}


def test_render_applies_patches_namespace_labels_replicas_and_images(tmp_path: Path) -> None:
    """An overlay over a base gets its patch, namespace, template labels, replicas and image."""
    root = write_tree(
        tmp_path,
        {
            "base/kustomization.yaml": "resources: [deployment.yaml]\n",
            "base/deployment.yaml": DEPLOYMENT,
            "overlay/kustomization.yaml": (
                "namespace: ns\n"
                "resources: [../base]\n"
                "labels: [{pairs: {tier: x}, includeTemplates: true}]\n"
                "replicas: [{name: app, count: 3}]\n"
                "images: [{name: example/app, newName: reg/app, newTag: '1.2.3'}]\n"
                "patches: [{path: patch.yaml}]\n"
            ),
            "overlay/patch.yaml": (
                "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: app}\n"
                "spec: {template: {spec: {volumes: [{name: keys, $patch: delete}]}}}\n"
            ),
        },
    )
    (deployment,) = render(root / "overlay")
    assert deployment["metadata"] == {"name": "app", "namespace": "ns", "labels": {"tier": "x"}}
    assert deployment["spec"]["replicas"] == 3
    assert deployment["spec"]["template"]["metadata"] == {"labels": {"tier": "x"}}
    pod = deployment["spec"]["template"]["spec"]
    assert pod["containers"][0]["image"] == "reg/app:1.2.3"
    assert "volumes" not in pod or pod["volumes"] == []


def test_top_level_delete_patch_removes_the_resource(tmp_path: Path) -> None:
    """A patch that is only `$patch: delete` removes its target."""
    root = write_tree(
        tmp_path,
        {
            "kustomization.yaml": "resources: [deployment.yaml]\npatches: [{path: p.yaml}]\n",
            "deployment.yaml": DEPLOYMENT,
            "p.yaml": "$patch: delete\n" + DEPLOYMENT,
        },
    )
    assert render(root) == []


@pytest.mark.parametrize(
    "kustomization",
    [
        "resources: [deployment.yaml]\nnamePrefix: x-\n",
        "resources: [deployment.yaml]\nlabels: [{pairs: {a: b}, includeSelectors: true}]\n",
        "resources: [deployment.yaml]\npatches: [{path: p.yaml, target: {kind: Deployment}}]\n",
        "resources: [deployment.yaml]\nconfigMapGenerator: [{name: c, literals: [a=b]}]\n",
    ],
)
def test_unsupported_kustomize_features_are_refused(tmp_path: Path, kustomization: str) -> None:
    """Fields the renderer does not implement raise instead of rendering something else."""
    root = write_tree(
        tmp_path,
        {
            "kustomization.yaml": kustomization,
            "deployment.yaml": DEPLOYMENT,
            "p.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: app}\n",
        },
    )
    with pytest.raises(UnsupportedFeature):
        render(root)


def test_multi_key_associative_lists_are_refused() -> None:
    """Patching topologySpreadConstraints (keyed by two fields) is refused, not guessed."""
    original = {"topologySpreadConstraints": [{"topologyKey": "zone"}]}
    patch = {"topologySpreadConstraints": [{"topologyKey": "host"}]}
    with pytest.raises(UnsupportedFeature):
        strategic_merge(original, patch, kind="Deployment")


@pytest.mark.parametrize(
    ("reference", "parts"),
    [
        ("pushgate", ("pushgate", None, None)),
        ("redis:7.4.2-bookworm", ("redis", "7.4.2-bookworm", None)),
        ("reg.example.com:5000/pushgate:0.1.0", ("reg.example.com:5000/pushgate", "0.1.0", None)),
        ("reg/app@sha256:abc", ("reg/app", None, "sha256:abc")),
    ],
)
def test_image_references_split_into_name_tag_and_digest(
    reference: str, parts: tuple[str, str | None, str | None]
) -> None:
    """Registry ports are not mistaken for tags."""
    assert split_image(reference) == parts
