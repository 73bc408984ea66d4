"""The bundle's folders form layers: each module imports only from its own folder and the folders below it, so a
folder can be read, tested and changed knowing only what lies beneath it."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import BUNDLE

# lowest first: helpers everyone uses, then data, ..., the commands users run, the studies and benchmarks on top
LAYERS = (
    "scripts.common",
    "scripts.data",
    "scripts.transforms",
    "scripts.networks",
    "scripts.persistence",
    "scripts.metrics",
    "scripts.handlers",
    "scripts.tracking",
    "scripts.config",
    "scripts.tools",
    "scripts.studies",
    "benchmarks",
)


def layer_of(module: str) -> int | None:
    return next((i for i, layer in enumerate(LAYERS) if module == layer or module.startswith(layer + ".")), None)


def bundle_imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import of the bundle's own modules in ``path``, inside functions too."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return [(line, name) for line, name in found if layer_of(name) is not None]


def upward_imports(root: Path) -> list[str]:
    arrows = []
    for path in sorted([*(root / "scripts").rglob("*.py"), *(root / "benchmarks").rglob("*.py")]):
        module = ".".join(path.relative_to(root).with_suffix("").parts)
        own = layer_of(module)
        if own is None:  # scripts/__init__.py: the package itself
            continue
        for line, name in bundle_imports(path):
            if layer_of(name) > own:
                arrows.append(f"{path.relative_to(root)}:{line} imports {name} ({LAYERS[layer_of(name)]} is above)")
    return arrows


def test_every_folder_of_the_bundle_has_its_layer():
    folders = {f"scripts.{p.name}" for p in (BUNDLE / "scripts").iterdir() if (p / "__init__.py").is_file()}
    assert folders <= set(LAYERS), folders - set(LAYERS)


def test_no_module_imports_from_a_layer_above_its_own():
    assert upward_imports(BUNDLE) == []


def test_an_upward_import_is_found(tmp_path):
    for folder, text in {
        "scripts/common": "from scripts.data.cases import DatasetError\n",
        "scripts/data": "def f():\n    from scripts.common.flags import as_bool\n",
        "benchmarks": "import scripts.tools.launch\n",
    }.items():
        (tmp_path / folder).mkdir(parents=True)
        (tmp_path / folder / "x.py").write_text(text)
    assert upward_imports(tmp_path) == [
        "scripts/common/x.py:1 imports scripts.data.cases.DatasetError (scripts.data is above)"
    ]
