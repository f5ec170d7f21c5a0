"""Few-shot accuracy on held-out classes of scikit-learn digits (bundled, offline).

Classes 0-4 are for (meta-)training; classes 5-9 are never seen until test episodes.
5-way 1-shot and 5-shot accuracy, mean and 95% CI over random test episodes (the same
episodes for every method), for:

* head baseline: an encoder trained as an ordinary 5-class classifier on 0-4, frozen;
  a new linear (logistic-regression) head fit on each episode's support set;
* nearest class mean on the same supervised encoder (prototypes without episodes);
* ProtoNet: the same encoder architecture trained episodically (Snell et al. 2017);
* Reptile: the encoder + a 5-way head meta-trained with Reptile (Nichol et al. 2018),
  then fine-tuned on each support set.

Writes `benchmarks/results/fewshot.json`. Usage: python benchmarks/fewshot.py [--quick]
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
from keras_transfer.fewshot import (  # noqa: E402
    ProtoNetClassifier,
    adapt_on_support,
    mean_confidence_interval,
    reptile,
    sample_episode,
)


def encoder(seed: int) -> keras.Model:
    init = keras.initializers.GlorotUniform(seed=seed)
    return keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(
                32, 3, padding="same", activation="relu", kernel_initializer=init
            ),
            keras.layers.MaxPooling2D(),
            keras.layers.Conv2D(
                64, 3, padding="same", activation="relu", kernel_initializer=init
            ),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(64, kernel_initializer=init),
        ],
        name="encoder",
    )


def head_baseline(enc, xs, ys, xq):
    from sklearn.linear_model import LogisticRegression

    f = ProtoNetClassifier(enc)
    clf = LogisticRegression(max_iter=1000).fit(f.embed(xs), ys)
    return clf.predict(f.embed(xq))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--episodes", type=int, default=300, help="ProtoNet training.")
    p.add_argument("--eval-episodes", type=int, default=200)
    p.add_argument("--reptile-iterations", type=int, default=300)
    p.add_argument("--reptile-eval-episodes", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.quick:
        args.episodes, args.eval_episodes = 60, 40
        args.reptile_iterations, args.reptile_eval_episodes = 40, 20

    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images / 16.0).astype("float32")[..., None]
    y = d.target
    x_meta, y_meta = x[y < 5], y[y < 5]
    x_held, y_held = x[y >= 5], y[y >= 5]
    keras.utils.set_random_seed(args.seed)
    timings = {}

    t0 = time.perf_counter()
    sup = encoder(args.seed)
    clf = keras.Sequential([sup, keras.layers.Dense(5)])
    clf.compile(
        optimizer="adam",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    clf.fit(x_meta, y_meta, epochs=20, batch_size=32, verbose=0)
    timings["supervised_pretrain"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    proto = ProtoNetClassifier(encoder(args.seed))
    proto.fit_episodes(
        x_meta,
        y_meta,
        n_way=5,
        k_shot=5,
        n_query=10,
        episodes=args.episodes,
        optimizer=keras.optimizers.Adam(1e-3),
        seed=args.seed,
    )
    timings["protonet_train"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    meta = keras.Sequential([encoder(args.seed), keras.layers.Dense(5)])
    reptile(
        meta,
        x_meta,
        y_meta,
        n_way=5,
        k_shot=5,
        inner_steps=5,
        inner_learning_rate=0.02,
        meta_step_size=0.5,
        meta_iterations=args.reptile_iterations,
        seed=args.seed,
    )
    timings["reptile_train"] = time.perf_counter() - t0

    results = {}
    nearest_mean = ProtoNetClassifier(sup)
    for k in (1, 5):
        rng = np.random.default_rng(1000 + k)
        accs = {"head_baseline": [], "nearest_mean": [], "protonet": [], "reptile": []}
        for e in range(args.eval_episodes):
            xs, ys, xq, yq, _ = sample_episode(x_held, y_held, 5, k, 15, rng)
            accs["head_baseline"].append(np.mean(head_baseline(sup, xs, ys, xq) == yq))
            accs["nearest_mean"].append(
                np.mean(nearest_mean.fit_support(xs, ys).predict(xq) == yq)
            )
            accs["protonet"].append(
                np.mean(proto.fit_support(xs, ys).predict(xq) == yq)
            )
            if e < args.reptile_eval_episodes:
                adapted = adapt_on_support(meta, xs, ys, steps=20, learning_rate=0.05)
                pred = np.argmax(adapted.predict(xq, verbose=0), -1)
                accs["reptile"].append(np.mean(pred == yq))
        results[f"5way_{k}shot"] = {
            m: {"mean": mci[0], "ci95": mci[1], "episodes": len(v)}
            for m, v in accs.items()
            for mci in [mean_confidence_interval(v)]
        }

    print("\nheld-out digits 5-9, accuracy (95% CI)")
    print(f"{'method':15s} {'5-way 1-shot':>18s} {'5-way 5-shot':>18s}")
    for m in ("head_baseline", "nearest_mean", "protonet", "reptile"):
        cells = [results[f"5way_{k}shot"][m] for k in (1, 5)]
        print(
            f"{m:15s} "
            + " ".join(f"{c['mean']:.4f} ± {c['ci95']:.4f}".rjust(18) for c in cells)
        )
    print("seconds:", {k: round(v, 1) for k, v in timings.items()})
    path = write_results(
        "fewshot", {"config": vars(args), "results": results, "seconds": timings}
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
