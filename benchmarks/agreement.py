"""Does `auto`'s label-free agreement track target accuracy? Read off results files.

`adapt(method="auto")` trains several candidates and keeps the one EnsV ranks first;
its EnsV score (the share of target examples on which it predicts the candidates'
mean class) is recorded as ``selection["agreement"]``, and below
`keras_transfer.adaptation.LOW_AGREEMENT` `adapt` warns. This script trains nothing:
it reads `benchmarks/domain_adaptation.py` results files and prints, for every
(pair, seed) run with at least three candidates,

1. the chosen candidate's agreement against its target-test accuracy (binned at the
   threshold, with Spearman's rank correlation);
2. the two claims of docs/domain_adaptation.md ("When auto's candidates disagree"),
   checked on the files given with ``--check``: no run at or above the threshold
   under 0.70 target accuracy, and runs below it at least 20 points lower on average;
3. with ``--jitter-pairs A B``: rule J, which keeps, per (pair, seed), whichever of two
   runs (results file A and B, e.g. two source jitters) has the higher agreement,
   against always A and always B (mean target accuracy over the pairs in both), and
   beside it J′, which switches from A to B only where B's agreement is also at or
   above ``--threshold``.

    python benchmarks/agreement.py --read benchmarks/results/domain_adaptation_*.json
    python benchmarks/agreement.py --read OLD.json ... --check NEW.json ...
    python benchmarks/agreement.py --jitter-pairs A.json B.json --output out.json

The candidates a run's ``auto`` chose among are the rows of one (pair, seed) that are
not ``auto*`` or ``oracle`` and have an ``ensv`` score (the pool every row was scored
against); the chosen one is the file's ``auto_all[ensv]`` row's (`adapt`'s choice, which
skips candidates below the collapse guard's floor), else the highest EnsV.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))

MIN_POOL = 3
CLAIM_FLOOR = 0.70
CLAIM_GAP = 0.20


def chosen_runs(path: str) -> dict[tuple[str, int], dict]:
    """``(pair, seed) -> {"agreement", "accuracy", "method", "pool"}`` of one file."""
    data = json.loads(Path(path).read_text())
    by = defaultdict(list)
    for row in data["runs"]:
        by[(row["pair"], row["seed"])].append(row)
    out = {}
    for key, rows in by.items():
        pool = [
            r
            for r in rows
            if "ensv" in (r.get("scores") or {})
            and not r["method"].startswith("auto")
            and r["method"] != "oracle"
        ]
        if len(pool) < MIN_POOL:
            continue
        best = max(pool, key=lambda r: r["scores"]["ensv"])
        ensv = [r for r in rows if r["method"] == "auto_all[ensv]"]
        if ensv:  # auto's own choice (it skips candidates below the guard's floor)
            best = next(r for r in pool if r["method"] == ensv[0]["trained_method"])
        out[key] = {
            "agreement": float(best["scores"]["ensv"]),
            "accuracy": float(best["target_accuracy"]),
            "method": best["method"],
            "pool": len(pool),
        }
    return out


def binned(runs: list[dict], threshold: float) -> dict:
    """Runs below / at or above the threshold: count and target accuracy spread."""
    from scipy.stats import spearmanr

    out = {}
    for name, keep in (
        ("below", lambda a: a < threshold),
        ("at_or_above", lambda a: a >= threshold),
    ):
        acc = np.array([r["accuracy"] for r in runs if keep(r["agreement"])])
        out[name] = (
            {"runs": 0}
            if not len(acc)
            else {
                "runs": int(len(acc)),
                "accuracy_min": float(acc.min()),
                "accuracy_median": float(np.median(acc)),
                "accuracy_mean": float(acc.mean()),
                "accuracy_max": float(acc.max()),
            }
        )
    if len(runs) > 2:
        rho = spearmanr([r["agreement"] for r in runs], [r["accuracy"] for r in runs])
        out["spearman"] = float(rho.statistic)
    return out


def claims(bins: dict) -> dict:
    """The two committed claims on one set of runs (None: not testable)."""
    high, low = bins["at_or_above"], bins["below"]
    floor = None if not high["runs"] else high["accuracy_min"] >= CLAIM_FLOOR
    gap = None
    if high["runs"] and low["runs"]:
        gap = high["accuracy_mean"] - low["accuracy_mean"] >= CLAIM_GAP
    return {"no_confident_run_below_0.70": floor, "flagged_20_points_lower": gap}


def rule_j(a: dict, b: dict, floor: float | None = None) -> dict:
    """Per (pair, seed): keep the run with the higher agreement; means over pairs.

    With ``floor``, also J′: switch from ``a`` (the default setting) to ``b`` only
    when ``b``'s agreement is at or above ``floor`` and above ``a``'s.
    """
    pairs = sorted({p for p, _ in a} & {p for p, _ in b})
    keys = ("a", "b", "rule_j", *(("rule_j_floor",) if floor is not None else ()))
    rows, means = [], {k: [] for k in (*keys, "best_fixed_per_pair")}
    for pair in pairs:
        seeds = sorted({s for p, s in a if p == pair} & {s for p, s in b if p == pair})
        acc = {k: [] for k in keys}
        picked, picked_floor = [], []
        for seed in seeds:
            ra, rb = a[(pair, seed)], b[(pair, seed)]
            pick = "a" if ra["agreement"] >= rb["agreement"] else "b"
            picked.append(pick)
            acc["a"].append(ra["accuracy"])
            acc["b"].append(rb["accuracy"])
            acc["rule_j"].append((ra if pick == "a" else rb)["accuracy"])
            if floor is not None:
                switch = pick == "b" and rb["agreement"] >= floor
                picked_floor.append("b" if switch else "a")
                acc["rule_j_floor"].append((rb if switch else ra)["accuracy"])
        row = {k: float(np.mean(v)) for k, v in acc.items()}
        row.update(pair=pair, seeds=len(seeds), picked="".join(picked))
        if floor is not None:
            row["picked_floor"] = "".join(picked_floor)
        rows.append(row)
        for key in keys:
            means[key].append(row[key])
        means["best_fixed_per_pair"].append(max(row["a"], row["b"]))
    summary = {k: float(np.mean(v)) for k, v in means.items() if v}
    return {"pairs": rows, "mean_over_pairs": summary, "floor": floor}


def main(argv=None) -> dict:
    from keras_transfer.adaptation import LOW_AGREEMENT

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--read", nargs="*", default=[], help="files the rule saw")
    parser.add_argument("--check", nargs="*", default=[], help="files it did not see")
    parser.add_argument("--jitter-pairs", nargs="*", default=[], metavar="A B")
    parser.add_argument("--threshold", type=float, default=LOW_AGREEMENT)
    parser.add_argument("--output", default=None)
    args = parser.parse_args(argv)
    if len(args.jitter_pairs) % 2:
        parser.error("--jitter-pairs takes files two by two: A B [A2 B2 ...]")
    out = {"threshold": args.threshold, "command": " ".join(sys.argv)}
    for group in ("read", "check"):
        files = getattr(args, group)
        if not files:
            continue
        runs = [r for f in files for r in chosen_runs(f).values()]
        bins = binned(runs, args.threshold)
        out[group] = {"files": files, **bins, "claims": claims(bins)}
        print(f"\n{group}: {len(runs)} runs from {len(files)} file(s)")
        for name in ("below", "at_or_above"):
            b = bins[name]
            if b["runs"]:
                print(
                    f"  agreement {name.replace('_', ' ')} {args.threshold}: "
                    f"{b['runs']} runs, target accuracy min {b['accuracy_min']:.3f} "
                    f"median {b['accuracy_median']:.3f} mean {b['accuracy_mean']:.3f} "
                    f"max {b['accuracy_max']:.3f}"
                )
            else:
                print(f"  agreement {name.replace('_', ' ')} {args.threshold}: 0 runs")
        if "spearman" in bins:
            print(f"  Spearman(agreement, target accuracy) {bins['spearman']:+.2f}")
        print(f"  claims: {out[group]['claims']}")
    if args.jitter_pairs:
        files = args.jitter_pairs
        a, b = {}, {}
        for i in range(0, len(files), 2):
            a.update(chosen_runs(files[i]))
            b.update(chosen_runs(files[i + 1]))
        out["rule_j"] = rule_j(a, b, floor=args.threshold)
        out["rule_j"]["files"] = files
        print(
            "\nrule J (per pair and seed, keep the run with the higher agreement); "
            f"J′ (switch to B only at agreement ≥ {args.threshold})"
        )
        print("| pair | A | B | rule J | picked | J′ | picked |")
        print("|---|---|---|---|---|---|---|")
        for row in out["rule_j"]["pairs"]:
            print(
                f"| {row['pair']} | {row['a']:.3f} | {row['b']:.3f} | "
                f"{row['rule_j']:.3f} | {row['picked']} | "
                f"{row['rule_j_floor']:.3f} | {row['picked_floor']} |"
            )
        m = out["rule_j"]["mean_over_pairs"]
        print(
            f"| mean over pairs | {m['a']:.3f} | {m['b']:.3f} | {m['rule_j']:.3f} | "
            f"best fixed per pair {m['best_fixed_per_pair']:.3f} | "
            f"{m['rule_j_floor']:.3f} | |"
        )
    if args.output:
        Path(args.output).write_text(json.dumps(out, indent=2) + "\n")
    return out


if __name__ == "__main__":
    main()
