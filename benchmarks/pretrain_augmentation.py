"""Pretraining with the colour jitter ramped in vs jittered from the first step.

`keras_transfer.pretrain.pretrain_preset` (the code behind `keras-transfer pretrain`
and the demo's first step) trains a small KerasHub VGG from scratch with
`color_augment` (inversion, channel gain and offset). Jittering every image from the
first step kept that network at chance for about 12 of 30 epochs on the built-in
digits; since stop 43 the share of jittered images rises from 0 to 1 over the first
`augment_warmup` (0.3) of the epochs. This script runs both side by side, same seed,
interleaved, on the source side of each image pair of `keras_transfer.datasets`
(the ramp was chosen on `digits_mnistm` only), and scores each pretrained classifier
on the source's test split and, with no target label used in training, on the
target's test split.

    python benchmarks/pretrain_augmentation.py [--pairs ...] [--epochs 10 30]
        [--seeds 3] [--warmups 0.0 0.3] [--quick] [--output PATH]

Writes `benchmarks/results/pretrain_augmentation.json`.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import command_line, write_results  # noqa: E402

PAIRS = ("digits_mnistm", "digits_rotnoise", "digits_svhnlike", "fonts_digits")


def take_off_epoch(accuracy: list[float], chance: float) -> int | None:
    """The first epoch (from 1) whose training accuracy passes 3x chance."""
    return next((i + 1 for i, a in enumerate(accuracy) if a > 3 * chance), None)


def run_one(
    pair: str,
    epochs: int,
    seed: int,
    warmup: float,
    size: int,
    limit,
    initializer: str | None = None,
):
    import numpy as np

    from keras_transfer.datasets import domain_pair
    from keras_transfer.pretrain import pretrain_preset

    source, target = domain_pair(pair, size=size, seed=0)
    xs, ys = source.x_train[:limit], source.y_train[:limit]
    classes = int(max(ys.max(), source.y_test.max(), target.y_test.max()) + 1)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        result = pretrain_preset(
            xs,
            ys,
            os.path.join(tmp, "preset"),
            x_val=source.x_test,
            y_val=source.y_test,
            num_classes=classes,
            epochs=epochs,
            augment_warmup=warmup,
            conv_initializer=initializer,
            seed=seed,
        )
    seconds = time.perf_counter() - start
    probs = result.model.predict(np.asarray(target.x_test, "float32"), verbose=0)
    accuracy = [float(a) for a in result.history["accuracy"]]
    return {
        "pair": pair,
        "epochs": epochs,
        "seed": seed,
        "augment_warmup": warmup,
        "conv_initializer": initializer,
        "source_accuracy": float(result.val_accuracy),
        "target_accuracy": float(np.mean(probs.argmax(-1) == target.y_test)),
        "take_off_epoch": take_off_epoch(accuracy, 1.0 / classes),
        "train_accuracy_per_epoch": accuracy,
        "seconds": seconds,
    }


def variant(row: dict) -> str:
    """A row's variant: its warm-up, and its initializer when one was given."""
    init = row.get("conv_initializer")
    return str(row["augment_warmup"]) + ("" if init is None else f"/{init}")


def summarize(rows: list[dict]) -> dict:
    """Means per (pair, epochs, variant): accuracies, seconds, take-off epochs."""
    import numpy as np

    out: dict = {}
    keys = sorted({(r["pair"], r["epochs"]) for r in rows})
    for pair, epochs in keys:
        cell = {}
        for name in dict.fromkeys(variant(r) for r in rows):
            sel = [
                r
                for r in rows
                if (r["pair"], r["epochs"], variant(r)) == (pair, epochs, name)
            ]
            offs = [r["take_off_epoch"] for r in sel]
            cell[name] = {
                "seeds": len(sel),
                "source_accuracy": float(np.mean([r["source_accuracy"] for r in sel])),
                "target_accuracy": float(np.mean([r["target_accuracy"] for r in sel])),
                "seconds": float(np.mean([r["seconds"] for r in sel])),
                "take_off_epochs": offs,
            }
        out.setdefault(pair, {})[str(epochs)] = cell
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", nargs="+", default=list(PAIRS))
    parser.add_argument("--epochs", type=int, nargs="+", default=[10, 30])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--warmups", type=float, nargs="+", default=[0.0, 0.3])
    parser.add_argument(
        "--initializers",
        nargs="+",
        default=["keras_hub"],
        help="conv_initializer of pretrain_preset per variant ('keras_hub': its own)",
    )
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--limit", type=int, default=None, help="source examples")
    parser.add_argument("--quick", action="store_true", help="tiny smoke run")
    parser.add_argument("--output", default=None, help="JSON path (default: results)")
    args = parser.parse_args(argv)
    if args.quick:
        args.pairs, args.epochs, args.seeds = args.pairs[:1], [2], 1
        args.limit = args.limit or 64
    rows = []
    for pair in args.pairs:
        for epochs in args.epochs:
            for seed in range(args.seeds):
                for warmup, init in [  # interleaved: the same load for all
                    (w, i) for w in args.warmups for i in args.initializers
                ]:
                    init = None if init == "keras_hub" else init
                    row = run_one(
                        pair, epochs, seed, warmup, args.size, args.limit, init
                    )
                    rows.append(row)
                    print(
                        f"{pair} {epochs} ep seed {seed} {variant(row)}: source "
                        f"{row['source_accuracy']:.3f} target "
                        f"{row['target_accuracy']:.3f} take-off "
                        f"{row['take_off_epoch']} ({row['seconds']:.0f} s)",
                        flush=True,
                    )
    payload = {
        "command": command_line("pretrain_augmentation.py", argv),
        "config": {
            "pairs": args.pairs,
            "epochs": args.epochs,
            "seeds": args.seeds,
            "warmups": args.warmups,
            "initializers": args.initializers,
            "size": args.size,
            "limit": args.limit,
        },
        "summary": summarize(rows),
        "runs": rows,
    }
    print("wrote", write_results("pretrain_augmentation", payload, args.output))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
