"""Runs the ```python examples of the domain adaptation docstrings (catches drift)."""

import importlib
import inspect
import re
import textwrap

import pytest

MODULES = [
    "keras_transfer.layers.gradient_reversal",
    "keras_transfer.adaptation.losses",
    "keras_transfer.adaptation.model",
    "keras_transfer.adaptation.schedules",
    "keras_transfer.adaptation.weighting",
    "keras_transfer.adaptation.evaluation",
    "keras_transfer.data.pairs",
]


def _examples():
    for module_name in MODULES:
        module = importlib.import_module(module_name)
        for name, obj in vars(module).items():
            if getattr(obj, "__module__", None) != module_name:
                continue
            doc = inspect.getdoc(obj) or ""
            for i, code in enumerate(re.findall(r"```python\n(.*?)```", doc, re.S)):
                yield pytest.param(textwrap.dedent(code), id=f"{name}-{i}")


@pytest.mark.parametrize("code", list(_examples()))
def test_docstring_example_runs(code):
    exec(compile(code, "<docstring>", "exec"), {})
