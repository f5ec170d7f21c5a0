"""Backbones without pretrained weights: BatchNorm momentum "auto" vs the layers' own.

A BatchNormalization layer that has never been trained starts its moving statistics
at mean 0 / variance 1; at Keras' momentum 0.99, or MobileNet's 0.999, a few hundred
steps leave most of that start in them, so a model that trains well predicts badly.
The builders' `batchnorm_momentum="auto"` (`keras_transfer.normalization`) gives
such layers momentum 0.9. This script measures it side by side in one process: for
each backbone and dataset, `build_classifier(..., unfreeze_depth="all",
train_batchnorm=True)` is built and fitted twice from the same seed, once with
`batchnorm_momentum="auto"` and once with `None` (each layer's own), and evaluated
on the dataset's held-out split.

Backbones (all from random weights; no download here):
- `keras_applications:MobileNetV3Small` (`weights=None`; BatchNorm momentum 0.999),
- `keras_applications:MobileNetV2` (`alpha=0.35, weights=None`; 0.999),
- `keras_applications:EfficientNetB0` (`weights=None`; Keras' 0.99),
- `cnn_bn`: the domain-adaptation benchmark's small CNN with BatchNormalization
  (`make_encoder_bn`, Keras' 0.99), passed as a `keras.Model`, so the builder cannot
  know it is untrained but from its statistics.

Datasets: four built-in domains as plain 10-class problems, each with its own
train/test split (32x32 RGB): `digits` (upsampled scikit-learn digits), `mnistm`
(their MNIST-M-style blends), `svhnlike` (SVHN-style renders) and `fonts` (digits
rendered from packaged fonts).

Each row: per-epoch validation (= the held-out split) accuracy of both runs, final
test and training accuracy, and the largest difference between the two runs'
trained weights other than the moving statistics (training uses batch statistics,
so the momentum cannot change them; the column checks it). The `"auto"` run is then
evaluated once more after `normalization.recompute_batchnorm_statistics` over its
training images ("precise BatchNorm": the same weights, statistics averaged over
the data; `precise_*` columns), what `fine_tune(recompute_batchnorm="auto")` does.

Run: python benchmarks/batchnorm_from_scratch.py [--quick] [--seeds N]
Writes benchmarks/results/batchnorm_from_scratch.json (not with `--quick`, unless
`--output` is given).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import write_results  # noqa: E402

BACKBONES = {
    "mobilenet_v3_small": (
        "keras_applications:MobileNetV3Small",
        {"weights": None},
    ),
    "mobilenet_v2_035": (
        "keras_applications:MobileNetV2",
        {"weights": None, "alpha": 0.35},
    ),
    "efficientnet_b0": ("keras_applications:EfficientNetB0", {"weights": None}),
    "cnn_bn": ("cnn_bn", {}),
}
DATASETS = ("digits", "mnistm", "svhnlike", "fonts")
EPOCHS, BATCH_SIZE, LEARNING_RATE = 10, 32, 1e-3


def load_dataset(name: str, seed: int = 0) -> tuple:
    """``(x_train, y_train, x_test, y_test)`` of one built-in domain."""
    from keras_transfer.datasets import domain_pair

    which = {
        "digits": ("digits_mnistm", 0),
        "mnistm": ("digits_mnistm", 1),
        "svhnlike": ("digits_svhnlike", 1),
        "fonts": ("fonts_digits", 0),
    }
    if name not in which:
        raise ValueError(f"Expected a dataset in {sorted(which)}. Received: {name!r}")
    pair, side = which[name]
    split = domain_pair(pair, size=32, seed=seed)[side]
    return (
        split.x_train.astype("float32"),
        split.y_train.astype("int32"),
        split.x_test.astype("float32"),
        split.y_test.astype("int32"),
    )


def _backbone(name: str) -> tuple:
    spec, kwargs = BACKBONES[name]
    if spec == "cnn_bn":
        from domain_adaptation import make_encoder_bn

        return make_encoder_bn((32, 32, 3)), {}
    return spec, dict(kwargs)


def _weights(model: Any) -> list:
    """Every weight except BatchNorm moving statistics, in a fixed order."""
    return [
        np.asarray(v)
        for v in model.weights
        if not any(k in v.path for k in ("moving_mean", "moving_variance"))
    ]


def run_one(
    backbone: str,
    dataset: tuple,
    momentum: Any,
    seed: int,
    epochs: int,
    limit: int | None = None,
) -> tuple:
    """Builds, fits and evaluates one model; returns ``(row, weights)``."""
    from keras_transfer import build_classifier
    from keras_transfer._backend import keras
    from keras_transfer.normalization import batchnorm_layers

    x, y, xt, yt = dataset
    if limit:
        x, y, xt, yt = x[:limit], y[:limit], xt[:limit], yt[:limit]
    keras.utils.set_random_seed(seed)
    spec, kwargs = _backbone(backbone)
    model = build_classifier(
        spec,
        10,
        input_shape=(32, 32, 3),
        unfreeze_depth="all",
        train_batchnorm=True,
        learning_rate=LEARNING_RATE,
        batchnorm_momentum=momentum,
        **kwargs,
    )
    norms = batchnorm_layers(model)
    start = time.perf_counter()
    history = model.fit(
        x,
        y,
        validation_data=(xt, yt),
        epochs=epochs,
        batch_size=BATCH_SIZE,
        shuffle=True,
        verbose=0,
    )
    seconds = time.perf_counter() - start
    _, train_acc = model.evaluate(x, y, verbose=0)
    _, test_acc = model.evaluate(xt, yt, verbose=0)
    precise = {}
    if momentum == "auto":  # the same weights, statistics averaged over x
        from keras_transfer.normalization import recompute_batchnorm_statistics

        recompute_batchnorm_statistics(model, x, batch_size=BATCH_SIZE)
        _, precise_train = model.evaluate(x, y, verbose=0)
        _, precise_test = model.evaluate(xt, yt, verbose=0)
        precise = {
            "precise_train_accuracy_inference": float(precise_train),
            "precise_test_accuracy": float(precise_test),
        }
    row = {
        "momentum": "auto" if momentum == "auto" else "own",
        "batchnorm_layers": len(norms),
        "momenta": sorted({float(layer.momentum) for layer in norms}),
        "train_accuracy_inference": float(train_acc),
        "train_accuracy_fit": [float(v) for v in history.history["accuracy"]],
        "val_accuracy": [float(v) for v in history.history["val_accuracy"]],
        "test_accuracy": float(test_acc),
        "seconds": seconds,
        **precise,
    }
    return row, _weights(model)


def main(argv: list | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 epoch, 64 examples")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument(
        "--backbones", nargs="+", default=list(BACKBONES), choices=list(BACKBONES)
    )
    parser.add_argument(
        "--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS)
    )
    parser.add_argument("--output", default=None)
    args = parser.parse_args(argv)
    epochs = args.epochs or (1 if args.quick else EPOCHS)
    limit = args.limit or (64 if args.quick else None)
    rows = []
    for dname in args.datasets:
        data = load_dataset(dname)
        for bname in args.backbones:
            for seed in range(args.seeds):
                runs = {}
                for momentum in ("auto", None):
                    row, weights = run_one(bname, data, momentum, seed, epochs, limit)
                    runs[row["momentum"]] = (row, weights)
                diff = max(
                    float(np.max(np.abs(a - b))) if a.size else 0.0
                    for a, b in zip(runs["auto"][1], runs["own"][1], strict=True)
                )
                for key in ("auto", "own"):
                    row = runs[key][0]
                    row.update(
                        dataset=dname,
                        backbone=bname,
                        seed=seed,
                        n_train=int(min(len(data[0]), limit or len(data[0]))),
                        max_weight_difference=diff,
                    )
                    rows.append(row)
                    print(
                        f"{dname:9s} {bname:19s} seed {seed} {key:4s} "
                        f"test {row['test_accuracy']:.3f} "
                        f"train(inference) {row['train_accuracy_inference']:.3f} "
                        f"train(fit) {row['train_accuracy_fit'][-1]:.3f} "
                        f"momenta {row['momenta']} weight diff {diff:.2e} "
                        f"{row['seconds']:.0f} s",
                        flush=True,
                    )
    summary = summarize(rows)
    for (dname, bname), s in summary.items():
        print(
            f"{dname:9s} {bname:19s} test own {s['own']:.3f} auto {s['auto']:.3f} "
            f"({s['auto_minus_own_points']:+.1f} points) auto + precise BatchNorm "
            f"{s.get('auto_precise', float('nan')):.3f}"
        )
    payload = {
        "command": "python benchmarks/batchnorm_from_scratch.py "
        + " ".join(argv if argv is not None else sys.argv[1:]),
        "config": {
            "epochs": epochs,
            "batch_size": BATCH_SIZE,
            "learning_rate": LEARNING_RATE,
            "seeds": args.seeds,
            "limit": limit,
        },
        "rows": rows,
        "summary": {f"{d}/{b}": s for (d, b), s in summary.items()},
    }
    if args.output or not args.quick:
        print("wrote", write_results("batchnorm_from_scratch", payload, args.output))
    return 0


def summarize(rows: list) -> dict:
    """Mean test accuracy of both settings per (dataset, backbone)."""
    out: dict = {}
    for row in rows:
        key = (row["dataset"], row["backbone"])
        entry = out.setdefault(key, {"auto": [], "own": [], "precise": []})
        entry[row["momentum"]].append(row["test_accuracy"])
        if "precise_test_accuracy" in row:
            entry["precise"].append(row["precise_test_accuracy"])
    summary = {}
    for key, v in out.items():
        auto, own = float(np.mean(v["auto"])), float(np.mean(v["own"]))
        summary[key] = {
            "auto": auto,
            "own": own,
            "auto_minus_own_points": 100 * (auto - own),
        }
        if v["precise"]:
            precise = float(np.mean(v["precise"]))
            summary[key]["auto_precise"] = precise
            summary[key]["precise_minus_auto_points"] = 100 * (precise - auto)
    return summary


if __name__ == "__main__":
    raise SystemExit(main())
