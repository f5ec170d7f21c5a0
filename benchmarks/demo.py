"""The demo's numbers over seeds: `keras_transfer.demo.run_demo`, quick and full.

Runs ``run_demo(seed=s, quick=q, export=False)`` for every seed and mode and records,
on the 270 target test images: the source model with no target label, the preset
fine-tuned on 10 labelled target examples per class vs the same network from scratch,
and the unsupervised adaptation step (`adapt_to_target`: the same network and
`adapt` recipe on the source alone vs adapted with the unlabelled target images; no
target label). docs/cli.md ("The demo") quotes this file.

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
                export=False,
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
            }
            rows.append(row)
            print(
                f"{mode} seed {seed}: fine-tuned {row['fine_tuned']:.3f} vs scratch "
                f"{row['scratch']:.3f}; adapted ({row['adapt_method']}) "
                f"{row['adapted']:.3f} vs source only {row['adapt_source_only']:.3f}",
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
