"""The ```python blocks of README.md and docs/*.md call the API that exists.

Those blocks are sketches on the reader's data (`x_train`, `encoder`, "flowers/"), so
they cannot run as written; what drifts when the API moves is names and arguments.
Each block is parsed, every keras-transfer name it imports or reaches through an
alias (``kt.adapt``, ``kt.data.from_directory``) must exist, and every call to a
keras-transfer function or class, and to a method of an object the block built from
a keras-transfer class, must bind: no unknown keyword, no extra positional argument
(`inspect.Signature.bind_partial`). Calls on anything else (Keras, TensorFlow, the
reader's objects) are not checked.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
_FENCE = re.compile(r"```python\n(.*?)```", re.S)
FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _blocks():
    """(earlier blocks of the same file, block): a page reads top to bottom, so a
    block may use names an earlier one imported."""
    for path in FILES:
        text = path.read_text()
        earlier = ""
        for i, match in enumerate(_FENCE.finditer(text)):
            line = text[: match.start()].count("\n") + 2
            name = f"{path.relative_to(ROOT)}:{line}"
            yield pytest.param(earlier, match.group(1), id=f"{name}[{i}]")
            earlier += match.group(1)


def _check(earlier: str, code: str) -> _Checker:
    checker = _Checker()
    checker.visit(ast.parse(earlier))
    checker.problems, checker.checked = [], 0  # reported with their own block
    checker.visit(ast.parse(code))
    return checker


def _sets_attribute(cls: type, name: str) -> bool:
    """Whether a keras-transfer class in `cls`'s MRO assigns ``self.<name>``."""
    for klass in cls.__mro__:
        if not klass.__module__.startswith("keras_transfer"):
            continue
        try:
            source = inspect.getsource(klass)
        except (OSError, TypeError):
            continue
        if re.search(rf"self\.{name}\s*=", source):
            return True
    return False


class _Checker(ast.NodeVisitor):
    """Resolves keras-transfer names of one block and checks its calls."""

    def __init__(self) -> None:
        self.names: dict[str, object] = {}  # alias -> module, function or class
        self.instances: dict[str, type] = {}  # variable -> keras-transfer class
        self.problems: list[str] = []
        self.checked = 0

    # ------------------------------------------------------------------ imports
    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if alias.name.split(".")[0] == "keras_transfer":
                module = importlib.import_module(alias.name)
                self.names[alias.asname or alias.name.split(".")[0]] = (
                    module
                    if alias.asname
                    else importlib.import_module("keras_transfer")
                )

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if not (node.module or "").startswith("keras_transfer"):
            return
        module = importlib.import_module(node.module)
        for alias in node.names:
            if not hasattr(module, alias.name):
                self.problems.append(
                    f"line {node.lineno}: {node.module} has no {alias.name!r}"
                )
                continue
            self.names[alias.asname or alias.name] = getattr(module, alias.name)

    # ---------------------------------------------------------------- resolving
    def _resolve(self, node: ast.AST) -> tuple[object, bool] | None:
        """(object, is an unbound method of a class) or None when not ours."""
        if isinstance(node, ast.Name):
            if node.id in self.names:
                return self.names[node.id], False
            return None
        if not isinstance(node, ast.Attribute):
            return None
        if isinstance(node.value, ast.Name) and node.value.id in self.instances:
            cls = self.instances[node.value.id]
            if not hasattr(cls, node.attr):
                if _sets_attribute(cls, node.attr):
                    return None  # an instance attribute (e.g. Distiller.student)
                self.problems.append(
                    f"line {node.lineno}: {cls.__name__} has no {node.attr!r}"
                )
                return None
            return getattr(cls, node.attr), True
        base = self._resolve(node.value)
        if base is None or base[1]:
            return None
        obj = base[0]
        if not (inspect.ismodule(obj) or inspect.isclass(obj)):
            return None
        if not hasattr(obj, node.attr):
            if inspect.ismodule(obj):
                try:  # a subpackage not imported by its parent
                    return importlib.import_module(f"{obj.__name__}.{node.attr}"), False
                except ImportError:
                    pass
            self.problems.append(
                f"line {node.lineno}: {getattr(obj, '__name__', obj)} has no "
                f"{node.attr!r}"
            )
            return None
        return getattr(obj, node.attr), False

    # -------------------------------------------------------------------- calls
    def visit_Assign(self, node: ast.Assign) -> None:
        self.generic_visit(node)
        if isinstance(node.value, ast.Call):
            resolved = self._resolve(node.value.func)
            if resolved and inspect.isclass(resolved[0]):
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        self.instances[target.id] = resolved[0]

    def visit_Call(self, node: ast.Call) -> None:
        self.generic_visit(node)
        resolved = self._resolve(node.func)
        if resolved is None:
            return
        obj, unbound = resolved
        if not callable(obj) or inspect.ismodule(obj):
            return
        if any(isinstance(a, ast.Starred) for a in node.args) or any(
            k.arg is None for k in node.keywords
        ):
            return  # *args / **kwargs at the call: nothing to bind
        try:
            signature = inspect.signature(obj)
        except (TypeError, ValueError):
            return
        args = [None] * (len(node.args) + (1 if unbound else 0))
        kwargs = {k.arg: None for k in node.keywords}
        try:
            signature.bind_partial(*args, **kwargs)
        except TypeError as err:
            name = getattr(obj, "__qualname__", repr(obj))
            self.problems.append(f"line {node.lineno}: {name}{signature}: {err}")
        self.checked += 1


@pytest.mark.parametrize("earlier, code", list(_blocks()))
def test_docs_code_calls_the_api_that_exists(earlier, code):
    checker = _check(earlier, code)
    assert not checker.problems, "\n".join(checker.problems)


def test_every_block_reaches_keras_transfer():
    # A block whose calls all went unchecked would pass without checking anything.
    for param in _blocks():
        checker = _check(*param.values)
        assert checker.checked, f"{param.id}: no keras-transfer call was checked"


@pytest.mark.parametrize(
    "code, message",
    [
        ("import keras_transfer as kt\nkt.adaptt(1)\n", "has no 'adaptt'"),
        (
            "import keras_transfer as kt\nkt.adapt(1, 2, 3, num_classs=10)\n",
            "unexpected keyword argument 'num_classs'",
        ),
        ("from keras_transfer import build_clasifier\n", "has no 'build_clasifier'"),
        (
            "from keras_transfer import ProtoNetClassifier\n"
            "p = ProtoNetClassifier(enc)\np.fit_episodes(x, y, n_ways=5)\n",
            "unexpected keyword argument 'n_ways'",
        ),
        (
            "from keras_transfer import ProtoNetClassifier\n"
            "p = ProtoNetClassifier(enc)\np.fit_episode(x, y)\n",
            "has no 'fit_episode'",
        ),
    ],
)
def test_checker_finds_drift(code, message):
    checker = _check("", code)
    assert any(message in p for p in checker.problems), checker.problems
