"""Imports point down only (docs/architecture.md, "Imports point down only"): each layer's
modules, read with ``ast``, import only what the page allows, function-level imports included."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "facility_apis"

#: layer -> the package's top-level parts it must never import.
FORBIDDEN = {
    "core": {"facilities", "testing", "cli", "gateway", "skyportal", "notify", "docgen"},
    "notify": {"facilities", "testing", "cli", "gateway", "skyportal", "docgen"},
    "facilities": {"testing", "cli", "gateway", "skyportal", "docgen"},
    "skyportal": {"facilities", "testing", "cli", "gateway", "docgen"},
    "gateway": {"facilities", "testing", "cli", "docgen"},
}


def imported_parts(path: Path, root: Path = PACKAGE.parent) -> set[str]:
    """The top-level parts of ``facility_apis`` that ``path`` (under ``root``) imports: ``core``,
    ``gateway``, ... (for ``from facility_apis import cli``, ``cli``)."""
    module = path.relative_to(root).with_suffix("").parts
    package = module[:-1]
    parts: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            base = list(package[: len(package) - node.level + 1]) if node.level else []
            target = [*base, *(node.module.split(".") if node.module else [])]
            names = [[*target, alias.name] for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name.split(".") for alias in node.names]
        else:
            continue
        parts |= {name[1] for name in names if len(name) > 1 and name[0] == "facility_apis"}
    return parts


def modules_of(layer: str) -> list[Path]:
    return sorted((PACKAGE / layer).rglob("*.py"))


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_each_layer_imports_nothing_above_it(layer):
    assert modules_of(layer), f"facility_apis/{layer} has no modules"
    wrong = {
        f"{path.relative_to(PACKAGE)}: {sorted(imported_parts(path) & FORBIDDEN[layer])}"
        for path in modules_of(layer)
        if imported_parts(path) & FORBIDDEN[layer]
    }
    assert not wrong, "imports that point up: " + "; ".join(sorted(wrong))


def test_the_reader_sees_relative_and_absolute_imports(tmp_path):
    probe = tmp_path / "facility_apis" / "core" / "probe.py"
    probe.parent.mkdir(parents=True)
    probe.write_text(
        "from ..gateway import store\nfrom . import errors\n\ndef late():\n    import facility_apis.testing.network\n    from facility_apis import cli\n"
    )
    assert imported_parts(probe, tmp_path) == {"gateway", "core", "testing", "cli"}
