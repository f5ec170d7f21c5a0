"""`benchmarks/cached_features.py --quick`: both rows, KerasHub preset included."""

import pytest


@pytest.mark.large
def test_quick_run_compares_both_backbones_cached_and_uncached(load_benchmark):
    result = load_benchmark("cached_features").main(["--quick", "--no-write"])
    rows = {row["spec"]: row for row in result["backbones"]}
    assert set(rows) == {
        "keras_applications:MobileNetV3Small",
        "keras_hub:<local preset>",
    }
    for row in rows.values():
        plain, cached = row["runs"]
        assert (plain["cache_features"], cached["cache_features"]) == (False, "auto")
        # "auto" really used the cache (it logs so) and the plain run did not.
        assert (plain["cache_used"], cached["cache_used"]) == (False, True)
        # Same seed and initial weights: the same head, loss curve and accuracy.
        assert row["head_weights_max_abs_diff"] < 1e-6
        assert cached["train_loss"] == pytest.approx(plain["train_loss"], abs=1e-5)
        assert abs(row["test_accuracy_diff"]) < 1e-6
        assert len(plain["train_loss"]) == result["epochs"] == 2
        ratio = plain["seconds"] / cached["seconds"]
        assert row["time_ratio_uncached_over_cached"] == pytest.approx(ratio)
    assert result["image_size"] == 32 and result["train_examples"] == 156
