"""Runs the fenced ```python Examples in the foundation's docstrings (no drift)."""

import importlib
import inspect
import re

import pytest

MODULES = [
    "keras_transfer.backbones",
    "keras_transfer.backbones.applications",
    "keras_transfer.backbones.registry",
    "keras_transfer.backbones.tfhub",
    "keras_transfer.builders",
    "keras_transfer.data.pipelines",
    "keras_transfer.datasets.digits",
    "keras_transfer.finetune",
    "keras_transfer.freezing",
    "keras_transfer.heads",
]
_FENCE = re.compile(r"```python\n(.*?)```", re.S)


def _examples():
    for module_name in MODULES:
        module = importlib.import_module(module_name)
        for name, obj in vars(module).items():
            if getattr(obj, "__module__", None) != module_name:
                continue
            if not (inspect.isfunction(obj) or inspect.isclass(obj)):
                continue
            for i, block in enumerate(_FENCE.findall(inspect.getdoc(obj) or "")):
                yield pytest.param(block, id=f"{module_name}.{name}[{i}]")


@pytest.mark.parametrize("code", list(_examples()))
def test_docstring_example_runs(code):
    exec(compile(code, "<docstring>", "exec"), {})
