"""Imports run one way: a lower module never imports a higher one.

Every module of the package is parsed (``ast``), so imports inside functions, the
"lazy" ones that hide a cycle at import time, count too; ``from keras_transfer import
name`` counts as an import of the module that defines ``name``.

The layers, lowest first. A module may import its own unit (top-level module or
subpackage), any unit of a lower layer and, where the layer says so, a sibling unit
of its own layer (never in a cycle).

1. foundation: the backend shim (and the stand-ins it registers with Keras for
   every serializable class), deprecation aliases, version, the TensorFlow-free
   config schemas, run folders, progress and report writing, saving (and the record of
   which layers are frozen it keeps), training callbacks and label checks.
2. blocks: what every model is built from: layers, heads, backbone loaders, the
   encoder (backbone -> pooled features) of adaptation and few-shot models, the
   compile recipe, mixed precision, the trainable policy, cached features of frozen backbones,
   tf.data helpers, datasets, augmentation, convolution initializers and strategy
   selection (builders build inside ``maybe_distribute``).
3. builders: backbone + head -> a compiled ``keras.Model``.
4. capabilities: one idea each, independent of one another (no sibling imports):
   domain adaptation, fine-tuning, multi-task, distillation, few-shot, pretraining,
   export.
5. applications: compose capabilities, independent of one another: text transfer
   (adaptation and export of text encoders), tuning, the demo.

The CLI (``keras_transfer.cli``) is the front door: it may import everything, and
the library (the package root included) never imports it.
"""

from __future__ import annotations

import ast
import pathlib

import pytest

import keras_transfer

PACKAGE = "keras_transfer"
ROOT = pathlib.Path(keras_transfer.__file__).parent

# (name, units, siblings may import each other)
LAYERS: tuple[tuple[str, frozenset[str], bool], ...] = (
    (
        "foundation",
        frozenset(
            {
                "_backend",
                "_lazy_registry",
                "_deprecation",
                "version",
                "config",
                "runs",
                "progress",
                "reports",
                "saving",
                "trainability",
                "callbacks",
                "labels",
            }
        ),
        True,
    ),
    (
        "blocks",
        frozenset(
            {
                "layers",
                "heads",
                "backbones",
                "encoders",
                "compiling",
                "precision",
                "freezing",
                "normalization",
                "features",
                "data",
                "datasets",
                "augment",
                "distribute",
                "initializers",
            }
        ),
        True,
    ),
    ("builders", frozenset({"builders"}), False),
    (
        "capabilities",
        frozenset(
            {
                "adaptation",
                "finetune",
                "multitask",
                "distillation",
                "fewshot",
                "pretrain",
                "export",
            }
        ),
        False,
    ),
    ("applications", frozenset({"text", "tuning", "demo"}), False),
)
CLI = "cli"

# Known violations still to fix, each with its reason. An entry that no longer
# occurs fails the test, so this list only shrinks.
KNOWN_VIOLATIONS: dict[tuple[str, str], str] = {}


def _layer_of(unit: str) -> int:
    for index, (_, units, _) in enumerate(LAYERS):
        if unit in units:
            return index
    raise AssertionError(
        f"Expected every unit of keras_transfer to be placed in a layer. Received: "
        f"unit={unit!r}: add it to LAYERS in tests/test_imports.py (and the module "
        "docstring) where it belongs."
    )


