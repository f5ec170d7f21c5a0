"""Knowledge distillation on scikit-learn digits: teacher, scratch student, distilled.

Same data, same budget (epochs, batch size, optimizer, initial weights) for the two
students; 3 seeds. Regimes: the full training split at `--epochs`, and a low-data
split (the students see only `--low-fraction` of it; the teacher was trained on all of
it, as a teacher trained elsewhere would be) at `--epochs` and at `--long-epochs`
(distillation is known to need longer schedules: Beyer et al. 2022). T=4, alpha=0.1
were chosen on a validation split of the training data (seed 0), not on the test set.
Prints a table and writes
`benchmarks/results/distillation.json`.

Usage: python benchmarks/distillation.py [--quick] [--seeds 0 1 2]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import write_results  # noqa: E402

from keras_transfer._backend import keras  # noqa: E402
from keras_transfer.distillation import Distiller  # noqa: E402


def load_digits(seed: int = 0):
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = (d.images / 16.0).astype("float32")[..., None]
    return train_test_split(
        x, d.target, test_size=0.3, random_state=seed, stratify=d.target
    )


def teacher_model(seed: int) -> keras.Model:
    init = keras.initializers.GlorotUniform(seed=seed)
    return keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(
                32, 3, padding="same", activation="relu", kernel_initializer=init
            ),
            keras.layers.Conv2D(
                64, 3, padding="same", activation="relu", kernel_initializer=init
            ),
            keras.layers.MaxPooling2D(),
            keras.layers.Flatten(),
            keras.layers.Dropout(0.3),
            keras.layers.Dense(128, "relu", kernel_initializer=init),
            keras.layers.Dense(10, kernel_initializer=init),
        ],
        name="teacher",
    )


def student_model(seed: int, hidden: int) -> keras.Model:
    init = keras.initializers.GlorotUniform(seed=seed)
    return keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Flatten(),
            keras.layers.Dense(hidden, "relu", kernel_initializer=init),
            keras.layers.Dense(10, kernel_initializer=init),
        ],
        name="student",
    )


def accuracy(model, x, y) -> float:
    return float(np.mean(np.argmax(model.predict(x, verbose=0), -1) == y))


def run(args) -> dict:
    x_tr, x_te, y_tr, y_te = load_digits()
    rows = []
    for seed in args.seeds:
        keras.utils.set_random_seed(seed)
        teacher = teacher_model(seed)
        teacher.compile(
            optimizer=keras.optimizers.Adam(1e-3),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
        teacher.fit(x_tr, y_tr, epochs=args.teacher_epochs, batch_size=32, verbose=0)
        t_acc = accuracy(teacher, x_te, y_te)
        regimes = (
            ("full", 1.0, args.epochs),
            ("low-data", args.low_fraction, args.epochs),
            ("low-data-long", args.low_fraction, args.long_epochs),
        )
        for regime, fraction, epochs in regimes:
            rng = np.random.default_rng(seed)
            idx = rng.permutation(len(x_tr))[: max(20, int(fraction * len(x_tr)))]
            xs, ys = x_tr[idx], y_tr[idx]
            scratch = student_model(seed + 100, args.hidden)
            twin = keras.models.clone_model(scratch)
            twin.set_weights(scratch.get_weights())
            scratch.compile(
                optimizer=keras.optimizers.Adam(args.lr),
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            )
            t0 = time.perf_counter()
            scratch.fit(xs, ys, epochs=epochs, batch_size=32, verbose=0)
            t_scratch = time.perf_counter() - t0
            distiller = Distiller(
                teacher, twin, temperature=args.temperature, alpha=args.alpha
            )
            distiller.compile(optimizer=keras.optimizers.Adam(args.lr))
            t0 = time.perf_counter()
            distiller.fit(xs, ys, epochs=epochs, batch_size=32, verbose=0)
            t_distill = time.perf_counter() - t0
            row = {
                "seed": seed,
                "regime": regime,
                "n_train": len(xs),
                "epochs": epochs,
                "teacher": t_acc,
                "scratch": accuracy(scratch, x_te, y_te),
                "distilled": accuracy(twin, x_te, y_te),
                "seconds_scratch": t_scratch,
                "seconds_distilled": t_distill,
            }
            rows.append(row)
            print(
                f"seed {seed} {regime:13s} n={len(xs):4d} ep={epochs} teacher {t_acc:.4f} "
                f"scratch {row['scratch']:.4f} distilled {row['distilled']:.4f}",
                flush=True,
            )
    summary = {}
    for regime in ("full", "low-data", "low-data-long"):
        sel = [r for r in rows if r["regime"] == regime]
        summary[regime] = {
            k: (float(np.mean([r[k] for r in sel])), float(np.std([r[k] for r in sel])))
            for k in ("teacher", "scratch", "distilled")
        }
        summary[regime]["distilled_wins"] = sum(
            r["distilled"] > r["scratch"] for r in sel
        )
        summary[regime]["seeds"] = len(sel)
    return {"rows": rows, "summary": summary}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="1 seed, fewer epochs.")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=30, help="Student epochs (both).")
    p.add_argument("--teacher-epochs", type=int, default=20)
    p.add_argument("--hidden", type=int, default=16, help="Student hidden units.")
    p.add_argument("--temperature", type=float, default=4.0)
    p.add_argument("--alpha", type=float, default=0.1)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--long-epochs", type=int, default=150)
    p.add_argument("--low-fraction", type=float, default=0.1)
    args = p.parse_args(argv)
    if args.quick:
        args.seeds, args.epochs, args.teacher_epochs = [0], 10, 8
        args.long_epochs = 40
    result = run(args)
    print("\nregime        teacher        scratch        distilled      wins")
    for regime, s in result["summary"].items():
        cells = "  ".join(
            f"{s[k][0]:.4f}±{s[k][1]:.4f}" for k in ("teacher", "scratch", "distilled")
        )
        print(f"{regime:13s} {cells}  {s['distilled_wins']}/{s['seeds']}")
    path = write_results("distillation", {"config": vars(args), **result})
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
