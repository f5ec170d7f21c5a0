"""Runs the ```python examples of the text docstrings (catches drift)."""

import importlib
import inspect
import re
import textwrap

import pytest
from conftest import HAS_MINILM

MODULES = [
    "keras_transfer.datasets.text",
    "keras_transfer.text.classifier",
    "keras_transfer.text.embeddings",
    "keras_transfer.text.encoder",
    "keras_transfer.text.adaptation",
]


def _examples():
    for module_name in MODULES:
        module = importlib.import_module(module_name)
        for name, obj in vars(module).items():
            if getattr(obj, "__module__", None) != module_name:
                continue
            doc = inspect.getdoc(obj) or ""
            for i, code in enumerate(re.findall(r"```python\n(.*?)```", doc, re.S)):
                marks = []
                if "minilm" in code:
                    marks.append(pytest.mark.minilm)
                    marks.append(
                        pytest.mark.skipif(not HAS_MINILM, reason="needs MiniLM")
                    )
                if ".fit(" in code:
                    # A MiniLM DANN fit costs ~1 min of CPU; the same path runs in
                    # test_text_adaptation.py (tiny BERT) and benchmarks/text.py --dann.
                    continue
                yield pytest.param(textwrap.dedent(code), id=f"{name}-{i}", marks=marks)


@pytest.mark.parametrize("code", list(_examples()))
def test_text_docstring_example_runs(code):
    exec(compile(code, "<docstring>", "exec"), {})