def _module_name(path: pathlib.Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _unit(module: str) -> str | None:
    """`keras_transfer.text.minilm` -> `text`; the package root -> None."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def _is_module(name: str) -> bool:
    rel = pathlib.Path(*name.split(".")[1:])
    return (ROOT / rel).with_suffix(".py").exists() or (ROOT / rel).is_dir()


def _imports(source_code: str, module: str, is_package: bool = False) -> set[str]:
    """Every keras_transfer module `source_code` imports, at any depth of its code."""
    package = module if is_package else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(source_code, module)):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith(PACKAGE))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            if source != PACKAGE and not source.startswith(PACKAGE + "."):
                continue
            for alias in node.names:
                if source == PACKAGE:
                    # The root re-exports lazily: resolve to the defining module.
                    target = keras_transfer._EXPORTS.get(alias.name)
                    found.add(target or f"{PACKAGE}.{alias.name}")
                elif _is_module(f"{source}.{alias.name}"):
                    found.add(f"{source}.{alias.name}")
                else:
                    found.add(source)
    found.discard(module)
    return found


def _graph() -> dict[str, set[str]]:
    return {
        _module_name(p): _imports(
            p.read_text(), _module_name(p), p.name == "__init__.py"
        )
        for p in sorted(ROOT.rglob("*.py"))
    }


def _violations(graph: dict[str, set[str]]) -> list[tuple[str, str, str]]:
    out = []
    for module, targets in graph.items():
        unit = _unit(module)
        if unit == CLI:
            continue
        for target in sorted(targets):
            other = _unit(target)
            if other == CLI:
                out.append((module, target, "the library imports its CLI"))
                continue
            if unit is None or other is None or other == unit:
                continue
            mine, theirs = _layer_of(unit), _layer_of(other)
            name = LAYERS[mine][0]
            if theirs > mine:
                why = f"{name} imports the higher layer {LAYERS[theirs][0]}"
                out.append((module, target, why))
            elif theirs == mine and not LAYERS[mine][2]:
                out.append((module, target, f"{name} units are independent"))
    return out


def test_every_module_parses_and_is_placed():
    graph = _graph()
    assert "keras_transfer.builders" in graph and "keras_transfer.cli" in graph
    for module in graph:
        unit = _unit(module)
        if unit not in (None, CLI):
            _layer_of(unit)


def test_imports_run_one_way():
    found = _violations(_graph())
    new = [v for v in found if (v[0], v[1]) not in KNOWN_VIOLATIONS]
    assert not new, "Lower modules import higher ones:\n" + "\n".join(
        f"  {m} -> {t} ({why})" for m, t, why in new
    )
    stale = set(KNOWN_VIOLATIONS) - {(m, t) for m, t, _ in found}
    assert not stale, f"Fixed, remove from KNOWN_VIOLATIONS: {sorted(stale)}"


def test_units_form_no_cycle():
    units: dict[str, set[str]] = {}
    for module, targets in _graph().items():
        unit = _unit(module)
        if unit is None:
            continue
        for target in targets:
            other = _unit(target)
            if (module, target) in KNOWN_VIOLATIONS:
                continue
            if other not in (None, unit):
                units.setdefault(unit, set()).add(other)

    def reach(start: str) -> set[str]:
        seen, todo = set(), [start]
        while todo:
            for nxt in units.get(todo.pop(), ()):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    cycles = sorted((a, b) for a in units for b in units[a] if a in reach(b))
    assert not cycles, f"Import cycles between units: {cycles}"


def test_root_never_reaches_the_cli():
    assert CLI not in keras_transfer._SUBMODULES
    to_cli = {
        name: module
        for name, module in keras_transfer._EXPORTS.items()
        if _unit(module) == CLI
    }
    assert not to_cli, f"keras_transfer re-exports CLI names: {to_cli}"
    for name in ("run_train", "run_adapt", "run_tune"):
        assert name not in keras_transfer.__all__
        with pytest.raises(AttributeError):
            getattr(keras_transfer, name)


@pytest.mark.parametrize(
    "statement, expected",
    [
        ("from keras_transfer.builders import recompile", "higher layer builders"),
        ("from keras_transfer import build_classifier", "higher layer builders"),
        ("from ..text import minilm", "higher layer applications"),
        ("import keras_transfer.cli", "imports its CLI"),
    ],
)
def test_checker_catches_a_lazy_upward_import(statement, expected):
    graph = _graph()
    module = "keras_transfer.backbones.tfhub"
    graph[module] = _imports(f"def f():\n    {statement}\n", module)
    reasons = [why for m, _, why in _violations(graph) if m == module]
    assert any(expected in why for why in reasons), reasons


def test_checker_catches_a_sibling_feature_import():
    graph = _graph()
    graph["keras_transfer.fewshot"] = {"keras_transfer.distillation"}
    assert [v[2] for v in _violations(graph) if v[0] == "keras_transfer.fewshot"] == [
        "capabilities units are independent"
    ]


def test_long_modules_say_why_at_their_top():
    # issue 13: no module over ~400 lines without a one-line reason at its top
    unexplained = []
    for path in sorted(pathlib.Path(keras_transfer.__file__).parent.rglob("*.py")):
        source = path.read_text()
        if source.count("\n") <= 400:
            continue
        doc = ast.get_docstring(ast.parse(source)) or ""
        if "over 400 lines on purpose" not in " ".join(doc.lower().split()):
            unexplained.append(str(path))
    assert not unexplained, unexplained
