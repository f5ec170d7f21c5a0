"""Domain adaptation on the digits -> MNIST-M-style pair, every method side by side.

Runs source-only, DANN, DeepCORAL, MMD, CDAN and train-on-target (oracle) with the
same small CNN, ``--seeds`` seeds each, and reports target-test accuracy (mean ± std)
and wall time per epoch. λ of each adaptation method is chosen on seed 0 from
``--lambdas`` by the DEV risk (You et al. 2019) on held-out SOURCE data and unlabelled
target data: no target label is looked at before the final test numbers.
Optionally runs the peer library ``adapt`` (DANN, CDAN) on the same data and budget,
from a directory given with ``--adapt-path`` (``pip install --target DIR adapt``).

    python benchmarks/domain_adaptation.py --quick
    python benchmarks/domain_adaptation.py --epochs 50 --seeds 3 --adapt-path /tmp/adapt

Results: benchmarks/results/domain_adaptation.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from keras_transfer._backend import keras, tf
from keras_transfer.adaptation import (
    DANNLearningRateSchedule,
    DomainAdaptationModel,
    DomainLambdaScheduler,
    deep_embedded_validation,
    per_domain_accuracy,
)
from keras_transfer.data import domain_pairs
from keras_transfer.datasets import digits_domains

RESULTS = Path(__file__).parent / "results" / "domain_adaptation.json"
METHODS = ("source_only", "dann", "coral", "mmd", "cdan", "target_only")


def make_encoder(input_shape=(32, 32, 3)) -> keras.Model:
    """The small CNN shared by every method (about 60k parameters)."""
    return keras.Sequential(
        [
            keras.Input(input_shape),
            keras.layers.Rescaling(1 / 255.0),
            keras.layers.Conv2D(32, 5, activation="relu", padding="same"),
            keras.layers.MaxPooling2D(),
            keras.layers.Conv2D(48, 5, activation="relu", padding="same"),
            keras.layers.MaxPooling2D(),
            keras.layers.Flatten(),
            keras.layers.Dense(100, activation="relu"),
        ],
        name="encoder",
    )


class _EpochTimer(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.times = []

    def on_epoch_begin(self, epoch, logs=None):
        self._t = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.times.append(time.perf_counter() - self._t)


def make_optimizer(name, lr, total_steps):
    """``sgd``: the DANN paper's recipe (momentum 0.9, μ0/(1+10p)^0.75); or Adam."""
    if name == "sgd":
        schedule = DANNLearningRateSchedule(lr, decay_steps=total_steps)
        return keras.optimizers.SGD(schedule, momentum=0.9)
    return keras.optimizers.Adam(lr)


def run_one(method, data, *, seed, epochs, batch_size, lam, lr, optimizer="sgd"):
    """Trains one model; returns (model, seconds per epoch)."""
    keras.utils.set_random_seed(seed)
    xs, ys, xt = data["xs"], data["ys"], data["xt"]
    timer = _EpochTimer()
    callbacks = [timer]
    if method == "target_only":  # oracle: labelled target, no adaptation
        model = DomainAdaptationModel(make_encoder(), 10, method=None)
        pairs = domain_pairs((data["xt"], data["yt"]), xt, batch_size, seed=seed)
    else:
        alignment = None if method == "source_only" else method
        kwargs = {"hidden_units": (100,)} if alignment in ("dann", "cdan") else {}
        model = DomainAdaptationModel(
            make_encoder(), 10, method=alignment, method_kwargs=kwargs
        )
        pairs = domain_pairs((xs, ys), xt, batch_size, seed=seed)
        if alignment is not None:
            callbacks.append(DomainLambdaScheduler(max_value=lam))
    total_steps = epochs * int(pairs.cardinality())
    model.compile(optimizer=make_optimizer(optimizer, lr, total_steps))
    model.fit(pairs, epochs=epochs, verbose=0, callbacks=callbacks)
    # the first epoch includes tracing: report the median epoch
    return model, float(np.median(timer.times))


def load_data(val_fraction=0.2, seed=0):
    source, target = digits_domains(size=32, seed=0)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(source.x_train))
    n_val = int(len(order) * val_fraction)
    val, train = order[:n_val], order[n_val:]
    return {
        "xs": source.x_train[train],
        "ys": source.y_train[train],
        "xs_val": source.x_train[val],
        "ys_val": source.y_train[val],
        "xt": target.x_train,  # labels of the target train split are never used
        "yt": target.y_train,  # ... except by the train-on-target oracle
        "xt_test": target.x_test,
        "yt_test": target.y_test,
        "xs_test": source.x_test,
        "ys_test": source.y_test,
    }


def select_lambda(method, data, lambdas, *, epochs, batch_size, lr, optimizer):
    """Picks λ by DEV risk (source validation + unlabelled target), seed 0."""
    risks = {}
    for lam in lambdas:
        model, _ = run_one(
            method,
            data,
            seed=0,
            epochs=epochs,
            batch_size=batch_size,
            lam=lam,
            lr=lr,
            optimizer=optimizer,
        )
        risks[lam] = deep_embedded_validation(
            model, (data["xs_val"], data["ys_val"]), data["xt"]
        )
        print(f"  {method} λ={lam}: DEV risk {risks[lam]:.4f}", flush=True)
    return min(risks, key=risks.get), risks


