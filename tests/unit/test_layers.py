"""The layers contract (pyproject.toml) places every module, so nothing new escapes it.

lint-imports checks the imports between the modules a layer names; a module that no layer
names would be free to import anything and to be imported by anyone. These tests refuse such
a module until it is given a place.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import grimp

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def _importlinter() -> dict[str, Any]:
    with PYPROJECT.open("rb") as file:
        config: dict[str, Any] = tomllib.load(file)["tool"]["importlinter"]
    return config


def _contract(kind: str, name_start: str = "") -> dict[str, Any]:
    return next(
        c
        for c in _importlinter()["contracts"]
        if c["type"] == kind and c["name"].startswith(name_start)
    )


def _layers() -> list[list[str]]:
    return [re.split(r"[|:]", layer.replace(" ", "")) for layer in _contract("layers")["layers"]]


def _graph() -> Any:
    return grimp.build_graph(*_importlinter()["root_packages"])


def unplaced(graph: Any, layers: list[list[str]]) -> list[str]:
    """Modules that are neither inside a layer nor an empty package above one."""
    placed = [module for layer in layers for module in layer]

    def inside(module: str) -> bool:
        return any(module == p or module.startswith(p + ".") for p in placed)

    def empty_parent(module: str) -> bool:
        return any(p.startswith(module + ".") for p in placed) and not (
            graph.find_modules_directly_imported_by(module)
        )

    return sorted(m for m in graph.modules if not inside(m) and not empty_parent(m))


def test_every_module_has_a_layer() -> None:
    """Each module of the root packages lies in a layer of the contract."""
    assert unplaced(_graph(), _layers()) == []


def test_a_new_module_under_the_composition_root_is_refused_until_placed() -> None:
    """A module added to ``pushgate`` (or a new domain module) is in no layer: refused."""
    graph = _graph()
    graph.add_module("pushgate.newcomer")
    graph.add_module("approvals.newcomer")
    assert unplaced(graph, _layers()) == ["approvals.newcomer", "pushgate.newcomer"]


def test_the_domain_layer_is_the_domain_the_io_contract_checks() -> None:
    """Every module placed in the domain (the bottom layer) is also kept free of I/O."""
    pure = _contract("forbidden", "The domain imports no I/O")
    assert sorted(pure["source_modules"]) == sorted(_layers()[-1])
