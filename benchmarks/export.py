"""Benchmark TFLite export: does int8 pass its own verification, and at what cost?

Four models, trained here from nothing (offline, weights=None):

- ``demo``: the model `run_demo(quick=True)` exports (its adapted model: the demo's
  VGG backbone adapted with MCC to the target digits, no target label), calibrated
  on both domains' training images as the demo does;
- ``demo_fine_tuned``: the same run's fine-tuned KerasHub VGG classifier (10 labelled
  target digits per class; what the demo exported before stop 45), on the target
  digits;
- ``dann``: a small CNN adapted with DANN (`keras_transfer.adaptation.adapt`) from
  source to target digits, calibrated on both domains;
- ``mobilenet32`` / ``mobilenet96``: keras.applications MobileNetV3Small
  (weights=None) trained briefly on source digits at 32 and 96 px.

Each is exported with `export_tflite` as float32, dynamic, int16x8 (LiteRT's 16x8
mode alone: int8 weights, int16 activations) and int8, the ladder that keeps the
first file to pass verification, small and fast first: full int8; selective int8
(the ops of largest error kept in float) within ``selective_size_budget`` (default
+25% over the full int8 file); 16x8 (small, but LiteRT has no fast int16-activation
kernels); selective int8 of any size. Verification (and the ladder's choice) uses
one half of the test split; every number below is then measured again on the other
half, which neither calibration nor selection saw:

- size ratio float32 / this file,
- top-1 agreement with Keras, Keras and TFLite accuracy and the drop in points,
- single-example latency of LiteRT (1 thread) divided by Keras ``predict_on_batch``,
- for int8: the mode (full, int16x8 or selective), every rung tried and why it
  stopped (``modes_tried[].reason``), which ops stayed in float and the size cost
  against the full int8 file.

Targets (issue 14): int8 agreement >= 0.99, >= 3x smaller than float32, accuracy drop
<= 0.5 points, latency ratio <= 0.5.

Results go to ``benchmarks/results/export.json`` (via `benchmarks/_common.py`).

Usage:
    python benchmarks/export.py                 # all rows (~5 minutes on 2 shared cores)
    python benchmarks/export.py --quick         # smoke run (fewer epochs)
    python benchmarks/export.py --models demo   # some rows; others kept from the JSON
    python benchmarks/export.py --selective-size-budget 0.5   # another budget
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import RESULTS_DIR, write_results  # noqa: E402

from keras_transfer._backend import keras  # noqa: E402
from keras_transfer.datasets import digits_domains  # noqa: E402
from keras_transfer.export import export_tflite, load_tflite  # noqa: E402
from keras_transfer.normalization import set_batchnorm_momentum  # noqa: E402

QUANTIZATIONS = ("float32", "dynamic", "int16x8", "int8")
MODELS = ("demo", "demo_fine_tuned", "dann", "mobilenet32", "mobilenet96")
TARGETS = {
    "min_agreement": 0.99,
    "min_size_ratio": 3.0,
    "max_accuracy_drop_points": 0.5,
    "max_latency_ratio": 0.5,
}


def halves(x: np.ndarray, y: np.ndarray, seed: int = 0) -> tuple[tuple, tuple]:
    """Splits a test set at random into (selection, held-out) halves."""
    order = np.random.default_rng(seed).permutation(len(x))
    a, b = order[: len(x) // 2], order[len(x) // 2 :]
    return (x[a], y[a]), (x[b], y[b])


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
    # 0.999 barely moves in a short from-scratch run: 0.9, as the builders do
    set_batchnorm_momentum(backbone, "auto", label=backbone.name)
    outputs = keras.layers.Dense(10, activation="softmax")(backbone(x))
    return keras.Model(inputs, outputs, name=f"mobilenet_v3_small_{size}")


# Half of each domain is held out (not the default 30%): with 449 test images split
# into selection and held-out halves, one disagreement is 0.44 points, not 0.74.
TEST_FRACTION = 0.5


def build_mobilenet(size: int, quick: bool) -> dict:
    source, _ = digits_domains(size=size, test_fraction=TEST_FRACTION)
    model = mobilenet(size)
    model.compile(
        keras.optimizers.Adam(2e-3),
        "sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    epochs = 2 if quick else (8 if size <= 32 else 6)
    model.fit(source.x_train, source.y_train, epochs=epochs, batch_size=32, verbose=0)
    select, held_out = halves(source.x_test, source.y_test)
    return {
        "model": model,
        "calibration": source.x_train,
        "select": select,
        "held_out": held_out,
        "trained": f"{epochs} epochs on {len(source.x_train)} source digits, {size} px",
    }


def build_demo(quick: bool, work: Path) -> dict[str, dict]:
    """Both models of one quick demo run: ``demo`` (the adapted model it exports)
    and ``demo_fine_tuned``; both scored on the target test split."""
    from keras_transfer.demo import run_demo
    from keras_transfer.saving import load_model

    result = run_demo(quick=True, export=False, verbose=0, output_dir=str(work))
    source, target = digits_domains(seed=0)
    select, held_out = halves(target.x_test, target.y_test)
    method = result.adaptation["method"]
    return {
        "demo": {
            "model": load_model(result.adaptation["model_path"], compile=False),
            # as run_demo's export: unlabelled training images of both domains
            "calibration": np.concatenate([source.x_train, target.x_train]),
            "select": select,
            "held_out": held_out,
            "trained": f"run_demo(quick=True): adapted ({method}), no target label",
        },
        "demo_fine_tuned": {
            "model": load_model(result.model_path, compile=False),
            "calibration": target.x_train,
            "select": select,
            "held_out": held_out,
            "trained": "run_demo(quick=True): fine-tuned on 10 target digits per class",
        },
    }


def small_cnn_encoder(size: int) -> keras.Model:
    inputs = keras.Input((size, size, 3))
    x = keras.layers.Rescaling(1 / 255.0)(inputs)
    for filters in (16, 32):
        x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
        x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, x, name="digits_encoder")


def build_dann(quick: bool) -> dict:
    from keras_transfer.adaptation import adapt

    size = 32
    source, target = digits_domains(size=size, test_fraction=TEST_FRACTION)
    result = adapt(
        small_cnn_encoder(size),
        (source.x_train, source.y_train),
        target.x_train,
        num_classes=10,
        method="dann",
        epochs=4 if quick else 15,
        warmup=2 if quick else 5,
        verbose=0,
    )
    s_sel, s_hold = halves(source.x_test, source.y_test)
    t_sel, t_hold = halves(target.x_test, target.y_test)

    def cat(a: tuple, b: tuple) -> tuple:
        return np.concatenate([a[0], b[0]]), np.concatenate([a[1], b[1]])

    return {
        "model": result.model,
        # the adapted model serves target inputs: calibrate on both domains
        "calibration": np.concatenate([source.x_train, target.x_train]),
        "select": cat(s_sel, t_sel),
        "held_out": cat(s_hold, t_hold),
        "trained": f"DANN, source -> target digits, {size} px",
    }


def measure(
    case: dict, work: Path, name: str, repeats: int, budget: float | None
) -> dict:
    model = case["model"]
    x_hold, y_hold = case["held_out"]
    expected = np.asarray(model.predict(x_hold.astype("float32"), verbose=0))
    keras_acc = float(np.mean(expected.argmax(-1) == y_hold))
    rows = {}
    for q in QUANTIZATIONS:
        start = time.perf_counter()
        path = work / f"{name}-{q}"
        try:
            report = export_tflite(
                model,
                path,
                quantization=None if q == "float32" else q,
                representative_data=case["calibration"],
                verify_data=case["select"],
                latency_repeats=repeats,
                num_threads=1,
                selective_size_budget=budget,
            )
        except Exception as err:  # noqa: BLE001 - a refusal is a result here
            rows[q] = {"error": f"{type(err).__name__}: {str(err)[:400]}"}
            continue
        probs = load_tflite(path).predict(x_hold)
        got = probs.argmax(-1)
        tflite_acc = float(np.mean(got == y_hold))
        rows[q] = {
            "size_bytes": report.size_bytes,
            "agreement": float(np.mean(got == expected.argmax(-1))),
            "max_abs_diff": float(np.abs(probs - expected).max()),
            "keras_accuracy": keras_acc,
            "tflite_accuracy": tflite_acc,
            "accuracy_drop_points": 100 * (keras_acc - tflite_acc),
            "latency_ms": report.latency_ms,
            "keras_latency_ms": report.keras_latency_ms,
            "latency_ratio": report.latency_ratio,
            "selection_agreement": report.top1_agreement,
            "export_s": time.perf_counter() - start,
        }
        if report.int8_mode is not None:
            rows[q].update(
                int8_mode=report.int8_mode,
                full_int8_selection_agreement=report.full_int8_agreement,
                full_int8_size_bytes=report.full_int8_size_bytes,
                size_cost_bytes=report.size_cost_bytes,
                float_ops=[f"{o['op']} {o['tensor']}" for o in report.float_ops],
                selective_tried=report.selective_tried,
                modes_tried=report.modes_tried,
                selective_size_budget=report.selective_size_budget,
            )
    base = rows["float32"].get("size_bytes")
    for row in rows.values():
        if base and "size_bytes" in row:
            row["size_ratio_vs_float32"] = base / row["size_bytes"]
    return {
        "params": model.count_params(),
        "trained": case["trained"],
        "calibration_pool": len(case["calibration"]),
        "selection_samples": len(case["select"][0]),
        "held_out_samples": len(x_hold),
        "formats": rows,
        "int8_meets_targets": meets_targets(rows.get("int8", {})),
    }


def meets_targets(row: dict) -> dict | None:
    if "agreement" not in row:
        return None
    return {
        "agreement": row["agreement"] >= TARGETS["min_agreement"],
        "size_ratio": row["size_ratio_vs_float32"] >= TARGETS["min_size_ratio"],
        "accuracy_drop": row["accuracy_drop_points"]
        <= TARGETS["max_accuracy_drop_points"],
        "latency_ratio": row["latency_ratio"] <= TARGETS["max_latency_ratio"],
    }


def print_table(name: str, result: dict) -> None:
    print(f"\n{name}: {result['params']:,} params; {result['trained']}")
    print(
        f"{'format':8} {'KiB':>8} {'x smaller':>9} {'agree':>6} {'acc K':>6}"
        f" {'acc T':>6} {'drop pt':>7} {'lat ratio':>9}  int8"
    )
    for fmt, r in result["formats"].items():
        if "error" in r:
            print(f"{fmt:8} REFUSED {r['error'][:100]}")
            continue
        mode = r.get("int8_mode", "")
        if mode in ("selective", "int16x8") and r["float_ops"]:
            mode += f" ({len(r['float_ops'])} float ops)"
        if r.get("size_cost_bytes") is not None:
            mode += f" (+{r['size_cost_bytes']} B vs full int8)"
        print(
            f"{fmt:8} {r['size_bytes'] / 1024:8.1f} {r['size_ratio_vs_float32']:9.2f}"
            f" {r['agreement']:6.3f} {r['keras_accuracy']:6.3f}"
            f" {r['tflite_accuracy']:6.3f} {r['accuracy_drop_points']:7.2f}"
            f" {r['latency_ratio']:9.3f}  {mode}"
        )
        if fmt == "int8" and r.get("modes_tried"):
            for m in r["modes_tried"]:
                budget = ""
                if m["mode"] == "selective":
                    b = m.get("size_budget_bytes")
                    budget = " (no budget)" if b is None else f" (<= {b} B)"
                print(f"{'':8}   ladder: {m['mode']}{budget}: {m.get('reason')}")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer epochs")
    parser.add_argument(
        "--models",
        default=",".join(MODELS),
        help=f"comma-separated subset of {','.join(MODELS)}; others kept from the "
        "results file",
    )
    parser.add_argument("--name", default="export", help="results/<name>.json")
    parser.add_argument(
        "--selective-size-budget",
        type=float,
        default=0.25,
        help="export_tflite's selective_size_budget for the int8 ladder (fraction "
        "over the full int8 file; negative: no budget)",
    )
    args = parser.parse_args(argv)
    models = [m for m in args.models.split(",") if m]
    unknown = sorted(set(models) - set(MODELS))
    if unknown:
        parser.error(f"unknown models {unknown}; choose from {list(MODELS)}")
    previous = Path(RESULTS_DIR) / f"{args.name}.json"
    rows = {}
    if previous.exists() and set(models) != set(MODELS):
        rows = json.loads(previous.read_text()).get("rows", {})
    repeats = 10 if args.quick else 30
    budget = args.selective_size_budget if args.selective_size_budget >= 0 else None
    work = Path(tempfile.mkdtemp(prefix="export-bench-"))
    start = time.perf_counter()
    demo_cases: dict[str, dict] = {}
    try:
        for name in MODELS:
            if name not in models:
                continue
            keras.utils.set_random_seed(0)
            t0 = time.perf_counter()
            if name.startswith("demo"):
                # one demo run gives both demo rows (train_s: the whole run)
                if not demo_cases:
                    demo_cases = build_demo(args.quick, work / "demo")
                    demo_s = time.perf_counter() - t0
                case, train_s = demo_cases[name], demo_s
            else:
                if name == "dann":
                    case = build_dann(args.quick)
                else:
                    size = int(name.removeprefix("mobilenet"))
                    case = build_mobilenet(size, args.quick)
                train_s = time.perf_counter() - t0
            rows[name] = measure(case, work, name, repeats, budget)
            rows[name]["train_s"] = train_s
            # rows kept from an earlier run keep their own date
            rows[name]["measured"] = time.strftime("%Y-%m-%dT%H:%M:%S")
            print_table(name, rows[name])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    command = "python benchmarks/export.py" + (" --quick" if args.quick else "")
    if set(models) != set(MODELS):
        command += f" --models {','.join(models)}"
    if args.selective_size_budget != 0.25:
        command += f" --selective-size-budget {args.selective_size_budget}"
    payload = {
        "command": command,
        "settings": {
            "quick": args.quick,
            "threads": 1,
            "latency_repeats": repeats,
            "selective_size_budget": budget,
        },
        "targets": TARGETS,
        "seconds": time.perf_counter() - start,
        "rows": rows,
    }
    path = write_results(args.name, payload)
    print(f"\nwrote {path}")
    return payload


if __name__ == "__main__":
    main()
