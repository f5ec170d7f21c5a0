"""Benchmark TFLite export: size, latency and agreement for every quantization.

Two models, trained a little on the digits source domain: the small demo-style CNN and
keras.applications MobileNetV3Small (weights=None). For float32, float16, dynamic and
int8 it exports with `keras_transfer.export.export_tflite` (verified against Keras on
the held-out digits) and reports, side by side in the same run:

- file size and the ratio float32 / this,
- single-example latency of the LiteRT interpreter vs Keras ``predict_on_batch``,
- top-1 agreement with Keras, max |diff|, Keras and TFLite accuracy.

Results go to ``benchmarks/results/export.json``.

Usage:
    python benchmarks/export.py            # default (~8 minutes on 2 shared cores)
    python benchmarks/export.py --quick    # smoke run
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

from keras_transfer._backend import keras
from keras_transfer.datasets import digits_domains
from keras_transfer.export import export_tflite

QUANTIZATIONS = (None, "float16", "dynamic", "int8")


def small_cnn(size: int) -> keras.Model:
    inputs = keras.Input((size, size, 3))
    x = keras.layers.RandomTranslation(0.05, 0.05)(inputs)
    x = keras.layers.Rescaling(1 / 255.0)(x)
    for filters in (16, 32):
        x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
        x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(10, activation="softmax")(x)
    return keras.Model(inputs, outputs, name="digits_cnn")


def mobilenet(size: int) -> keras.Model:
    inputs = keras.Input((size, size, 3))
    x = keras.layers.RandomTranslation(0.05, 0.05)(inputs)
    backbone = keras.applications.MobileNetV3Small(
        input_shape=(size, size, 3),
        weights=None,
        include_top=False,
        include_preprocessing=True,  # Rescaling to [-1, 1] inside the model
        pooling="avg",
    )
    for layer in backbone.layers:  # 0.999 barely moves in a short from-scratch run
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = 0.9
    outputs = keras.layers.Dense(10, activation="softmax")(backbone(x))
    return keras.Model(inputs, outputs, name="mobilenet_v3_small")


def run_model(model, data, epochs: int, repeats: int, out_dir: Path) -> dict:
    x_train, y_train, x_test, y_test = data
    model.compile(
        keras.optimizers.Adam(2e-3),
        "sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    start = time.perf_counter()
    model.fit(x_train, y_train, epochs=epochs, batch_size=32, verbose=0)
    train_s = time.perf_counter() - start
    rows = {}
    for q in QUANTIZATIONS:
        name = q or "float32"
        report = export_tflite(
            model,
            out_dir / f"{model.name}-{name}",
            quantization=q,
            representative_data=x_train[:300],
            verify_data=(x_test, y_test),
            min_agreement=0.0,  # measure, never refuse, in the benchmark
            latency_repeats=repeats,
            num_threads=1,
        )
        rows[name] = {
            "size_bytes": report.size_bytes,
            "latency_ms": report.latency_ms,
            "keras_latency_ms": report.keras_latency_ms,
            "latency_ratio": report.latency_ratio,
            "top1_agreement": report.top1_agreement,
            "max_abs_diff": report.max_abs_diff,
            "keras_accuracy": report.keras_accuracy,
            "tflite_accuracy": report.export_accuracy,
        }
    base = rows["float32"]["size_bytes"]
    for row in rows.values():
        row["size_ratio_vs_float32"] = base / row["size_bytes"]
        row["accuracy_drop_points"] = 100 * (
            row["keras_accuracy"] - row["tflite_accuracy"]
        )
    return {"params": model.count_params(), "train_s": train_s, "formats": rows}


def print_table(name: str, result: dict) -> None:
    print(f"\n{name}: {result['params']:,} params, trained {result['train_s']:.1f}s")
    print(
        f"{'format':9} {'KiB':>8} {'x smaller':>9} {'LiteRT ms':>9} {'Keras ms':>9}"
        f" {'ratio':>6} {'agree':>6} {'max|d|':>8} {'acc K':>6} {'acc T':>6}"
    )
    for fmt, r in result["formats"].items():
        print(
            f"{fmt:9} {r['size_bytes'] / 1024:8.1f} {r['size_ratio_vs_float32']:9.2f}"
            f" {r['latency_ms']:9.3f} {r['keras_latency_ms']:9.3f}"
            f" {r['latency_ratio']:6.3f} {r['top1_agreement']:6.3f}"
            f" {r['max_abs_diff']:8.4f} {r['keras_accuracy']:6.3f}"
            f" {r['tflite_accuracy']:6.3f}"
        )


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny smoke run")
    parser.add_argument("--output", default="benchmarks/results/export.json")
    parser.add_argument(
        "--models",
        default="cnn,mobilenet",
        help="comma-separated subset of cnn,mobilenet; others kept from --output",
    )
    parser.add_argument(
        "--mobile-size", type=int, default=32, help="MobileNetV3Small input size"
    )
    args = parser.parse_args(argv)
    keras.utils.set_random_seed(0)
    size = 32
    source, _ = digits_domains(size=size)
    data = (source.x_train, source.y_train, source.x_test, source.y_test)
    mobile_size = args.mobile_size
    mobile_source, _ = digits_domains(size=mobile_size)
    mobile_data = (
        mobile_source.x_train,
        mobile_source.y_train,
        mobile_source.x_test,
        mobile_source.y_test,
    )
    cnn_epochs, mobile_epochs = (3, 1) if args.quick else (15, 6)
    repeats = 10 if args.quick else 30
    out_dir = Path(tempfile.mkdtemp(prefix="export-bench-"))
    models = set(args.models.split(","))
    output = Path(args.output)
    results = json.loads(output.read_text()) if output.exists() else {}
    results["settings"] = {"quick": args.quick, "threads": 1}
    try:
        if "cnn" in models:
            results["digits_cnn"] = run_model(
                small_cnn(size), data, cnn_epochs, repeats, out_dir
            )
            print_table(f"digits CNN ({size}x{size})", results["digits_cnn"])
        if "mobilenet" in models:
            results["mobilenet_v3_small"] = run_model(
                mobilenet(mobile_size), mobile_data, mobile_epochs, repeats, out_dir
            )
            print_table(
                f"MobileNetV3Small ({mobile_size}x{mobile_size}, weights=None)",
                results["mobilenet_v3_small"],
            )
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwrote {args.output}")
    return results


if __name__ == "__main__":
    main()