def run_adapt(adapt_path, epochs, seeds, batch_size, lr):
    """Runs the peer library in a subprocess (its own sys.path); returns its JSON."""
    script = Path(__file__)
    env = dict(
        os.environ,
        PYTHONPATH=f"{adapt_path}{os.pathsep}" + os.environ.get("PYTHONPATH", ""),
    )
    cmd = [sys.executable, str(script), "--adapt-worker", "--epochs", str(epochs)]
    cmd += ["--seeds", str(seeds)]
    cmd += ["--batch-size", str(batch_size), "--lr", str(lr)]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        return {"error": out.stderr[-2000:]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def adapt_worker(epochs, seeds, batch_size, lr) -> dict:
    """Runs adapt's DANN and CDAN off the shelf (their defaults, our CNN and budget)."""
    import adapt
    from adapt.feature_based import CDAN, DANN

    data = load_data()
    xs, xt = data["xs"].astype("float32"), data["xt"].astype("float32")
    ys = keras.utils.to_categorical(data["ys"], 10)
    xt_test, yt_test = data["xt_test"].astype("float32"), data["yt_test"]
    out = {"version": getattr(adapt, "__version__", "0.4.5")}
    for name, cls in (("dann", DANN), ("cdan", CDAN)):
        accs, times = [], []
        for seed in range(seeds):
            keras.utils.set_random_seed(seed)
            task = keras.Sequential([keras.Input((100,)), keras.layers.Dense(10)])
            task.add(keras.layers.Softmax())
            disc = keras.Sequential(
                [keras.layers.Dense(100, activation="relu"), keras.layers.Dense(1)]
            )
            disc.add(keras.layers.Activation("sigmoid"))
            model = cls(
                encoder=make_encoder(),
                task=task,
                discriminator=disc,
                Xt=xt,
                random_state=seed,
                verbose=0,
                loss="categorical_crossentropy",
                optimizer=keras.optimizers.Adam(lr),
                metrics=["acc"],
            )
            start = time.perf_counter()
            model.fit(xs, ys, epochs=epochs, batch_size=batch_size, verbose=0)
            times.append((time.perf_counter() - start) / epochs)
            accs.append(float(np.mean(model.predict(xt_test).argmax(-1) == yt_test)))
        out[name] = {
            "target_accuracy_mean": float(np.mean(accs)),
            "target_accuracy_std": float(np.std(accs)),
            "target_accuracy_per_seed": accs,
            "seconds_per_epoch": float(np.mean(times)),
        }
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--selection-epochs", type=int, default=None)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--optimizer", choices=["sgd", "adam"], default="sgd")
    parser.add_argument("--lr", type=float, default=None, help="0.01 sgd, 1e-3 adam")
    parser.add_argument("--output", default=str(RESULTS))
    parser.add_argument("--lambdas", type=float, nargs="+", default=[0.1, 0.3, 1.0])
    parser.add_argument("--methods", nargs="+", default=list(METHODS))
    parser.add_argument("--adapt-path", default=None)
    parser.add_argument("--quick", action="store_true", help="2 epochs, 1 seed")
    parser.add_argument("--adapt-worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.adapt_worker:
        lr = args.lr or 1e-3
        result = adapt_worker(args.epochs, args.seeds, args.batch_size, lr)
        print(json.dumps(result))
        return 0
    if args.quick:
        args.epochs, args.seeds, args.lambdas = 2, 1, [1.0]
    sel_epochs = args.selection_epochs or args.epochs
    if args.lr is None:
        args.lr = 0.01 if args.optimizer == "sgd" else 1e-3
    data = load_data()
    results = {"config": vars(args), "methods": {}}
    for method in args.methods:
        lam, risks = 1.0, None
        if method not in ("source_only", "target_only") and len(args.lambdas) > 1:
            lam, risks = select_lambda(
                method,
                data,
                args.lambdas,
                epochs=sel_epochs,
                batch_size=args.batch_size,
                lr=args.lr,
                optimizer=args.optimizer,
            )
        accs, src_accs, times = [], [], []
        for seed in range(args.seeds):
            model, sec = run_one(
                method,
                data,
                seed=seed,
                epochs=args.epochs,
                batch_size=args.batch_size,
                lam=lam,
                lr=args.lr,
                optimizer=args.optimizer,
            )
            acc = per_domain_accuracy(
                model,
                {
                    "source": (data["xs_test"], data["ys_test"]),
                    "target": (data["xt_test"], data["yt_test"]),
                },
            )
            accs.append(acc["target"])
            src_accs.append(acc["source"])
            times.append(sec)
        results["methods"][method] = {
            "target_accuracy_mean": float(np.mean(accs)),
            "target_accuracy_std": float(np.std(accs)),
            "target_accuracy_per_seed": accs,
            "source_accuracy_mean": float(np.mean(src_accs)),
            "seconds_per_epoch": float(np.mean(times)),
            "lambda": lam,
            "dev_risk_by_lambda": risks,
        }
        print(
            f"{method:12s} target {np.mean(accs):.3f} ± {np.std(accs):.3f}  "
            f"source {np.mean(src_accs):.3f}  {np.mean(times):.2f} s/epoch  λ={lam}",
            flush=True,
        )
    base = results["methods"].get("source_only", {}).get("seconds_per_epoch")
    for row in results["methods"].values():
        if base:
            row["time_ratio_vs_source_only"] = row["seconds_per_epoch"] / base
    if args.adapt_path:
        results["adapt"] = run_adapt(
            args.adapt_path, args.epochs, args.seeds, args.batch_size, 1e-3
        )
        print("adapt:", json.dumps(results["adapt"])[:600], flush=True)
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(results, indent=2))
    print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    tf.get_logger().setLevel("ERROR")
    sys.exit(main())
