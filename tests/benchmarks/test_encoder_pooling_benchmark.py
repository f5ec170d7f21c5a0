"""The encoder-pooling benchmark runs both poolings from one preset and writes JSON."""

import json

import pytest


@pytest.mark.large
def test_quick_run_compares_avg_and_flatten_from_one_preset(load_benchmark, tmp_path):
    bench = load_benchmark("encoder_pooling")
    out = tmp_path / "pooling.json"
    assert (
        bench.main(
            [
                "--quick",
                "--pairs",
                "demo",
                "--limit",
                "100",
                "--epochs",
                "1",
                "--output",
                str(out),
            ]
        )
        == 0
    )
    payload = json.loads(out.read_text())
    rows = payload["runs"]
    assert [r["pooling"] for r in rows] == ["avg", "flatten"]
    # the preset's 4x4 maps at 32 px: 128 channels pooled, 4 * 4 * 128 flattened
    assert [r["feature_dims"] for r in rows] == [128, 2048]
    for row in rows:
        for key in ("auto_target", "source_only_target", "auto_source"):
            assert 0.0 <= row[key] <= 1.0
    summary = payload["summary"]["demo"]
    expected = 100 * (rows[1]["auto_target"] - rows[0]["auto_target"])
    assert abs(summary["auto_flatten_minus_avg_points"] - expected) < 1e-9
