"""Scaffolding for the CLI cluster tests: free ports, CLI processes, tiny backbone.

Not a test module. Every process runs ``keras-transfer`` (``keras_transfer.cli.main``)
with its own environment and a private ``TMPDIR`` (so a worker's temporary run
folder can be checked to be gone) and logs to ``log_<name>.txt``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from helpers import free_ports, run_processes

__all__ = ["CODE", "SIZE", "free_ports", "run_cli", "tiny_backbone"]

CODE = "import sys; from keras_transfer.cli import main; sys.exit(main(sys.argv[1:]))"
SIZE = 16


def tiny_backbone(path: Path) -> str:
    """Saves a 2-layer CNN feature extractor (16x16x3 inputs) as ``path``."""
    from keras_transfer._backend import keras

    keras.utils.set_random_seed(0)
    backbone = keras.Sequential(
        [
            keras.Input((SIZE, SIZE, 3)),
            keras.layers.Rescaling(1 / 255.0),
            keras.layers.Conv2D(8, 3, strides=2, activation="relu"),
        ],
        name="tiny_cnn",
    )
    backbone.save(path)
    return str(path)


def run_cli(
    tmp_path: Path, commands: dict[str, tuple[list[str], dict]], timeout: float
) -> dict[str, str]:
    """Starts one CLI process per name at once, waits for all; returns their logs.

    `helpers.run_processes` with ``keras-transfer`` as the program, ``tmp_path``
    as the working directory and a private ``TMPDIR`` per process.

    Args:
        tmp_path: the test's folder (working directory, logs, TMPDIRs).
        commands: name -> (CLI arguments, extra environment variables).
        timeout: seconds to wait for every process.

    Raises:
        AssertionError: a process exited with a non-zero status (its log's tail).
    """
    processes = {}
    for name, (args, extra) in commands.items():
        tmp = tmp_path / f"tmp_{name}"
        tmp.mkdir(exist_ok=True)
        processes[name] = (
            [sys.executable, "-c", CODE, *args],
            {"TMPDIR": str(tmp), **extra},
        )
    return run_processes(tmp_path, processes, timeout, cwd=tmp_path)
