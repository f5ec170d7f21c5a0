"""The demo's numbers over seeds: `keras_transfer.demo.run_demo`, quick and full.

Runs ``run_demo(seed=s, quick=q)`` for every seed and mode and records, on the 270
target test images: the source model with no target label, the preset fine-tuned on
10 labelled target examples per class vs the same network from scratch, the
unsupervised adaptation step (`adapt_to_target`: the same network and `adapt` recipe
on the source alone vs adapted with the unlabelled target images; no target label),
and the TFLite int8 file the demo ships (which model, int8 mode, ops kept in float,
agreement and accuracy on the target test split, size against a float32 export of
the same model). ``seconds`` is the whole run, export included. docs/cli.md ("The
demo") quotes this file.

Usage: python benchmarks/demo.py [--seeds 3] [--modes quick full]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import write_results  # noqa: E402

COMMAND = "python benchmarks/demo.py"


def _export_row(result) -> dict:
    """The demo's export summary plus the size of a float32 file of the same model."""
    from keras_transfer.export import export_tflite
    from keras_transfer.saving import load_model

    row = result.to_json()["export"]
    path = (
        result.adaptation["model_path"]
        if row["model"] == "adapted"
        else result.model_path
    )
    with tempfile.TemporaryDirectory() as tmp:
        float32 = export_tflite(
            load_model(path, compile=False), tmp, verify=False, overwrite=True
        )
    row["float32_size_bytes"] = float32.size_bytes
    row["size_ratio_vs_float32"] = float32.size_bytes / row["size_bytes"]
    row["accuracy_drop_points"] = 100 * (row["keras_accuracy"] - row["tflite_accuracy"])
    return row


def main(argv=None) -> dict:
    from keras_transfer.demo import ADAPT_SETTINGS, SETTINGS, run_demo

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument(
        "--modes", nargs="+", default=["quick", "full"], choices=["quick", "full"]
    )
    args = parser.parse_args(argv)
    rows = []
    for mode in args.modes:
        for seed in range(args.seeds):
            out = tempfile.mkdtemp(prefix=f"kt-demo-{mode}-{seed}-")
            r = run_demo(
                output_dir=out,
                quick=mode == "quick",
                seed=seed,
                verbose=0,
            )
            row = {
                "mode": mode,
                "seed": seed,
                "source_test_accuracy": r.source_accuracy,
                "source_model_on_target": r.extra["source_only_accuracy"],
                "fine_tuned": r.transfer_accuracy,
                "scratch": r.scratch_accuracy,
                "adapt_source_only": r.adaptation["source_only"],
                "adapted": r.adaptation["adapted"],
                "adapt_method": r.adaptation["method"],
                "adapt_held_out_source": r.adaptation["source_accuracy"],
                "seconds": r.seconds,
                "export": _export_row(r),
            }
            rows.append(row)
            print(
                f"{mode} seed {seed}: fine-tuned {row['fine_tuned']:.3f} vs scratch "
                f"{row['scratch']:.3f}; adapted ({row['adapt_method']}) "
                f"{row['adapted']:.3f} vs source only {row['adapt_source_only']:.3f}; "
                f"ships {row['export']['model']} {row['export']['quantization']} "
                f"({row['export']['int8_mode']}, {row['export']['float_ops']} float "
                f"ops, {row['export']['size_ratio_vs_float32']:.2f}x smaller than "
                f"float32, agreement {row['export']['top1_agreement']:.3f})",
                flush=True,
            )
    summary = {}
    for mode in args.modes:
        mine = [r for r in rows if r["mode"] == mode]
        gains = [r["adapted"] - r["adapt_source_only"] for r in mine]
        summary[mode] = {
            "fine_tune_gain_mean": statistics.mean(
                r["fine_tuned"] - r["scratch"] for r in mine
            ),
            "adapt_gain_mean": statistics.mean(gains),
            "adapt_gain_min": min(gains),
            "adapted_mean": statistics.mean(r["adapted"] for r in mine),
            "adapt_source_only_mean": statistics.mean(
                r["adapt_source_only"] for r in mine
            ),
            "export_agreement_min": min(r["export"]["top1_agreement"] for r in mine),
            "export_size_ratio_min": min(
                r["export"]["size_ratio_vs_float32"] for r in mine
            ),
            "export_accuracy_drop_points_max": max(
                r["export"]["accuracy_drop_points"] for r in mine
            ),
            "export_modes": sorted(
                {
                    f"{r['export']['quantization']}/{r['export']['int8_mode']}"
                    for r in mine
                }
            ),
        }
        print(f"{mode}: {summary[mode]}")
    path = write_results(
        "demo",
        {
            "command": f"{COMMAND} --seeds {args.seeds} --modes {' '.join(args.modes)}",
            "settings": {"epochs": SETTINGS, "adapt": ADAPT_SETTINGS},
            "rows": rows,
            "summary": summary,
        },
    )
    print(f"wrote {path}")
    return summary


if __name__ == "__main__":
    main()
