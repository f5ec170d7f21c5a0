"""Benchmark the three ways to turn a Keras 3 model into a TFLite file.

Routes, each given the same model:

- ``export_tflite``: keras-transfer's route, ``keras.export.ExportArchive`` ->
  SavedModel -> ``tf.lite.TFLiteConverter.from_saved_model`` (the inference path,
  training-only layers left out; the conversion step alone is timed, without
  keras-transfer's own verification and manifest);
- ``from_keras_model``: ``tf.lite.TFLiteConverter.from_keras_model(model)``;
- ``litert``: ``model.export(path, format="litert")`` (Keras >= 3.13), with its
  defaults (it allows TF Select ops unless told otherwise).

Models (offline, ``weights=None``, trained here briefly on the digits domains):
``cnn`` (small CNN, 32 px), ``mobilenet32`` (keras.applications MobileNetV3Small at
32 px, the recipe of ``benchmarks/export.py``), ``augmented`` (the small CNN behind
RandomFlip / RandomRotation / GaussianNoise) and ``dann`` (the inference model of a
DANN on a small CNN encoder, untrained: a conversion check only).

For each model, route and quantization (``float32``; ``int8``: full integer,
calibrated on 64 training inputs), it records whether the route converts, the file
size, the conversion time (seconds, the faster of two runs in one process), a
sha256 prefix of the file (equal prefixes: the routes wrote the same bytes), and whether the file
verifies: top-1 agreement and max |diff| of LiteRT against Keras
(``training=False``) on 100 held-out test inputs. Float32 passes at agreement
>= 0.999, int8 at >= 0.99 (the thresholds of ``export_tflite``).

Results go to ``benchmarks/results/tflite_routes.json``.

Usage:
    python benchmarks/tflite_routes.py            # all rows (~2 minutes on 2 cores)
    python benchmarks/tflite_routes.py --models cnn
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import write_results  # noqa: E402

from keras_transfer._backend import keras, tf  # noqa: E402
from keras_transfer.datasets import digits_domains  # noqa: E402
from keras_transfer.export import _verify  # noqa: E402
from keras_transfer.export._serving import prepare, write_saved_model  # noqa: E402

MODELS = ("cnn", "mobilenet32", "augmented", "dann")
ROUTES = ("export_tflite", "from_keras_model", "litert")
QUANTIZATIONS = ("float32", "int8")
THRESHOLDS = {"float32": 0.999, "int8": 0.99}
CALIBRATION = 64
VERIFY = 100
REPEATS = 2


def _cnn(inputs: Any) -> Any:
    x = keras.layers.Rescaling(1 / 255.0)(inputs)
    x = keras.layers.Conv2D(16, 3, activation="relu")(x)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Conv2D(32, 3, activation="relu")(x)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Flatten()(x)
    return keras.layers.Dense(10, activation="softmax")(x)


def build(name: str, data: tuple) -> tuple[Any, Any, str]:
    """Returns ``(model given to export_tflite, keras.Model for the others, note)``."""
    x_train, y_train = data[0], data[1]
    keras.utils.set_random_seed(0)
    inputs = keras.Input((32, 32, 3))
    if name == "cnn":
        model = keras.Model(inputs, _cnn(inputs), name="cnn")
    elif name == "augmented":
        x = keras.layers.RandomFlip("horizontal")(inputs)
        x = keras.layers.RandomRotation(0.05)(x)
        x = keras.layers.GaussianNoise(0.5)(x)
        model = keras.Model(inputs, _cnn(x), name="augmented")
    elif name == "mobilenet32":
        from export import mobilenet  # the recipe of benchmarks/export.py

        model = mobilenet(32)
    elif name == "dann":
        from keras_transfer.adaptation import DANN

        encoder = keras.Sequential(
            [
                keras.Input((32, 32, 3)),
                keras.layers.Rescaling(1 / 255.0),
                keras.layers.Conv2D(16, 3, activation="relu"),
                keras.layers.GlobalAveragePooling2D(),
            ]
        )
        dann = DANN(encoder, num_classes=10)
        return dann, dann.inference_model(), "untrained DANN: conversion check"
    else:
        raise ValueError(f"Expected a model in {MODELS}. Received: {name!r}")
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    epochs = 8
    model.fit(x_train, y_train, epochs=epochs, batch_size=32, verbose=0)
    return model, model, f"trained {epochs} epochs on {len(x_train)} source digits"


def _configure(converter: Any, quantization: str, calibration: np.ndarray) -> Any:
    """The same int8 settings for every route that exposes its converter."""
    if quantization == "int8":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = _gen(calibration)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    return converter


def _gen(calibration: np.ndarray) -> Callable:
    def gen():
        for i in range(len(calibration)):
            yield [calibration[i : i + 1].astype("float32")]

    return gen


def convert(route: str, given: Any, model: Any, q: str, cal: np.ndarray) -> bytes:
    """Converts with one route; returns the file's bytes."""
    if route == "export_tflite":
        served = prepare(given)
        with tempfile.TemporaryDirectory() as sm_dir:
            write_saved_model(served, sm_dir, extra_outputs=False)
            converter = tf.lite.TFLiteConverter.from_saved_model(sm_dir)
            return _configure(converter, q, cal).convert()
    if route == "from_keras_model":
        converter = tf.lite.TFLiteConverter.from_keras_model(model)
        return _configure(converter, q, cal).convert()
    kwargs: dict[str, Any] = {}
    if q == "int8":
        kwargs = {
            "optimizations": [tf.lite.Optimize.DEFAULT],
            "representative_dataset": _gen(cal),
            "target_spec": {"supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]},
        }
    with tempfile.TemporaryDirectory() as folder:
        path = str(Path(folder) / "model.tflite")
        model.export(path, format="litert", verbose=False, **kwargs)
        return Path(path).read_bytes()


def measure(route: str, given: Any, model: Any, q: str, data: tuple) -> dict:
    """One row: converts?, size, time, agreement and max |diff| against Keras."""
    cal, x_test = data[0][:CALIBRATION], data[2][:VERIFY]
    row: dict[str, Any] = {"route": route, "quantization": q}
    times = []
    try:
        for _ in range(REPEATS):  # the first run of a route also pays for tracing
            start = time.perf_counter()
            content = convert(route, given, model, q, cal)
            times.append(time.perf_counter() - start)
    except Exception as err:  # a route that fails is a result, not a crash
        row.update(converts=False, error=f"{type(err).__name__}: {str(err)[:300]}")
        return row
    row.update(
        converts=True,
        seconds=round(min(times), 2),
        size_kib=round(len(content) / 1024, 1),
        sha256=hashlib.sha256(content).hexdigest()[:16],
    )
    try:
        interpreter, _ = _verify.make_interpreter(model_content=content)
    except Exception as err:
        row.update(verifies=False, error=f"{type(err).__name__}: {str(err)[:300]}")
        return row
    detail = interpreter.get_input_details()[0]
    row["input"] = {
        "shape_signature": [int(d) for d in detail["shape_signature"]],
        "dtype": np.dtype(detail["dtype"]).name,
    }
    expected = np.asarray(model.predict_on_batch(x_test.astype("float32")))
    actual = _verify.run_interpreter(interpreter, x_test.astype("float32"))
    agreement = float(np.mean(expected.argmax(-1) == actual.argmax(-1)))
    row.update(
        agreement=agreement,
        max_abs_diff=float(np.abs(expected - actual).max()),
        verifies=agreement >= THRESHOLDS[q],
    )
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS))
    args = parser.parse_args(argv)
    source, _ = digits_domains(size=32)
    data = (source.x_train, source.y_train, source.x_test, source.y_test)
    rows = []
    for name in args.models.split(","):
        given, model, note = build(name, data)
        for q in QUANTIZATIONS:
            for route in ROUTES:
                row = {"model": name, "params": int(model.count_params()), "note": note}
                row.update(measure(route, given, model, q, data))
                rows.append(row)
                print(
                    f"{name:12s} {q:8s} {route:17s} converts={row['converts']} "
                    f"verifies={row.get('verifies')} size={row.get('size_kib')} KiB "
                    f"agreement={row.get('agreement')} t={row.get('seconds')} s",
                    flush=True,
                )
    path = write_results(
        "tflite_routes",
        {
            "command": "python benchmarks/tflite_routes.py",
            "versions": {"keras": keras.__version__, "tensorflow": tf.__version__},
            "calibration_samples": CALIBRATION,
            "verify_samples": VERIFY,
            "thresholds": THRESHOLDS,
            "rows": rows,
        },
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
