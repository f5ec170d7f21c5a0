"""`adapt` on image folders: streamed (`image_files`) vs read into memory first.

Writes `--images` JPEGs per domain (2,000 by default) at `--size` px (224) into a
temporary folder (not timed): a labelled source of 5 classes (each class its own
colour tint on smooth random colour fields plus noise) and an unlabelled target (the
same kind of images, brighter and with less contrast, in one folder). Then, each in
its own process so that peak memory is the run's own, `--repeats` times interleaved:

- `memory`: `x = np.asarray(image_files(...))` for both domains (every image
  decoded into one uint8 array, as the CLI did for `adapt` before stop 46), then
  `keras_transfer.adapt(...)` on the arrays;
- `stream`: `keras_transfer.adapt(...)` on the `ImageFiles` themselves (decoded
  batch by batch while training and predicting).

Both adapt with `--method` (MCC by default: one candidate; `auto` trains five) for
`--epochs` epochs, batch 32, a small CNN (strided convolutions, so the step is
cheap next to the decode), seed 0. Reported per run: wall time of the decode plus
`adapt`, the process's peak resident memory (`ru_maxrss`) and its resident memory
just before `adapt`, held-out source accuracy and target accuracy (the target's
labels are kept aside by this script, never given to `adapt`). The decoded size of
both domains is in the JSON for scale.

With `--pipeline dataset` the inputs are instead what most Keras scripts hand
over: `keras.utils.image_dataset_from_directory(...)` datasets (float32 batches,
4 bytes a pixel), given to `adapt` as `tf.data.Dataset`s, in two modes:

- `memory`: `keras_transfer.data.spill.SPILL_BYTES` raised past the data, so
  `adapt` reads both datasets into arrays (what it did with every dataset before
  stop 48);
- `spill`: the default: past 512 MiB of inputs a dataset is written to a
  temporary file as it is read and streamed from there (`SpilledArray`).

Claims (written before the first run, docs/performance.md "adapt streams image
folders"): S1 the streamed run's peak memory is below the in-memory run's by at
least 0.8x the decoded size of both domains; S2 its time is at most 1.5x the
in-memory run's (decode included); S3 its held-out source and target accuracies
are within 5 points of the in-memory run's (the two see the data in another order).

Claims for `--pipeline dataset` (written before its first run, stop 48,
docs/performance.md "adapt spills large datasets to disk"): D1 the spilled run's
peak memory is below the in-memory run's by at least 0.8x the float32 size of both
domains; D2 its time is at most 1.5x the in-memory run's; D3 its accuracies are
within 5 points of the in-memory run's (the same batches in the same order reach
training in both, so they are expected to be equal).

Run: python benchmarks/adapt_streaming.py [--images 2000] [--size 224]
[--pipeline files|dataset]
Writes benchmarks/results/adapt_streaming.json (a smoke run: `--images 30
--size 32 --epochs 2 --in-process`).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import command_line, write_results  # noqa: E402

CLASSES = 5
TINTS = np.array(
    [[60, 0, 0], [0, 60, 0], [0, 0, 60], [60, 60, 0], [0, 60, 60]], "int16"
)


def make_domain(root: str, n: int, size: int, target: bool, seed: int) -> np.ndarray:
    """Writes `n` JPEGs; class folders for the source, one flat folder for the
    target. Returns the labels (the target's stay with this script)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    labels = np.arange(n) % CLASSES
    for i, c in enumerate(labels):
        coarse = rng.integers(0, 160, (8, 8, 3), dtype="uint8")
        img = Image.fromarray(coarse).resize((size, size), Image.BILINEAR)
        pixels = np.asarray(img, "int16") + TINTS[c] + rng.integers(-12, 13, (1, 1, 3))
        if target:
            pixels = pixels // 2 + 100
        folder = root if target else os.path.join(root, f"class_{c}")
        os.makedirs(folder, exist_ok=True)
        image = Image.fromarray(np.clip(pixels, 0, 255).astype("uint8"))
        image.save(os.path.join(folder, f"{i:05d}.jpg"), quality=90)
    return labels


def _rss_mib() -> float:
    """The process's peak resident memory so far, MiB (Linux: ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _current_rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


MODES = {"files": ("stream", "memory"), "dataset": ("spill", "memory")}


def _datasets(root: str, size: int) -> tuple:
    """Both domains as `image_dataset_from_directory` datasets (float32)."""
    from keras_transfer._backend import keras

    read = keras.utils.image_dataset_from_directory
    common = {"image_size": (size, size), "batch_size": 32, "shuffle": False}
    source = read(os.path.join(root, "source"), **common)
    target = read(os.path.join(root, "target"), labels=None, **common)
    return source, target, source.class_names


def run_one(
    mode: str,
    root: str,
    size: int,
    method: str,
    epochs: int,
    pipeline: str = "files",
) -> dict:
    """One adapt run (`mode` of `MODES[pipeline]`); its measurements."""
    from keras_transfer.data import spill

    limit = spill.SPILL_BYTES
    try:
        return _adapt_once(mode, root, size, method, epochs, pipeline)
    finally:  # an in-process smoke run leaves the library as it found it
        spill.SPILL_BYTES = limit


def _adapt_once(
    mode: str, root: str, size: int, method: str, epochs: int, pipeline: str
) -> dict:
    import keras_transfer as kt
    from keras_transfer._backend import keras
    from keras_transfer.data import image_files, spill

    y_target = np.load(os.path.join(root, "target_labels.npy"))
    started = time.perf_counter()
    if pipeline == "dataset":
        xs, xt, names = _datasets(root, size)
        if mode == "memory":  # adapt before stop 48: every dataset into arrays
            spill.SPILL_BYTES = 1 << 62
        source = xs
    else:
        xs, ys, names = image_files(os.path.join(root, "source"), (size, size))
        xt = image_files(os.path.join(root, "target"), (size, size), labels=None)
        if mode == "memory":
            xs, xt = np.asarray(xs), np.asarray(xt)
        source = (xs, ys)
    rss_before = _current_rss_mib()
    keras.utils.set_random_seed(0)
    encoder = keras.Sequential(
        [
            keras.Input((size, size, 3)),
            keras.layers.Rescaling(1 / 255.0),
            keras.layers.Conv2D(16, 5, strides=4, padding="same", activation="relu"),
            keras.layers.MaxPooling2D(4, padding="same"),
            keras.layers.Conv2D(32, 3, padding="same", activation="relu"),
            keras.layers.GlobalAveragePooling2D(),
        ]
    )
    result = kt.adapt(
        encoder,
        source,
        xt,
        num_classes=len(names),
        method=method,
        epochs=epochs,
        batch_size=32,
        seed=0,
        verbose=0,
    )
    seconds = time.perf_counter() - started
    from keras_transfer.adaptation.predict import predict_eagerly

    predicted = np.asarray(predict_eagerly(result.model, xt)).argmax(-1)
    return {
        "mode": mode,
        "pipeline": pipeline,
        "seconds": seconds,
        "peak_rss_mib": _rss_mib(),
        "rss_before_adapt_mib": rss_before,
        "source_accuracy": float(result.source_accuracy),
        "target_accuracy": float(np.mean(predicted == y_target)),
        "method": result.method,
    }


def _child(mode: str, args: argparse.Namespace, root: str) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), "--child", mode, "--root", root]
    cmd += ["--size", str(args.size), "--method", args.method]
    cmd += ["--epochs", str(args.epochs), "--pipeline", args.pipeline]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"{mode} run failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run(args: argparse.Namespace) -> dict:
    root = tempfile.mkdtemp(prefix="adapt_streaming_")
    try:
        make_domain(os.path.join(root, "source"), args.images, args.size, False, 0)
        labels = make_domain(
            os.path.join(root, "target"), args.images, args.size, True, 1
        )
        np.save(os.path.join(root, "target_labels.npy"), labels)
        runs = []
        for _ in range(args.repeats):
            for mode in MODES[args.pipeline]:
                if args.in_process:
                    row = run_one(
                        mode, root, args.size, args.method, args.epochs, args.pipeline
                    )
                else:
                    row = _child(mode, args, root)
                print(json.dumps(row), flush=True)
                runs.append(row)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    lazy_mode = MODES[args.pipeline][0]
    best = {
        mode: min((r for r in runs if r["mode"] == mode), key=lambda r: r["seconds"])
        for mode in MODES[args.pipeline]
    }
    pixel_bytes = 4 if args.pipeline == "dataset" else 1  # float32 / uint8
    decoded_mib = 2 * args.images * args.size * args.size * 3 * pixel_bytes / 2**20
    lazy, memory = best[lazy_mode], best["memory"]
    saved = memory["peak_rss_mib"] - lazy["peak_rss_mib"]
    prefix = "D" if args.pipeline == "dataset" else "S"
    claims = {
        f"{prefix}1_peak_memory_saved_at_least_0.8x_decoded": bool(
            saved >= 0.8 * decoded_mib
        ),
        f"{prefix}2_time_at_most_1.5x": bool(
            lazy["seconds"] <= 1.5 * memory["seconds"]
        ),
        f"{prefix}3_accuracies_within_5_points": bool(
            abs(lazy["source_accuracy"] - memory["source_accuracy"]) <= 0.05
            and abs(lazy["target_accuracy"] - memory["target_accuracy"]) <= 0.05
        ),
    }
    summary = {
        "decoded_mib_both_domains": decoded_mib,
        "peak_rss_saved_mib": saved,
        f"time_ratio_{lazy_mode}_over_memory": lazy["seconds"] / memory["seconds"],
        "claims": claims,
    }
    print(
        f"decoded {decoded_mib:.0f} MiB; peak RSS {lazy_mode} "
        f"{lazy['peak_rss_mib']:.0f} vs memory {memory['peak_rss_mib']:.0f} MiB "
        f"(saved {saved:.0f}); time {lazy['seconds']:.1f} vs "
        f"{memory['seconds']:.1f} s "
        f"({lazy['seconds'] / memory['seconds']:.2f}x); claims {claims}",
        flush=True,
    )
    return {
        "config": {
            "images_per_domain": args.images,
            "size": args.size,
            "method": args.method,
            "epochs": args.epochs,
            "repeats": args.repeats,
            "in_process": args.in_process,
            "pipeline": args.pipeline,
        },
        "runs": runs,
        "best": best,
        "summary": summary,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--method", default="mcc")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument(
        "--in-process",
        action="store_true",
        help="run both modes in this process (a smoke test: memory not comparable)",
    )
    parser.add_argument(
        "--pipeline",
        choices=tuple(MODES),
        default="files",
        help="files: image_files vs arrays; dataset: tf.data spilled vs in memory",
    )
    parser.add_argument("--output", default=None)
    parser.add_argument(
        "--child", choices=("memory", "stream", "spill"), help=argparse.SUPPRESS
    )
    parser.add_argument("--root", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        row = run_one(
            args.child, args.root, args.size, args.method, args.epochs, args.pipeline
        )
        print(json.dumps(row), flush=True)
        return 0
    payload = run(args)
    payload["command"] = command_line("adapt_streaming.py", argv)
    name = "adapt_streaming" + ("_dataset" if args.pipeline == "dataset" else "")
    print("wrote", write_results(name, payload, args.output))
    return 0


if __name__ == "__main__":
    sys.exit(main())
