"""benchmarks/agreement.py: auto's choice per run, the bins, the claims and rule J."""

import json

import pytest


@pytest.fixture(scope="module")
def agreement(load_benchmark):
    return load_benchmark("agreement")


def _run(pair, seed, method, target, ensv=None, trained=None):
    row = {
        "pair": pair,
        "seed": seed,
        "method": method,
        "target_accuracy": target,
        "trained_method": trained or method,
    }
    if ensv is not None:
        row["scores"] = {"ensv": ensv, "dev": 0.0}
    return row


def _file(tmp_path, name, rows):
    path = tmp_path / name
    path.write_text(json.dumps({"runs": rows}))
    return str(path)


def _pool(pair, seed, agreements, accuracies, chosen=None):
    rows = [
        _run(pair, seed, m, acc, ensv)
        for m, ensv, acc in zip(("bnm", "dann", "mcc"), agreements, accuracies)
    ]
    rows.append(_run(pair, seed, "oracle", 0.99))  # not a candidate
    if chosen:  # auto's own choice, e.g. when the best EnsV was below the floor
        rows.append(_run(pair, seed, "auto_all[ensv]", 0.0, trained=chosen))
    return rows


def test_auto_choice_bins_and_claims(agreement, tmp_path):
    rows = [
        *_pool("a", 0, (0.95, 0.90, 0.80), (0.91, 0.85, 0.60)),  # bnm: 0.95 -> 0.91
        *_pool("a", 1, (0.95, 0.70, 0.60), (0.30, 0.40, 0.50), chosen="dann"),
        *_pool("b", 0, (0.50, 0.60, 0.40), (0.10, 0.15, 0.05)),  # dann: 0.60 -> 0.15
        _run("c", 0, "bnm", 0.5, 0.9),  # one candidate: no pool, left out
    ]
    runs = agreement.chosen_runs(_file(tmp_path, "r.json", rows))
    assert runs[("a", 0)] == {
        "agreement": 0.95,
        "accuracy": 0.91,
        "method": "bnm",
        "pool": 3,
    }
    assert runs[("a", 1)]["method"] == "dann" and runs[("a", 1)]["agreement"] == 0.70
    assert runs[("b", 0)]["accuracy"] == 0.15 and ("c", 0) not in runs
    bins = agreement.binned(list(runs.values()), 0.9)
    assert bins["at_or_above"]["runs"] == 1 and bins["below"]["runs"] == 2
    assert bins["below"]["accuracy_max"] == pytest.approx(0.40)
    assert agreement.claims(bins) == {
        "no_confident_run_below_0.70": True,
        "flagged_20_points_lower": True,
    }
    # a confident run below 0.70 breaks claim 1; one side empty: claim 2 untestable
    only_high = agreement.binned([{"agreement": 0.95, "accuracy": 0.6}], 0.9)
    assert agreement.claims(only_high) == {
        "no_confident_run_below_0.70": False,
        "flagged_20_points_lower": None,
    }


def test_rule_j_keeps_the_run_with_the_higher_agreement(agreement, tmp_path):
    a = _file(
        tmp_path,
        "a.json",
        [
            *_pool("p", 0, (0.95, 0.5, 0.5), (0.90, 0.1, 0.1)),
            *_pool("p", 1, (0.60, 0.5, 0.5), (0.20, 0.1, 0.1)),
        ],
    )
    b = _file(
        tmp_path,
        "b.json",
        [
            *_pool("p", 0, (0.90, 0.5, 0.5), (0.80, 0.1, 0.1)),
            *_pool("p", 1, (0.92, 0.5, 0.5), (0.85, 0.1, 0.1)),
            *_pool("q", 0, (0.92, 0.5, 0.5), (0.85, 0.1, 0.1)),  # only in b: skipped
        ],
    )
    out = agreement.main(["--jitter-pairs", a, b, "--output", str(tmp_path / "o")])
    (row,) = out["rule_j"]["pairs"]
    assert row["pair"] == "p" and row["picked"] == "ab"
    assert row["rule_j"] == pytest.approx((0.90 + 0.85) / 2)
    assert row["a"] == pytest.approx(0.55) and row["b"] == pytest.approx(0.825)
    # J′ switches to b only where b's agreement also clears the threshold (0.92)
    assert row["picked_floor"] == "ab"
    strict = agreement.main(["--jitter-pairs", a, b, "--threshold", "0.99"])
    assert strict["rule_j"]["pairs"][0]["picked_floor"] == "aa"
    assert strict["rule_j"]["pairs"][0]["rule_j_floor"] == pytest.approx(0.55)
    saved = json.loads((tmp_path / "o").read_text())
    assert saved["rule_j"]["mean_over_pairs"]["rule_j"] == pytest.approx(0.875)
    with pytest.raises(SystemExit):
        agreement.main(["--jitter-pairs", a])
