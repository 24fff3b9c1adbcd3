"""The layer rule (README, "Architecture"): imports point down only, lazy imports inside functions included."""

from __future__ import annotations

import ast
from pathlib import Path

import dist_spk

SRC = Path(dist_spk.__file__).parent
# a package (or top-level module) and its layer: a module may import its own layer and those below
LAYERS = {
    "errors": 0, "cuda": 0, "hub": 0, "optim": 0, "config": 0, "runs": 0, "data": 0, "console": 0,
    "segmentation": 1, "speaker": 1, "pipeline": 1,
    "train": 2,
    "launch": 3, "tune": 3, "demo": 3,
    "cli": 4,
}


def layer_of(module: str) -> str:
    return module.split(".")[1] if module.count(".") else "__init__"


def imports_of(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("dist_spk.")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("dist_spk"):
            found |= {f"{node.module}.{alias.name}" if node.module == "dist_spk" else node.module
                      for alias in node.names}
    return found


def test_every_import_points_down_or_sideways():
    violations = []
    for path in sorted(SRC.rglob("*.py")):
        module = "dist_spk." + ".".join(path.relative_to(SRC).with_suffix("").parts)
        here = layer_of(module)
        if here == "__init__":
            continue
        for imported in imports_of(path):
            there = layer_of(imported)
            if there in LAYERS and LAYERS[there] > LAYERS[here]:
                violations.append(f"{module} (layer {LAYERS[here]}) imports {imported} (layer {LAYERS[there]})")
    assert not violations, "\n".join(violations)


def test_every_package_has_a_layer():
    packages = {p.name for p in SRC.iterdir() if p.is_dir() and (p / "__init__.py").is_file()}
    modules = {p.stem for p in SRC.glob("*.py") if p.stem != "__init__"}
    assert packages | modules <= set(LAYERS)


def top_level_imports(path: Path) -> set[str]:
    """Modules ``path`` imports when it is loaded (statements at module level, not inside functions)."""
    found = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found |= {node.module, *(f"{node.module}.{alias.name}" for alias in node.names)}
    return found


def loads_ray(module: str, seen: set[str] | None = None) -> bool:
    """Whether importing dist_spk ``module`` imports Ray (through its module-level imports, transitively)."""
    seen = set() if seen is None else seen
    if module in seen:
        return False
    seen.add(module)
    path = SRC.joinpath(*module.split(".")[1:])
    path = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
    if not path.is_file():  # a name imported from a module, not a module
        return False
    imported = top_level_imports(path)
    return any(name == "ray" or name.startswith("ray.") for name in imported) or any(
        loads_ray(name, seen) for name in imported if name.startswith("dist_spk."))


def test_unit_tests_import_no_ray():
    """tests/unit runs without Ray: no unit test imports Ray, or a dist_spk module that loads it (lazy imports
    inside test functions included); tests of Ray-facing code live in tests/ray."""
    offenders = []
    for path in sorted(Path(__file__).parent.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([alias.name for alias in node.names] if isinstance(node, ast.Import) else
                     [node.module] if isinstance(node, ast.ImportFrom) and node.module else [])
            offenders += [f"{path.name}:{node.lineno} imports {name}" for name in names
                          if name == "ray" or name.startswith("ray.") or
                          (name.startswith("dist_spk.") and loads_ray(name))]
    assert not offenders, "\n".join(offenders)
    assert loads_ray("dist_spk.tune.driver") and not loads_ray("dist_spk.data.training_cache")  # the check sees
