"""benchmarks/target_bn_source_drop.py: pairing, deduplication, the split."""

import json

import pytest


@pytest.fixture(scope="module")
def bench(load_benchmark):
    return load_benchmark("target_bn_source_drop")


def _row(method, seed, source, target, pair="p"):
    return {
        "pair": pair,
        "method": method,
        "seed": seed,
        "source_accuracy": source,
        "target_accuracy": target,
    }


def _write(path, runs):
    path.write_text(json.dumps({"runs": runs}))


def test_rows_pair_with_their_twin_and_split_by_the_source_drop(
    bench, tmp_path, capsys
):
    runs = [
        # Source fell 10 points, target rose 20: a guard would undo +20.
        _row("cdan", 0, 0.95, 0.30),
        _row("cdan[target_bn]", 0, 0.85, 0.50),
        # Source fell 1 point, target fell 5.
        _row("mcc", 0, 0.95, 0.60),
        _row("mcc[target_bn]", 0, 0.94, 0.55),
        # No twin: ignored.
        _row("bnm[target_bn]", 0, 0.90, 0.40),
    ]
    _write(tmp_path / "domain_adaptation_a.json", runs)
    # The same runs in a second file are counted once.
    _write(tmp_path / "domain_adaptation_b.json", runs)
    (tmp_path / "domain_adaptation_c.json").write_text(json.dumps({"summary": {}}))
    out = tmp_path / "out.json"
    assert bench.main(["--results", str(tmp_path), "--output", str(out)]) == 0
    summary = json.loads(out.read_text())
    dropped, kept = summary["source_dropped"], summary["source_kept"]
    assert dropped["rows"] == 1 and kept["rows"] == 1
    assert dropped["target_change_mean_points"] == pytest.approx(20.0)
    assert kept["target_change_mean_points"] == pytest.approx(-5.0)
    assert kept["rows_where_target_fell_over_2_points"] == 1
    assert summary["dropped_rows"][0]["method"] == "cdan"
    assert "2 (pair, method, seed) rows from 3 files" in capsys.readouterr().out


def test_refuses_an_empty_results_dir_and_a_bad_threshold(bench, tmp_path):
    with pytest.raises(SystemExit):
        bench.main(["--results", str(tmp_path)])
    with pytest.raises(SystemExit):
        bench.main(["--threshold", "2"])
