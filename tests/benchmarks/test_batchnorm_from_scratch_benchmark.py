"""The BatchNorm-momentum benchmark runs both settings from one seed and writes JSON."""

import json

import pytest


def test_quick_run_pairs_auto_and_own_momentum(load_benchmark, tmp_path):
    bench = load_benchmark("batchnorm_from_scratch")
    out = tmp_path / "bn.json"
    args = ["--quick", "--seeds", "1", "--backbones", "cnn_bn", "--datasets", "digits"]
    assert bench.main([*args, "--limit", "48", "--output", str(out)]) == 0
    payload = json.loads(out.read_text())
    rows = payload["rows"]
    assert [r["momentum"] for r in rows] == ["auto", "own"]
    assert [r["momenta"] for r in rows] == [[0.9], [0.99]]  # the CNN's own: Keras'
    assert rows[0]["max_weight_difference"] == 0.0  # the momentum does not train
    assert rows[0]["train_accuracy_fit"] == rows[1]["train_accuracy_fit"]
    summary = payload["summary"]["digits/cnn_bn"]
    expected = 100 * (rows[0]["test_accuracy"] - rows[1]["test_accuracy"])
    assert summary["auto_minus_own_points"] == pytest.approx(expected)


def test_committed_results_hold_the_rows_the_docs_quote(load_benchmark):
    bench = load_benchmark("batchnorm_from_scratch")
    path = bench.os.path.join(bench.os.path.dirname(bench.__file__), "results")
    with open(bench.os.path.join(path, "batchnorm_from_scratch.json")) as f:
        payload = json.load(f)
    rows = payload["rows"]
    assert len(rows) == 3 * 4 * 2 * 2  # datasets x backbones x seeds x settings
    assert max(r["max_weight_difference"] for r in rows) == 0.0
    assert payload["summary"]["digits/mobilenet_v3_small"]["auto"] > 0.9
