"""Head phase on cached features vs uncached: time ratio, head weights, accuracy.

Two frozen backbones, side by side in one process, on the 1,797 scikit-learn digits
upsampled to 96x96 (1,402 train / 395 test), head phase of `fine_tune`
(`unfreeze_depth=0`, 10 epochs, batch 32, Adam 1e-3, dropout 0.2), once with
`cache_features=False` and once with `"auto"`, from the same initial weights and the
same seed:

- `keras_applications:MobileNetV3Small` (`weights=None`: no download offline). A
  random frozen MobileNetV3Small gives near-zero features (BatchNormalization's
  moving statistics do not fit them), so its moving statistics are first set from
  256 training images (AdaBN-style, momentum 0, one pass): the features then carry
  some signal and the two heads have something to learn.
- a KerasHub backbone through the real preset path: the demo's small
  `VGGBackbone` (filters 32, 64, 128) pretrained 3 epochs on the 32x32 training
  digits with `pretrain_preset` (a random VGG's features hardly vary between
  images: the head would stay at chance), saved with its `ImageConverter`
  (pixels / 255) as a local preset (`save_to_preset`), then loaded with
  `load_backbone("keras_hub:<dir>")`; fully convolutional, so it takes 96x96.

Timing does not depend on the weights. Each row: seconds of both runs (the cached
run includes its caching pass), their ratio, max |head weight difference|, test
accuracy difference, and whether `"auto"` logged that it used the cache.

Run: python benchmarks/cached_features.py [--quick]
Writes benchmarks/results/cached_features.json (not with `--quick` or `--no-write`).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import write_results  # noqa: E402

MOBILENET = "keras_applications:MobileNetV3Small"
VGG_FILTERS = (32, 64, 128)  # keras_transfer.demo.DEMO_FILTERS
PRETRAIN_EPOCHS, PRETRAIN_EPOCHS_QUICK = 3, 1  # the VGG preset, at 32x32
CACHED_LINE = "head phase on cached features"


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


def pretrain_vgg_preset(preset_dir: str, n: int | None, epochs: int) -> str:
    """A KerasHub VGG preset pretrained on the 32x32 training digits (test unseen).

    A random VGG gives features that hardly vary between images (the head then
    stays at chance), so the backbone is first trained a few epochs with
    `keras_transfer.pretrain.pretrain_preset`, which saves it and its
    `ImageConverter` with `save_to_preset`.
    """
    from keras_transfer.pretrain import pretrain_preset

    (x, y), _ = _digits(32, n)
    pretrain_preset(
        x, y, preset_dir, filters=VGG_FILTERS, epochs=epochs, augment=False, seed=0
    )
    return preset_dir


class _CachedLog(logging.Handler):
    """Remembers whether `fine_tune` logged that it trained on cached features."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _run(mode: Any, build: Callable, init_path: str, train, test, epochs) -> dict:
    from keras_transfer import fine_tune
    from keras_transfer._backend import keras

    keras.utils.set_random_seed(0)  # the same Dropout seed generators in both runs
    model = build()
    model.load_weights(init_path)
    log = logging.getLogger("keras_transfer")
    handler, level = _CachedLog(), log.level
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    keras.utils.set_random_seed(1)
    try:
        start = time.perf_counter()
        history = fine_tune(
            model,
            train,
            head_epochs=epochs,
            fine_tune_epochs=0,
            cache_features=mode,
            verbose=0,
        )
        seconds = time.perf_counter() - start
    finally:
        log.removeHandler(handler)
        log.setLevel(level)
    accuracy = model.evaluate(*test, verbose=0, return_dict=True)["accuracy"]
    return {
        "cache_features": mode,
        "cache_used": any(CACHED_LINE in m for m in handler.messages),
        "seconds": seconds,
        "train_loss": [float(v) for v in history.history["loss"]],
        "test_accuracy": float(accuracy),
        "head": [w.copy() for w in model.get_layer("predictions").get_weights()],
    }


