"""The adapt step-time benchmark times every variant side by side and writes JSON."""

import json

import pytest


@pytest.fixture(scope="module")
def bench(load_benchmark):
    return load_benchmark("adapt_step_time")


def test_variants_use_adapts_method_defaults(bench):
    from keras_transfer.adaptation.candidates import METHOD_DEFAULTS

    built = {name: make() for name, make in bench.variants().items()}
    assert built["source_only"] is None
    assert built["dann"].hidden_units == tuple(METHOD_DEFAULTS["dann"]["hidden_units"])
    assert built["dann_256"].hidden_units == (256, 256)


def test_a_short_run_writes_rows_and_prints_the_target_line(bench, tmp_path, capsys):
    out = tmp_path / "steps.json"
    argv = ["--steps", "2", "--rounds", "1", "--variants", "source_only", "dann"]
    assert bench.main([*argv, "--output", str(out)]) == 0
    payload = json.loads(out.read_text())
    rows = payload["rows"]
    assert set(rows) == {"source_only", "dann"}
    assert rows["source_only"]["ratio_fastest"] == pytest.approx(1.0)
    assert rows["dann"]["method_parameters"] > 0
    assert len(rows["dann"]["epoch_seconds"]) == 1
    printed = capsys.readouterr().out
    assert "DANN (the recipe's default)" in printed and str(out) in printed
    assert bench.main(["--table", "--output", str(out)]) == 0
    with pytest.raises(SystemExit):
        bench.main(["--variants", "dann", "--output", str(out)])  # no baseline
