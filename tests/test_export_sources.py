"""pycrl/export/sources.py must declare, for every registered architecture, each pycrl
file its exported graph is traced from: a file left out would let a shipped or cached
graph outlive an edit to the code it was traced from."""

import ast
import inspect
import json
import warnings
from pathlib import Path

import pytest
import torch

from pycrl.export.sources import (BACKBONE_SOURCES, MODEL_SOURCES, TRACING_SOURCES, UNTRACED_IMPORTS,
                                  graph_sources)
from pycrl.model_folder import NAMED_MODELS
from pycrl.models import BACKBONES, MODELS

PACKAGE = Path(__file__).resolve().parents[1] / "pycrl"
DECLARATIONS = {**{f"model {n}": s for n, s in MODEL_SOURCES.items()},
                **{f"backbone {n}": s for n, s in BACKBONE_SOURCES.items()},
                "tracing": TRACING_SOURCES}


def in_pycrl(registry):
    return {n: registry.get(n) for n in registry.names() if registry.get(n).__module__.startswith("pycrl.")}


def module_file(name: str):
    """pycrl/a/b.py or pycrl/a/b/__init__.py for ``pycrl.a.b``, relative to pycrl/; None otherwise."""
    parts = name.split(".")
    if parts[0] != "pycrl":
        return None
    base = PACKAGE.joinpath(*parts[1:])
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate.relative_to(PACKAGE).as_posix()
    return None


def pycrl_imports(rel: str):
    """Every pycrl module file that ``rel`` imports, at module level or inside a function."""
    package = ["pycrl", *Path(rel).parent.parts]
    found = set()
    for node in ast.walk(ast.parse((PACKAGE / rel).read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            # `from . import vit` names a module; `from .base import Detector` an attribute.
            names = [f"{module}.{a.name}" if module_file(f"{module}.{a.name}") else module for a in node.names]
        else:
            continue
        found.update(f for f in map(module_file, names) if f is not None)
    return found


def test_every_registered_architecture_is_declared_with_its_own_file():
    for registry, declared in ((MODELS, MODEL_SOURCES), (BACKBONES, BACKBONE_SOURCES)):
        registered = in_pycrl(registry)
        assert set(registered) == set(declared), f"{registry.kind}s registered vs declared"
        for name, cls in registered.items():
            own = Path(inspect.getsourcefile(cls)).resolve().relative_to(PACKAGE).as_posix()
            assert own in declared[name], f"{registry.kind} {name!r}: {own} is not declared"


@pytest.mark.parametrize("what", sorted(DECLARATIONS))
def test_declared_files_exist_and_cover_their_imports(what):
    declared = set(DECLARATIONS[what])
    for rel in sorted(declared):
        assert (PACKAGE / rel).is_file(), f"{what}: {rel} does not exist"
        missing = pycrl_imports(rel) - declared - set(UNTRACED_IMPORTS)
        assert not missing, (f"{what}: {rel} imports {sorted(missing)}; declare them in "
                             "pycrl/export/sources.py (or, if they never reach the graph, in UNTRACED_IMPORTS)")


def test_untraced_imports_exist():
    assert all((PACKAGE / rel).is_file() for rel in UNTRACED_IMPORTS)


def configs():
    """(architecture, config): every model with its defaults, and every shipped model folder."""
    out = [pytest.param(name, {}, id=f"{name}-defaults") for name in sorted(in_pycrl(MODELS))]
    for named, folder in sorted(NAMED_MODELS.items()):
        doc = json.loads((Path(folder) / "model.json").read_text(encoding="utf-8"))
        out.append(pytest.param(doc["architecture"], doc.get("config", {}), id=f"{doc['architecture']}-{named}"))
    return out


@pytest.mark.parametrize("architecture, config", configs())
def test_built_model_uses_only_keyed_classes(architecture, config):
    """Every pycrl class in a built model is defined in a file its export key covers
    (this catches a backbone a preset builds by name, e.g. the xception detector's)."""
    cls = MODELS.get(architecture)
    config = dict(config)
    if "pretrained" in inspect.signature(cls).parameters:
        config["pretrained"] = False  # no downloads: only the module tree matters here
    with torch.device("meta"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = cls(**config)
    keyed = set(graph_sources(architecture, model.pycrl_config))
    used = {module_file(type(m).__module__) for m in model.modules() if type(m).__module__.startswith("pycrl.")}
    assert not used - keyed, f"{architecture}: classes from {sorted(used - keyed)} are not in its key"


def test_export_never_imports_runtime():
    """pycrl.runtime runs graphs and imports pycrl.export; never the reverse."""
    for path in sorted((PACKAGE / "export").rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        assert not [m for m in pycrl_imports(rel) if m.startswith("runtime/")], rel