def compare(
    spec: str, name: str, build: Callable, train, test, epochs: int, prepare=None
) -> dict:
    """Cached vs uncached head phase of one backbone, from the same initial weights."""
    from keras_transfer._backend import keras

    keras.utils.set_random_seed(0)
    model = build()
    if prepare is not None:
        prepare(model)
    parameters = model.count_params()
    with tempfile.TemporaryDirectory() as tmp:
        init_path = os.path.join(tmp, "init.weights.h5")
        model.save_weights(init_path)
        del model
        runs = [
            _run(mode, build, init_path, train, test, epochs)
            for mode in (False, "auto")
        ]
    plain, cached = runs
    diff = max(
        float(np.abs(a - b).max()) for a, b in zip(plain["head"], cached["head"])
    )
    return {
        "spec": spec,
        "name": name,
        "parameters": parameters,
        "head_parameters": int(sum(w.size for w in plain["head"])),
        "runs": [{k: v for k, v in r.items() if k != "head"} for r in runs],
        "time_ratio_uncached_over_cached": plain["seconds"] / cached["seconds"],
        "head_weights_max_abs_diff": diff,
        "test_accuracy_diff": cached["test_accuracy"] - plain["test_accuracy"],
    }


def _print(rows: list) -> None:
    print(
        f"{'backbone':<36}{'cache':<7}{'used':<6}{'seconds':>9}{'test acc':>10}"
        f"{'last loss':>11}"
    )
    for row in rows:
        for r in row["runs"]:
            print(
                f"{row['spec']:<36}{str(r['cache_features']):<7}"
                f"{str(r['cache_used']):<6}{r['seconds']:>9.1f}"
                f"{r['test_accuracy']:>10.4f}{r['train_loss'][-1]:>11.4f}"
            )
        print(
            f"  time ratio {row['time_ratio_uncached_over_cached']:.2f}x, head "
            f"weights max |diff| {row['head_weights_max_abs_diff']:.2e}, accuracy "
            f"diff {row['test_accuracy_diff']:+.4f}"
        )


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="32 px, 200 images")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    size = 32 if args.quick else 96
    epochs = 2 if args.quick else args.epochs
    pre_epochs = PRETRAIN_EPOCHS_QUICK if args.quick else PRETRAIN_EPOCHS
    # Expected here: MobileNetV3Small has random weights (see the docstring), and
    # --quick heads may stay near chance. Both warnings would repeat every run.
    warnings.filterwarnings("ignore", message=".*has random weights.*")
    warnings.filterwarnings("ignore", message=".*no better than always predicting.*")

    from keras_transfer import build_classifier, load_backbone

    train, test = _digits(size, 200 if args.quick else None)
    shape = (size, size, 3)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        preset = pretrain_vgg_preset(
            os.path.join(tmp, "vgg_preset"),
            200 if args.quick else None,
            pre_epochs,
        )
        pretrain_seconds = time.perf_counter() - start
        hub_spec = f"keras_hub:{preset}"
        rows = [
            compare(
                MOBILENET,
                f"{MOBILENET}, weights=None, BN statistics from 256 training images",
                lambda: build_classifier(
                    MOBILENET, 10, weights=None, input_shape=shape
                ),
                train,
                test,
                epochs,
                prepare=lambda m: _calibrate_batchnorm(m, train[0][:256]),
            ),
            compare(
                "keras_hub:<local preset>",
                f"keras_hub:<local preset>, VGGBackbone filters {list(VGG_FILTERS)}, "
                f"pretrained {pre_epochs} epochs on the 32x32 training digits "
                "(outside the timing), ImageConverter scale 1/255",
                lambda: build_classifier(
                    load_backbone(hub_spec), 10, input_shape=shape
                ),
                train,
                test,
                epochs,
            ),
        ]
    payload = {
        "command": "python benchmarks/cached_features.py"
        + (" --quick" if args.quick else ""),
        "image_size": size,
        "train_examples": len(train[1]),
        "test_examples": len(test[1]),
        "epochs": epochs,
        "backbones": rows,
        "keras_hub_preset_pretrain_seconds": pretrain_seconds,
    }
    _print(rows)
    if not args.no_write and not args.quick:
        print("wrote", write_results("cached_features", payload))
    return payload


if __name__ == "__main__":
    main()
