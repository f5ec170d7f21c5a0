"""`benchmarks/adapt_streaming.py` runs end to end on tens of small images."""

import json

import pytest


@pytest.mark.large
def test_smoke_run_writes_both_modes_and_the_claims(tmp_path, load_benchmark):
    module = load_benchmark("adapt_streaming")
    out = tmp_path / "as.json"
    argv = ["--images", "30", "--size", "32", "--epochs", "2", "--repeats", "1"]
    assert module.main([*argv, "--in-process", "--output", str(out)]) == 0
    result = json.loads(out.read_text())
    assert [r["mode"] for r in result["runs"]] == ["stream", "memory"]
    assert all(r["method"] == "mcc" and r["seconds"] > 0 for r in result["runs"])
    summary = result["summary"]
    assert set(summary["claims"]) == {
        "S1_peak_memory_saved_at_least_0.8x_decoded",
        "S2_time_at_most_1.5x",
        "S3_accuracies_within_5_points",
    }
    best = result["best"]
    ratio = best["stream"]["seconds"] / best["memory"]["seconds"]
    assert summary["time_ratio_stream_over_memory"] == pytest.approx(ratio)
    assert summary["claims"]["S2_time_at_most_1.5x"] == (ratio <= 1.5)
    assert result["command"].startswith("python benchmarks/adapt_streaming.py")


@pytest.mark.large
def test_smoke_run_of_the_dataset_pipeline_spills_and_compares(
    tmp_path, load_benchmark
):
    module = load_benchmark("adapt_streaming")
    out = tmp_path / "asd.json"
    argv = ["--images", "30", "--size", "32", "--epochs", "2", "--repeats", "1"]
    argv += ["--pipeline", "dataset", "--in-process", "--output", str(out)]
    assert module.main(argv) == 0
    result = json.loads(out.read_text())
    assert [r["mode"] for r in result["runs"]] == ["spill", "memory"]
    assert all(r["pipeline"] == "dataset" for r in result["runs"])
    summary = result["summary"]
    assert set(summary["claims"]) == {
        "D1_peak_memory_saved_at_least_0.8x_decoded",
        "D2_time_at_most_1.5x",
        "D3_accuracies_within_5_points",
    }
    best = result["best"]
    ratio = best["spill"]["seconds"] / best["memory"]["seconds"]
    assert summary["time_ratio_spill_over_memory"] == pytest.approx(ratio)
    # 30 + 30 images of 32 px are far below 512 MiB: nothing spills, so both
    # modes train on the same arrays and agree exactly
    assert best["spill"]["target_accuracy"] == best["memory"]["target_accuracy"]
