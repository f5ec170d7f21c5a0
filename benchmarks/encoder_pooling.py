"""Pooling of the encoder in `adapt`: global average vs flatten, side by side.

The user's CLI path is `keras-transfer pretrain` on the labelled source, then
`keras-transfer adapt` with that preset as `model.backbone`. `adapt` turns the
backbone's feature maps into features by global average pooling unless
`model.pooling` / `adapt(pooling=...)` says otherwise; the demo's adaptation step
flattens instead (its docstring: pooled maps "left nothing for adaptation to use"),
and the benchmark's small CNN flattens too. This script measures the difference
on that path.

For each pair: one KerasHub VGG preset pretrained on the source train split
(`keras_transfer.pretrain.pretrain_preset`, the CLI `pretrain` defaults: filters
(32, 64, 128), 30 epochs, augmentation on from the first step (`augment_warmup=0.0`,
the default until stop 43); 4x4 feature maps at 32 px); then for
each seed and each pooling ("avg", "flatten") one `adapt(method="auto")` from that
preset with every layer trainable (the CLI's `adaptation.unfreeze_depth: all`) and
every other setting `adapt`'s default. Reported on the target test split (never
trained on; target labels are read only here): the `auto` model and the
`source_only` candidate of the same run (its branch from the same warm-up), and
held-out source accuracy.

Pairs: `demo` (the built-in `digits` -> `digits_target` of the CLI and the demo,
read as the CLI reads them), the registered image pairs and the held-out pairs of
`benchmarks/_heldout_pairs.py`, given by `--pairs`. `--poolings` names the two
poolings compared (default avg and flatten; `adapt`'s default is "auto").

Run: python benchmarks/encoder_pooling.py [--pairs demo digits_mnistm ...]
[--seeds 2] [--poolings avg flatten] [--oracle] [--quick] [--output PATH]
Writes benchmarks/results/encoder_pooling.json.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import command_line, write_results  # noqa: E402

POOLINGS = ("avg", "flatten")
DEFAULT_PAIRS = ("demo", "digits_mnistm", "fonts_digits", "digits_svhnlike")


def load(pair: str, limit: int | None) -> dict:
    """Arrays ``xs, ys, xs_test, ys_test, xt, xt_test, yt_test`` (uint8 images)."""
    if pair == "demo":
        from keras_transfer.cli._data import load_labelled
        from keras_transfer.config import DataConfig

        src = load_labelled(DataConfig(source="digits", image_size=32))
        tgt = load_labelled(DataConfig(source="digits_target", image_size=32))
        data = {
            "xs": src.x_train,
            "ys": src.y_train,
            "xs_test": src.x_val,
            "ys_test": src.y_val,
            "xt": tgt.x_train,
            "yt": tgt.y_train,  # read only by --oracle
            "xt_test": tgt.x_val,
            "yt_test": tgt.y_val,
        }
    else:  # the registered and held-out pairs, as the adaptation benchmark reads them
        from domain_adaptation import load_pair

        data = load_pair(pair, size=32, seed=0, limit=None)
    if limit:
        data = {k: v[:limit] for k, v in data.items() if not isinstance(v, (str, int))}
    return data


def accuracy(model, x, y) -> float:
    probabilities = model.predict(np.asarray(x, "float32"), verbose=0)
    return float(np.mean(probabilities.argmax(-1) == np.asarray(y)))


def run_pair(pair: str, args, workdir: str) -> list[dict]:
    import keras_transfer as kt
    from keras_transfer._backend import keras
    from keras_transfer.pretrain import pretrain_preset

    data = load(pair, args.limit)
    preset = os.path.join(workdir, f"{pair}_preset")
    keras.utils.set_random_seed(0)
    start = time.perf_counter()
    pretrained = pretrain_preset(
        data["xs"],
        data["ys"],
        preset,
        x_val=data["xs_test"],
        y_val=data["ys_test"],
        epochs=args.pretrain_epochs,
        # the jitter from the first step, as when the committed file was run
        # (before stop 43's ramp, benchmarks/pretrain_augmentation.py)
        augment_warmup=0.0,
        seed=0,
    )
    print(
        f"{pair}: preset pretrained in {time.perf_counter() - start:.0f} s "
        f"(held-out source accuracy {pretrained.val_accuracy:.3f})",
        flush=True,
    )

    def train(source, method, pooling, seed):
        keras.utils.set_random_seed(seed)
        return kt.adapt(
            f"keras_hub:{preset}",
            source,
            data["xt"],
            method=method,
            pooling=pooling,
            input_shape=data["xs"].shape[1:],  # as the CLI gives it
            unfreeze_depth="all",
            seed=seed,
            verbose=0,
            **({"epochs": args.epochs} if args.epochs else {}),
        )

    rows = []
    for seed in range(args.seeds):
        for pooling in args.poolings:
            start = time.perf_counter()
            result = train((data["xs"], data["ys"]), "auto", pooling, seed)
            seconds = time.perf_counter() - start
            source_only = result.candidate_model("source_only")
            row = {
                "pair": pair,
                "seed": seed,
                "pooling": pooling,
                "auto_choice": result.method,
                "auto_target": accuracy(result.model, data["xt_test"], data["yt_test"]),
                "source_only_target": accuracy(
                    source_only, data["xt_test"], data["yt_test"]
                ),
                "auto_source": accuracy(result.model, data["xs_test"], data["ys_test"]),
                "feature_dims": int(result.training_model.encoder.output_shape[-1]),
                "agreement": result.selection.get("agreement"),
                "seconds": seconds,
            }
            if args.oracle:  # the same recipe trained on the labelled target
                oracle = train((data["xt"], data["yt"]), "source_only", pooling, seed)
                row["oracle_target"] = accuracy(
                    oracle.model, data["xt_test"], data["yt_test"]
                )
                row["auto_gap_closed"] = gap_closed(row)
            rows.append(row)
            print(
                f"{pair:14s} seed {seed} {pooling:7s} source-only "
                f"{row['source_only_target']:.3f}  auto ({result.method}) "
                f"{row['auto_target']:.3f}  held-out source {row['auto_source']:.3f}"
                f"  {row['feature_dims']} dims  {seconds:.0f} s",
                flush=True,
            )
    return rows


def gap_closed(e: dict) -> float | None:
    """Share of the source-only -> oracle gap that `auto` closes (None: no gap)."""
    gap = e["oracle_target"] - e["source_only_target"]
    return (e["auto_target"] - e["source_only_target"]) / gap if gap > 0 else None


def summarize(rows: list[dict], poolings=POOLINGS) -> dict:
    """Per pair and pooling: mean accuracies; the second pooling's `auto` gain
    over the first's, in points."""
    out = {}
    first, second = poolings
    for pair in dict.fromkeys(r["pair"] for r in rows):
        entry = {}
        for pooling in poolings:
            mine = [r for r in rows if r["pair"] == pair and r["pooling"] == pooling]
            keys = ["source_only_target", "auto_target", "auto_source"]
            keys += ["oracle_target"] if all("oracle_target" in r for r in mine) else []
            entry[pooling] = {
                key: float(np.mean([r[key] for r in mine])) for key in keys
            }
            if "oracle_target" in entry[pooling]:  # the measure, on the means
                entry[pooling]["auto_gap_closed"] = gap_closed(entry[pooling])
        entry[f"auto_{second}_minus_{first}_points"] = 100 * (
            entry[second]["auto_target"] - entry[first]["auto_target"]
        )
        out[pair] = entry
    return out


