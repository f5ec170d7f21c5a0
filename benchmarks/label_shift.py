"""Does a label-free class-prior estimate hold on these pairs? (issue 11)

`keras_transfer.adaptation.estimate_label_shift` (BBSE, EM) estimates a target's
class proportions from a classifier's predictions, assuming that only the
proportions changed. This script checks that assumption's price on the five main
pairs of `benchmarks/domain_adaptation.py`: for each pair and seed it trains the
source-only model once (`adapt(method="source_only")`, the recipe's defaults) and
reads, side by side, three test sets:

- ``pure``: the held-out source test set with its classes thinned 10:1
  (`domain_adaptation.imbalance_target`'s geometric fractions): label shift alone,
  where the estimators' assumption holds;
- ``shifted``: the target with its classes thinned 10:1 (run L's target): domain
  shift and label shift together;
- ``balanced``: the target as it is: domain shift alone.

The confusion matrix BBSE needs is read on the source split `adapt` held out (the
same split, from the same seed); the estimate is made on unlabelled inputs (the
thinned source test set itself, or the target's training inputs), and the test
labels are read only to score. Reported per row: accuracy raw and after
`PriorCorrection` with each estimate, and each estimate's total-variation distance
from the true class proportions.

Run: python benchmarks/label_shift.py [--pairs ...] [--seeds 2] [--ratio 10]
Writes benchmarks/results/label_shift.json (``--output`` for another path);
``--table`` prints the table of a results file.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import RESULTS_DIR, write_results  # noqa: E402

NAME = "label_shift"
PAIRS = (
    "digits_mnistm",
    "digits_rotnoise",
    "digits_svhnlike",
    "fonts_digits",
    "sentiment",
)
SETTINGS = ("pure", "shifted", "balanced")
ESTIMATORS = ("bbse", "em")


def _thin(x, y, k, ratio, seed):
    """The geometric thinning of `domain_adaptation.imbalance_target` on one split."""
    import domain_adaptation as bench

    data = {"num_classes": k, "xt": x, "yt": y, "xt_test": x, "yt_test": y}
    out = bench.imbalance_target(data, ratio, seed)
    return out["xt"], out["yt"]


def _score(model, source_val, unlabelled, test, k) -> dict:
    from keras_transfer.adaptation.label_shift import estimate_label_shift
    from keras_transfer.adaptation.predict import predict_eagerly

    ps = predict_eagerly(model, source_val[0])
    pu = predict_eagerly(model, unlabelled)
    pt = predict_eagerly(model, test[0])
    truth = np.bincount(test[1], minlength=k) / len(test[1])
    row = {
        "raw": float(np.mean(pt.argmax(1) == test[1])),
        "true_imbalance": float(truth.max() / max(truth.min(), 1e-12)),
        "prediction_tv": float(0.5 * np.abs(pu.mean(0) - truth).sum()),
    }
    for estimator in ESTIMATORS:
        got = estimate_label_shift(ps, source_val[1], pu, estimator=estimator)
        corrected = pt * np.asarray(got["weights"])
        row[estimator] = float(np.mean(corrected.argmax(1) == test[1]))
        row[f"{estimator}_tv"] = float(
            0.5 * np.abs(np.asarray(got["target_prior"]) - truth).sum()
        )
        row[f"{estimator}_imbalance"] = got["imbalance"]
    return row


def run_pair(pair: str, seeds: int, ratio: float, data_seed: int) -> list[dict]:
    import domain_adaptation as bench

    import keras_transfer as kt
    from keras_transfer.adaptation import split_source

    data = bench.load_pair(pair, size=32, seed=data_seed, limit=None)
    k = int(data["num_classes"])
    shifted = bench.imbalance_target(data, ratio, data_seed)
    pure_x, pure_y = _thin(data["xs_test"], data["ys_test"], k, ratio, data_seed)
    rows = []
    for seed in range(seeds):
        started = time.perf_counter()
        encoder = bench._seeded_encoder(data, seed)
        result = kt.adapt(
            encoder,
            (data["xs"], data["ys"]),
            data["xt"],
            num_classes=k,
            method="source_only",
            seed=seed,
            verbose=0,
        )
        _, _, xs_val, ys_val = split_source(data["xs"], data["ys"], 0.15, seed)
        seconds = time.perf_counter() - started
        tests = {
            "pure": (pure_x, (pure_x, pure_y)),
            "shifted": (shifted["xt"], (shifted["xt_test"], shifted["yt_test"])),
            "balanced": (data["xt"], (data["xt_test"], data["yt_test"])),
        }
        for setting, (unlabelled, test) in tests.items():
            row = _score(result.model, (xs_val, ys_val), unlabelled, test, k)
            row.update(pair=pair, seed=seed, setting=setting, train_seconds=seconds)
            rows.append(row)
            print(json.dumps(row), flush=True)
    return rows


def summarize(rows: list[dict]) -> dict:
    """Mean over seeds per (pair, setting), and over pairs per setting."""
    out: dict = {}
    keys = ("raw", *ESTIMATORS, *(f"{e}_tv" for e in ESTIMATORS), "prediction_tv")
    for setting in SETTINGS:
        per_pair = {}
        for pair in dict.fromkeys(r["pair"] for r in rows):
            mine = [r for r in rows if r["pair"] == pair and r["setting"] == setting]
            if mine:
                per_pair[pair] = {k: float(np.mean([r[k] for r in mine])) for k in keys}
        if per_pair:
            mean = {k: float(np.mean([v[k] for v in per_pair.values()])) for k in keys}
            out[setting] = {"pairs": per_pair, "mean": mean}
    return out


def table(payload: dict, path: str) -> str:
    summary = payload["summary"]
    lines = [
        f"From `{path}` (`{payload['command']}`): source-only model, mean of "
        f"{payload['config']['seeds']} seeds; accuracy in %, raw and after "
        "PriorCorrection with each estimate; TV: the estimate's total-variation "
        "distance from the true class proportions.",
        "",
        "| test set | pair | raw | BBSE | EM | BBSE TV | EM TV |",
        "|---|---|---|---|---|---|---|",
    ]
    for setting, block in summary.items():
        for pair, v in [*block["pairs"].items(), ("mean", block["mean"])]:
            lines.append(
                f"| {setting} | {pair} | {100 * v['raw']:.1f} | "
                f"{100 * v['bbse']:.1f} ({100 * (v['bbse'] - v['raw']):+.1f}) | "
                f"{100 * v['em']:.1f} ({100 * (v['em'] - v['raw']):+.1f}) | "
                f"{v['bbse_tv']:.3f} | {v['em_tv']:.3f} |"
            )
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", nargs="+", default=list(PAIRS))
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--ratio", type=float, default=10.0)
    parser.add_argument("--data-seed", type=int, default=0)
    parser.add_argument("--output", default=None, help="JSON path (default: results)")
    parser.add_argument("--table", action="store_true", help="print the table only")
    args = parser.parse_args(argv)
    command = " ".join(["python benchmarks/label_shift.py", *(argv or sys.argv[1:])])
    if args.table:
        path = args.output or os.path.join(RESULTS_DIR, f"{NAME}.json")
        with open(path) as f:
            payload = json.load(f)
        print(table(payload, args.output or os.path.relpath(path)))
        return 0
    if args.seeds < 1 or args.ratio < 1:
        parser.error(
            f"Expected --seeds >= 1 and --ratio >= 1. Received: {args.seeds}, "
            f"{args.ratio}"
        )
    from keras_transfer._backend import tf

    tf.get_logger().setLevel("ERROR")
    rows = []
    for pair in args.pairs:
        rows.extend(run_pair(pair, args.seeds, args.ratio, args.data_seed))
    payload = {
        "config": {
            "pairs": args.pairs,
            "seeds": args.seeds,
            "ratio": args.ratio,
            "data_seed": args.data_seed,
            "model": "adapt(method='source_only'), recipe defaults",
        },
        "command": command,
        "rows": rows,
        "summary": summarize(rows),
    }
    path = write_results(NAME, payload, args.output)
    print(table(payload, args.output or os.path.relpath(path)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
