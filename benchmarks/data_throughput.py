"""Image folder throughput: our readers vs Keras' and vs a frozen MobileNetV3Small.

Writes `--images` random JPEGs (5,000 by default) at `--size` px (224) into a
temporary folder of 5 classes (not timed: smooth random colour fields plus noise,
~10-20 KB each like photos, not incompressible noise), then times one full pass, in
images/s, of:

- `keras_utils`: `keras.utils.image_dataset_from_directory` with its defaults
  (batch 32, shuffled, bilinear);
- `from_directory`: `keras_transfer.data.from_directory` with its defaults (the
  5,000 decoded images do not fit `CACHE_BYTES`, so it streams: parallel decode +
  prefetch);
- `cli_stream`: the CLI reader (`keras_transfer.cli._data.load_labelled`: the
  folder is over `STREAM_BYTES`, so `ImageFiles`) fed through `from_arrays`, as
  `keras-transfer train` does (listing and header check included);
- `cli_before`: the CLI reader before streaming (one `keras.utils.load_img` per
  file, serial), on the first `--before` files only;
- `model_step`: `fit` steps of `build_classifier("keras_applications:
  MobileNetV3Small", weights=None)` with the backbone frozen (BatchNorm in
  inference), on one batch of 32 of the generated images held in memory
  (repeated): the rate a data pipeline must beat;
- `fit_streamed`: `fit` of that model fed by `from_directory` for `--fit-steps`
  steps: near `model_step` when the data are not the bottleneck.

Each reader and `model_step` run `--repeats` times, interleaved; the median pass is
kept (every pass is in the JSON). Target: `from_directory` and `cli_stream` >= 1.5x
`model_step` (images/s).

Run: python benchmarks/data_throughput.py [--images 5000] [--output PATH]
Writes benchmarks/results/data_throughput.json (a smoke run: `--images 40`).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import write_results  # noqa: E402

CLASSES = 5


def make_jpegs(
    root: str, n: int, size: int, seed: int = 0, width: int | None = None
) -> None:
    """Writes `n` random JPEGs of `size` x `width` (default square) into
    `root/class_<k>/`."""
    from PIL import Image

    width = width or size
    rng = np.random.default_rng(seed)
    for k in range(CLASSES):
        os.makedirs(os.path.join(root, f"class_{k}"), exist_ok=True)
    for i in range(n):
        coarse = rng.integers(0, 256, (8, 8, 3), dtype="uint8")
        img = Image.fromarray(coarse).resize((width, size), Image.BILINEAR)
        pixels = np.asarray(img, "int16") + rng.integers(-12, 13, (size, width, 3))
        img = Image.fromarray(np.clip(pixels, 0, 255).astype("uint8"))
        img.save(os.path.join(root, f"class_{i % CLASSES}", f"{i:05d}.jpg"), quality=90)


def _rate(ds, n_expected: int) -> dict:
    """One full pass over a batched dataset: images/s."""
    start = time.perf_counter()
    n = 0
    for batch in ds:
        x = batch[0] if isinstance(batch, tuple) else batch
        n += int(x.shape[0])
    seconds = time.perf_counter() - start
    assert n == n_expected, (n, n_expected)
    return {"images": n, "seconds": seconds, "images_per_s": n / seconds}


def _median(rows: list[dict]) -> dict:
    """The row of median images/s, with every pass's images/s."""
    rates = [r["images_per_s"] for r in rows]
    middle = sorted(rows, key=lambda r: r["images_per_s"])[len(rows) // 2]
    return {**middle, "images_per_s_passes": rates}


def keras_utils(root: str, size: int, n: int) -> dict:
    from keras_transfer._backend import keras

    start = time.perf_counter()
    ds = keras.utils.image_dataset_from_directory(
        root, image_size=(size, size), verbose=False
    )
    listing = time.perf_counter() - start
    out = _rate(ds, n)
    return {
        **out,
        "seconds": out["seconds"] + listing,
        "images_per_s": n / (out["seconds"] + listing),
    }


def ours(root: str, size: int, n: int) -> dict:
    from keras_transfer.data import from_directory

    start = time.perf_counter()
    ds = from_directory(root, image_size=(size, size))
    listing = time.perf_counter() - start
    out = _rate(ds, n)
    total = out["seconds"] + listing
    return {**out, "seconds": total, "images_per_s": n / total}


def cli_stream(root: str, size: int, n: int) -> dict:
    from keras_transfer.cli import _data
    from keras_transfer.config import DataConfig
    from keras_transfer.data import from_arrays
    from keras_transfer.data.folders import ImageFiles

    saved, _data.STREAM_BYTES = _data.STREAM_BYTES, 0  # stream at any size
    try:  # (5,000 at 224 px would stream anyway)
        start = time.perf_counter()
        data = _data.load_labelled(
            DataConfig(source=root, image_size=size, validation_split=0.0)
        )
        listing = time.perf_counter() - start
    finally:
        _data.STREAM_BYTES = saved
    streamed = isinstance(data.x_train, ImageFiles)
    ds = from_arrays(data.x_train, data.y_train, batch_size=32)
    out = _rate(ds, n)
    total = out["seconds"] + listing
    return {
        **out,
        "seconds": total,
        "images_per_s": n / total,
        "listing_seconds": listing,
        "streamed": streamed,
    }


def cli_before(root: str, size: int, limit: int) -> dict:
    """The reader the CLI had before: `keras.utils.load_img` per file, serial."""
    from pathlib import Path

    from keras_transfer._backend import keras

    files = sorted(Path(root).rglob("*.jpg"))[:limit]
    start = time.perf_counter()
    x = np.stack(
        [np.asarray(keras.utils.load_img(f, target_size=(size, size))) for f in files]
    )
    seconds = time.perf_counter() - start
    return {"images": len(x), "seconds": seconds, "images_per_s": len(x) / seconds}


def _model(size: int):
    from keras_transfer import build_classifier

    return build_classifier(
        "keras_applications:MobileNetV3Small",
        CLASSES,
        weights=None,
        input_shape=(size, size, 3),
        unfreeze_depth=0,
    )


def _time_fit(model, ds, steps: int) -> float:
    model.fit(ds, epochs=1, steps_per_epoch=3, verbose=0)  # trace and warm up
    start = time.perf_counter()
    model.fit(ds, epochs=1, steps_per_epoch=steps, verbose=0)
    return time.perf_counter() - start


def model_step(root: str, size: int, steps: int) -> dict:
    """`fit` on one batch held in memory (repeated): the model's own rate. The
    batch is 32 of the generated images (random noise runs at another speed)."""
    from keras_transfer.data import from_directory

    x, y = next(iter(from_directory(root, image_size=(size, size), cache=False)))
    ds = tf_data().from_tensors((x, y)).repeat()
    seconds = _time_fit(_model(size), ds, steps)
    batch = int(x.shape[0])
    return {
        "batch": batch,
        "steps": steps,
        "seconds": seconds,
        "images_per_s": batch * steps / seconds,
    }


def tf_data():
    from keras_transfer._backend import tf

    return tf.data.Dataset


def fit_streamed(root: str, size: int, steps: int) -> dict:
    from keras_transfer.data import from_directory

    ds = from_directory(root, image_size=(size, size)).repeat()
    seconds = _time_fit(_model(size), ds, steps)
    return {"steps": steps, "seconds": seconds, "images_per_s": 32 * steps / seconds}


def run(args: argparse.Namespace) -> dict:
    import warnings

    # The random frozen backbone warns that it cannot transfer: timing only here.
    warnings.filterwarnings("ignore", message="The backbone .* has random weights")
    warnings.filterwarnings("ignore", message="`shuffle=True` was passed")
    root = tempfile.mkdtemp(prefix="kt-throughput-")
    try:
        start = time.perf_counter()
        height, width = args.file_size or (args.size, args.size)
        make_jpegs(root, args.images, height, width=width)
        made = time.perf_counter() - start
        size_mb = sum(
            os.path.getsize(os.path.join(d, f))
            for d, _, fs in os.walk(root)
            for f in fs
        ) / (1 << 20)
        readers = {
            "keras_utils": lambda: keras_utils(root, args.size, args.images),
            "from_directory": lambda: ours(root, args.size, args.images),
            "cli_stream": lambda: cli_stream(root, args.size, args.images),
        }
        # Interleaved rounds, median kept: the machine is shared, so one pass of
        # one reader can be slowed by others' jobs. Every reader finds the files
        # in the page cache (they were just written).
        passes = {name: [] for name in readers}
        for _ in range(args.repeats):
            for name, reader in readers.items():
                passes[name].append(reader())
        rows = {name: _median(p) for name, p in passes.items()}
        rows["cli_before"] = cli_before(root, args.size, min(args.before, args.images))
        rows["model_step"] = _median(
            [model_step(root, args.size, args.steps) for _ in range(args.repeats)]
        )
        if args.fit_steps:
            rows["fit_streamed"] = fit_streamed(root, args.size, args.fit_steps)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    step = rows["model_step"]["images_per_s"]
    ratios = {
        f"{k}_over_model_step": rows[k]["images_per_s"] / step
        for k in ("keras_utils", "from_directory", "cli_stream", "cli_before")
    }
    ratios["from_directory_over_keras_utils"] = (
        rows["from_directory"]["images_per_s"] / rows["keras_utils"]["images_per_s"]
    )
    ratios["cli_stream_over_cli_before"] = (
        rows["cli_stream"]["images_per_s"] / rows["cli_before"]["images_per_s"]
    )
    return {
        "config": {
            "images": args.images,
            "file_size": args.file_size or [args.size, args.size],
            "repeats": args.repeats,
            "size": args.size,
            "classes": CLASSES,
            "jpeg_mb": size_mb,
            "generation_seconds": made,
            "model": "keras_applications:MobileNetV3Small, weights=None, frozen",
            "cores": os.cpu_count(),
        },
        "rows": rows,
        "ratios": ratios,
        "target": "from_directory and cli_stream >= 1.5x model_step (images/s)",
        "target_met": min(
            ratios["from_directory_over_model_step"],
            ratios["cli_stream_over_model_step"],
        )
        >= 1.5,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--size", type=int, default=224, help="model input px")
    parser.add_argument(
        "--file-size",
        type=int,
        nargs=2,
        default=None,
        metavar=("H", "W"),
        help="size of the generated files (default: --size square; other sizes "
        "make every reader resize)",
    )
    parser.add_argument("--before", type=int, default=1000, help="cli_before files")
    parser.add_argument("--steps", type=int, default=30, help="model_step steps")
    parser.add_argument("--fit-steps", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=3, help="rounds (median)")
    parser.add_argument("--output", default=None, help="JSON path (default: results)")
    args = parser.parse_args(argv)
    results = run(args)
    for name, row in results["rows"].items():
        print(f"{name:16s} {row['images_per_s']:9.1f} images/s")
    for name, value in results["ratios"].items():
        print(f"{name:36s} {value:6.2f}")
    print("target met:", results["target_met"])
    if args.output:
        import json

        with open(args.output, "w") as f:
            json.dump(results, f, indent=2, default=float)
        print("wrote", args.output)
    else:
        print("wrote", write_results("data_throughput", results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
