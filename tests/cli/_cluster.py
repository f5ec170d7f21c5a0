"""Scaffolding for the CLI cluster tests: free ports, CLI processes, tiny backbone.

Not a test module. Every process runs ``keras-transfer`` (``keras_transfer.cli.main``)
with its own environment and a private ``TMPDIR`` (so a worker's temporary run
folder can be checked to be gone) and logs to ``log_<name>.txt``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from helpers import free_ports  # noqa: F401  (re-exported for the CLI cluster tests)

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

    Args:
        tmp_path: the test's folder (working directory, logs, TMPDIRs).
        commands: name -> (CLI arguments, extra environment variables).
        timeout: seconds to wait for every process.

    Raises:
        AssertionError: a process exited with a non-zero status (its log's tail).
    """
    procs = {}
    base = {
        k: v
        for k, v in os.environ.items()
        if k != "TF_CONFIG" and not k.startswith("KERASTUNER_")
    }
    try:
        for name, (args, extra) in commands.items():
            tmp = tmp_path / f"tmp_{name}"
            tmp.mkdir(exist_ok=True)
            env = dict(base, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
            env.update(TMPDIR=str(tmp), **extra)
            log = open(tmp_path / f"log_{name}.txt", "w")  # noqa: SIM115
            proc = subprocess.Popen(
                [sys.executable, "-c", CODE, *args],
                env=env,
                cwd=tmp_path,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            procs[name] = (proc, log)
        codes = {name: p.wait(timeout=timeout) for name, (p, _) in procs.items()}
    finally:
        for p, log in procs.values():
            if p.poll() is None:
                p.kill()
            p.wait()
            log.close()
    logs = {name: (tmp_path / f"log_{name}.txt").read_text() for name in commands}
    for name, code in codes.items():
        assert code == 0, f"{name} exited {code}:\n{logs[name][-4000:]}"
    return logs
