"""Transfer gain on the demo data: fine-tuning a source-pretrained backbone vs scratch.

Pretrains the demo's KerasHub VGG backbone on the source digits once, saves it as a
local preset, then for 10 / 50 / all labelled target examples per class trains
(a) the preset via `fine_tune` and (b) the same network from scratch, with the same
epochs, and reports target-test accuracy (mean ± std over seeds).

Usage: python benchmarks/transfer_gain.py [--quick] [--seeds 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from _common import write_results  # noqa: E402

from keras_transfer.backbones import load_backbone  # noqa: E402
from keras_transfer.datasets import digits_domains  # noqa: E402
from keras_transfer.demo import (  # noqa: E402
    few_shot_indices,
    pretrain_source_preset,
    train_target,
)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seeds", type=int, default=2)
    args = parser.parse_args(argv)
    pre, head, ft = (4, 2, 2) if args.quick else (20, 15, 25)
    seeds = 1 if args.quick else args.seeds
    shots_list = [10, 50, None]
    preset = os.path.join(tempfile.mkdtemp(prefix="kt-gain-"), "preset")
    source_acc = pretrain_source_preset(preset, epochs=pre, seed=0)
    _, target = digits_domains(seed=0)
    x_test = target.x_test.astype("float32")
    rows = []
    for shots in shots_list:
        transfer, scratch, seconds = [], [], []
        for seed in range(seeds):
            idx = few_shot_indices(target.y_train, shots, seed)
            x, y = target.x_train[idx].astype("float32"), target.y_train[idx]
            start = time.perf_counter()
            acc_t, _ = train_target(
                load_backbone(f"keras_hub:{preset}"),
                x,
                y,
                x_test,
                target.y_test,
                head_epochs=head,
                fine_tune_epochs=ft,
                seed=seed,
                transfer=True,
            )
            acc_s, _ = train_target(
                load_backbone(f"keras_hub:{preset}", load_weights=False),
                x,
                y,
                x_test,
                target.y_test,
                head_epochs=head,
                fine_tune_epochs=ft,
                seed=seed,
                transfer=False,
            )
            seconds.append(time.perf_counter() - start)
            transfer.append(acc_t)
            scratch.append(acc_s)

        def ms(v):
            return statistics.mean(v), (statistics.stdev(v) if len(v) > 1 else 0.0)

        row = {
            "shots_per_class": shots if shots is not None else "all",
            "n_train": len(few_shot_indices(target.y_train, shots, 0)),
            "transfer_mean_std": ms(transfer),
            "scratch_mean_std": ms(scratch),
            "gain_points": 100 * (statistics.mean(transfer) - statistics.mean(scratch)),
            "seconds": sum(seconds),
        }
        rows.append(row)
        print(
            f"shots/class={row['shots_per_class']!s:>4} n={row['n_train']:4d}  "
            f"fine-tuned {row['transfer_mean_std'][0]:.3f}±{row['transfer_mean_std'][1]:.3f}"
            f"  scratch {row['scratch_mean_std'][0]:.3f}±{row['scratch_mean_std'][1]:.3f}"
            f"  gain {row['gain_points']:+.1f} pts"
        )
    result = {
        "source_test_accuracy": source_acc,
        "epochs": {"pretrain": pre, "head": head, "fine_tune": ft},
        "seeds": seeds,
        "rows": rows,
    }
    print(f"results: {write_results('transfer_gain', result)}")
    return result


if __name__ == "__main__":
    main()