def main(argv: list[str] | None = None) -> int:
    import warnings

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", nargs="+", default=list(DEFAULT_PAIRS))
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument(
        "--poolings",
        nargs=2,
        default=list(POOLINGS),
        choices=("avg", "max", "flatten", "auto"),
    )
    parser.add_argument("--epochs", type=int, default=None, help="adapt's default")
    parser.add_argument("--pretrain-epochs", type=int, default=30)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument(
        "--oracle",
        action="store_true",
        help="also train the same recipe on the labelled target (train-on-target), "
        "per seed and pooling, and report the share of its gap auto closes",
    )
    parser.add_argument("--quick", action="store_true", help="tiny smoke run")
    parser.add_argument("--output", default=None, help="JSON path (default: results)")
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds, args.pretrain_epochs = 1, 1
        args.epochs = args.epochs or 2
        args.limit = args.limit or 120
    warnings.filterwarnings("ignore", message="adapt: the .* candidates agree")
    rows = []
    with tempfile.TemporaryDirectory() as workdir:
        for pair in args.pairs:
            rows.extend(run_pair(pair, args, workdir))
    summary = summarize(rows, tuple(args.poolings))
    print(
        "\n| pair | pooling | source-only | auto | held-out source | oracle | gap closed |"
    )
    print("|---|---|---:|---:|---:|---:|---:|")
    for pair, entry in summary.items():
        for pooling in args.poolings:
            e = entry[pooling]
            oracle = e.get("oracle_target")
            closed = e.get("auto_gap_closed")
            print(
                f"| {pair} | {pooling} | {e['source_only_target']:.3f} | "
                f"{e['auto_target']:.3f} | {e['auto_source']:.3f} | "
                f"{'–' if oracle is None else f'{oracle:.3f}'} | "
                f"{'–' if closed is None else f'{100 * closed:.0f}%'} |"
            )
    payload = {
        "command": command_line("encoder_pooling.py", argv),
        "config": {
            "pairs": args.pairs,
            "seeds": args.seeds,
            "epochs": args.epochs,
            "pretrain_epochs": args.pretrain_epochs,
            "poolings": args.poolings,
            "oracle": args.oracle,
            "limit": args.limit,
        },
        "runs": rows,
        "summary": summary,
    }
    print("wrote", write_results("encoder_pooling", payload, args.output))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
