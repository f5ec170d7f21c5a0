"""Scale benchmark: fit throughput per strategy, and the tuner's memory over trials.

1. Throughput (examples/s of the last of ``--epochs`` fit epochs; the first includes
   tracing) of the same tiny CNN classifier with the default strategy, with
   MirroredStrategy over 2 logical CPU devices, and with 2 local
   MultiWorkerMirrored workers on 127.0.0.1 (the same global batch everywhere).
   Each configuration runs in its own process (tests/dist_worker.py), one after
   another.
2. The RSS of a process running a RandomSearch of ``--trials`` trials with
   `TransferHyperModel`, read after each trial: flat memory means RSS after the
   last trial within 10% of RSS after trial 2.

Usage::

    python benchmarks/scale.py            # default: ~2-4 minutes on 2 CPU cores
    python benchmarks/scale.py --quick    # smaller data, fewer trials

Writes ``benchmarks/results/scale.json``. On a GPU machine, MirroredStrategy with
mixed precision vs float32 would be the next row; no GPU was available here.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORKER = ROOT / "tests" / "dist_worker.py"
RESULTS = ROOT / "benchmarks" / "results" / "scale.json"


def _free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def run_fit(config: str, args: argparse.Namespace) -> dict:
    """Runs one strategy configuration; returns worker 0's result."""
    common = [
        "--examples", str(args.examples), "--batch-size", str(args.batch_size),
        "--image-size", str(args.image_size), "--epochs", str(args.epochs),
    ]  # fmt: skip
    n = 2 if config == "multi_worker" else 1
    extra = {
        "default": ["--strategy", "default"],
        "mirrored": ["--strategy", "mirrored", "--logical-cpus", "2"],
        "multi_worker": ["--strategy", "multi_worker"],
    }[config]
    ports = _free_ports(n)
    with tempfile.TemporaryDirectory() as out:
        procs = []
        for i in range(n):
            env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
            env.update(TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
            if n > 1:
                env["TF_CONFIG"] = json.dumps(
                    {
                        "cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
                        "task": {"type": "worker", "index": i},
                    }
                )
            cmd = [sys.executable, str(WORKER), "--out", out, "--index", str(i)]
            procs.append(
                subprocess.Popen(
                    cmd + common + extra,
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                    text=True,
                )
            )
        try:
            errors = [p.communicate(timeout=args.timeout)[1] for p in procs]
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait()
        if any(p.returncode for p in procs):
            raise RuntimeError(f"{config} failed:\n{errors[0][-2000:]}")
        return json.loads((Path(out) / "result_0_classifier.json").read_text())


def _rss_mb() -> float:
    try:
        import psutil

        return psutil.Process().memory_info().rss / 2**20
    except ImportError:
        with open("/proc/self/status") as f:
            line = next(x for x in f if x.startswith("VmRSS"))
        return int(line.split()[1]) / 1024


def tuner_memory(trials: int) -> dict:
    """Runs a RandomSearch in this process and returns RSS (MB) after each trial."""
    import numpy as np

    from keras_transfer._backend import keras
    from keras_transfer.tuning import TransferHyperModel, make_tuner

    def backbone():
        inputs = keras.Input((16, 16, 3))
        h = keras.layers.Conv2D(8, 3, activation="relu")(inputs)
        h = keras.layers.Conv2D(8, 3, activation="relu")(h)
        return keras.Model(inputs, h)

    rss: list[float] = []

    class RecordRSS(keras.callbacks.Callback):
        def on_train_end(self, logs=None):
            rss.append(round(_rss_mb(), 1))

    rng = np.random.default_rng(0)
    x = rng.random((128, 16, 16, 3)).astype("float32")
    y = (x[..., 0].mean(axis=(1, 2)) > 0.5).astype("int32")
    with tempfile.TemporaryDirectory() as directory:
        tuner = make_tuner(
            "random",
            TransferHyperModel(backbone, 2),
            "val_accuracy",
            max_trials=trials,
            directory=directory,
            seed=0,
        )
        start = time.perf_counter()
        tuner.search(
            x[:96], y[:96], validation_data=(x[96:], y[96:]), epochs=1,
            batch_size=16, verbose=0, callbacks=[RecordRSS()],
        )  # fmt: skip
        seconds = time.perf_counter() - start
    growth = rss[-1] / rss[1] - 1 if len(rss) > 1 else 0.0
    # Baseline: the same build + fit + clear_session loop without KerasTuner.
    import gc

    baseline: list[float] = []
    for _ in range(trials):
        keras.backend.clear_session()
        gc.collect()
        inputs = keras.Input((16, 16, 3))
        h = keras.layers.GlobalAveragePooling2D()(backbone()(inputs))
        model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(h))
        model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
        model.fit(x[:96], y[:96], validation_data=(x[96:], y[96:]), epochs=1,
                  batch_size=16, verbose=0)  # fmt: skip
        baseline.append(round(_rss_mb(), 1))

    def slope(values: list[float]) -> float:
        return round((values[-1] - values[1]) / max(len(values) - 2, 1), 2)

    return {
        "rss_mb_after_each_trial": rss,
        "growth_last_vs_trial_2": round(growth, 4),
        "flat_within_10_percent": abs(growth) <= 0.10,
        "mb_per_trial_after_2": slope(rss),
        "plain_keras_loop_rss_mb": baseline,
        "plain_keras_loop_mb_per_iteration_after_2": slope(baseline),
        "seconds": round(seconds, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--examples", type=int, default=2048)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--timeout", type=int, default=300)
    args = parser.parse_args(argv)
    if args.quick:
        args.examples, args.epochs, args.trials = 512, 2, 4

    results: dict = {"config": vars(args), "fit": {}}
    for config in ("default", "mirrored", "multi_worker"):
        r = run_fit(config, args)
        results["fit"][config] = {
            "replicas": r["replicas"],
            "examples_per_s": round(r["examples_per_s"], 1),
            "epoch_seconds": [round(s, 3) for s in r["epoch_seconds"]],
        }
    base = results["fit"]["default"]["examples_per_s"]
    print(f"{'strategy':<14}{'replicas':>9}{'examples/s':>12}{'vs default':>12}")
    for config, r in results["fit"].items():
        r["ratio_vs_default"] = round(r["examples_per_s"] / base, 3)
        print(
            f"{config:<14}{r['replicas']:>9}{r['examples_per_s']:>12.1f}"
            f"{r['ratio_vs_default']:>12.2f}"
        )
    memory = tuner_memory(args.trials)
    results["tuner_memory"] = memory
    print(f"tuner RSS (MB) after each of {args.trials} trials:")
    print("  ", memory["rss_mb_after_each_trial"])
    print(
        f"   last vs trial 2: {memory['growth_last_vs_trial_2']:+.1%} "
        f"(flat within 10%: {memory['flat_within_10_percent']}); "
        f"{memory['mb_per_trial_after_2']} MB/trial vs "
        f"{memory['plain_keras_loop_mb_per_iteration_after_2']} MB/iteration for a "
        "plain Keras build+fit+clear_session loop"
    )
    results["gpu_mixed_precision"] = "not run: no GPU on this machine"
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2))
    print(f"wrote {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
