"""The reverse-validation timing benchmark runs both paths and writes JSON."""

import json


def test_quick_run_times_both_paths_and_compares_their_scores(load_benchmark, tmp_path):
    bench = load_benchmark("reverse_validation_time")
    out = tmp_path / "rv.json"
    assert bench.main(["--quick", "--output", str(out)]) == 0
    (row,) = json.loads(out.read_text())["runs"]
    assert row["target_examples"] == 64 and row["candidates"] == 5
    assert set(row["scores_shared"]) == set(bench.LABELLINGS)
    # the shared model reproduces a fresh model per candidate, score for score
    assert row["identical_scores"] is True
    assert row["scores_shared"] == row["scores_fresh"]
    assert row["shared_over_fresh"] == row["shared_seconds"] / row["fresh_seconds"]


def test_labellings_keep_noise_and_permute_classes(load_benchmark):
    import numpy as np

    bench = load_benchmark("reverse_validation_time")
    y = np.arange(1000) % 10
    out = bench.labellings(y, 10)
    agree = {k: float(np.mean(v.argmax(-1) == y)) for k, v in out.items()}
    assert agree["exact"] == 1.0
    assert agree["exact"] > agree["noise_10"] > agree["noise_30"] > agree["noise_50"]
    assert agree["permuted"] < 0.2
