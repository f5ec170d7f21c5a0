"""Head phase on cached features vs uncached: time ratio, head weights, accuracy.

MobileNetV3Small (keras.applications, `weights=None`: no download offline) at 96x96
on the 1,797 scikit-learn digits upsampled (1,400 train / 397 test), head phase of
`fine_tune` (`unfreeze_depth=0`, 10 epochs, batch 32, Adam 1e-3, dropout 0.2), once
with `cache_features=False` and once with `"auto"`, from the same initial weights
and the same seed, in one process. A random frozen MobileNetV3Small gives
near-zero features (BatchNormalization's moving statistics do not fit them), so its
moving statistics are first set from 256 training images (AdaBN-style, momentum 0,
one pass): the features then carry some signal and the two heads have something to
learn. Timing does not depend on the weights.

Run: python benchmarks/cached_features.py [--quick]
Writes benchmarks/results/cached_features.json.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import write_results  # noqa: E402


def _digits(size: int, n: int | None) -> tuple:
    from sklearn.datasets import load_digits

    from keras_transfer.datasets.digits import _upsample

    digits = load_digits()
    x = _upsample(digits.images, size).astype("float32")
    y = digits.target.astype("int32")
    order = np.random.default_rng(0).permutation(len(y))
    x, y = x[order], y[order]
    if n is not None:
        x, y = x[:n], y[:n]
    split = int(round(len(y) * 0.78))
    return (x[:split], y[:split]), (x[split:], y[split:])


def _calibrate_batchnorm(model, x) -> None:
    """Moving statistics of every BatchNormalization from one pass over `x`."""
    from keras_transfer._backend import keras
    from keras_transfer.backbones import find_backbone

    backbone = find_backbone(model)
    layers = [
        layer
        for layer in backbone._flatten_layers()
        if isinstance(layer, keras.layers.BatchNormalization)
    ]
    saved = [(layer, layer.momentum, layer.trainable) for layer in layers]
    for layer in layers:
        layer.momentum, layer.trainable = 0.0, True
    model(x, training=True)
    for layer, momentum, trainable in saved:
        layer.momentum, layer.trainable = momentum, trainable


def _run(mode, init_path, train, test, args) -> dict:
    from keras_transfer import build_classifier, fine_tune
    from keras_transfer._backend import keras

    keras.utils.set_random_seed(0)
    model = build_classifier(
        "keras_applications:MobileNetV3Small",
        10,
        weights=None,
        input_shape=(args.size, args.size, 3),
    )
    model.load_weights(init_path)
    keras.utils.set_random_seed(1)
    start = time.perf_counter()
    history = fine_tune(
        model,
        train,
        head_epochs=args.epochs,
        fine_tune_epochs=0,
        cache_features=mode,
        verbose=0,
    )
    seconds = time.perf_counter() - start
    accuracy = model.evaluate(*test, verbose=0, return_dict=True)["accuracy"]
    return {
        "cache_features": mode,
        "seconds": seconds,
        "train_loss": [float(v) for v in history.history["loss"]],
        "test_accuracy": float(accuracy),
        "head": [w.copy() for w in model.get_layer("predictions").get_weights()],
    }


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="32 px, 200 images")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    args.size = 32 if args.quick else 96
    args.epochs = 2 if args.quick else args.epochs

    from keras_transfer import build_classifier
    from keras_transfer._backend import keras

    train, test = _digits(args.size, 200 if args.quick else None)
    keras.utils.set_random_seed(0)
    model = build_classifier(
        "keras_applications:MobileNetV3Small",
        10,
        weights=None,
        input_shape=(args.size, args.size, 3),
    )
    _calibrate_batchnorm(model, train[0][:256])
    with tempfile.TemporaryDirectory() as tmp:
        init_path = os.path.join(tmp, "init.weights.h5")
        model.save_weights(init_path)
        del model
        runs = [_run(mode, init_path, train, test, args) for mode in (False, "auto")]
    plain, cached = runs
    diff = max(
        float(np.abs(a - b).max()) for a, b in zip(plain["head"], cached["head"])
    )
    rows = [{k: v for k, v in r.items() if k != "head"} for r in runs]
    payload = {
        "command": "python benchmarks/cached_features.py"
        + (" --quick" if args.quick else ""),
        "backbone": "keras_applications:MobileNetV3Small, weights=None, BN "
        "statistics from 256 training images",
        "image_size": args.size,
        "train_examples": len(train[1]),
        "test_examples": len(test[1]),
        "epochs": args.epochs,
        "runs": rows,
        "time_ratio_uncached_over_cached": plain["seconds"] / cached["seconds"],
        "head_weights_max_abs_diff": diff,
        "test_accuracy_diff": cached["test_accuracy"] - plain["test_accuracy"],
    }
    print(
        f"{'cache_features':<15}{'seconds':>9}{'test acc':>10}{'last loss':>11}\n"
        + "\n".join(
            f"{str(r['cache_features']):<15}{r['seconds']:>9.1f}"
            f"{r['test_accuracy']:>10.4f}{r['train_loss'][-1]:>11.4f}"
            for r in rows
        )
    )
    print(
        f"time ratio {payload['time_ratio_uncached_over_cached']:.2f}x, head "
        f"weights max |diff| {diff:.2e}"
    )
    if not args.no_write and not args.quick:
        print("wrote", write_results("cached_features", payload))
    return payload


if __name__ == "__main__":
    main()
