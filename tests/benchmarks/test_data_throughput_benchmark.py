"""`benchmarks/data_throughput.py` runs end to end on tens of images."""

import json

import pytest


@pytest.mark.large
def test_smoke_run_writes_every_row(tmp_path, load_benchmark):
    module = load_benchmark("data_throughput")
    out = tmp_path / "dt.json"
    argv = ["--images", "20", "--size", "32", "--before", "5", "--repeats", "1"]
    argv += ["--steps", "2", "--fit-steps", "2", "--output", str(out)]
    assert module.main(argv) == 0
    result = json.loads(out.read_text())
    rows = result["rows"]
    assert set(rows) == {
        "keras_utils",
        "from_directory",
        "cli_stream",
        "cli_before",
        "model_step",
        "fit_streamed",
    }
    assert rows["from_directory"]["images"] == rows["cli_stream"]["images"] == 20
    assert rows["cli_stream"]["streamed"] is True
    assert all(row["images_per_s"] > 0 for row in rows.values())
    assert result["target_met"] == (
        min(
            result["ratios"]["from_directory_over_model_step"],
            result["ratios"]["cli_stream_over_model_step"],
        )
        >= 1.5
    )
