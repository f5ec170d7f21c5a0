"""The pretraining-jitter benchmark runs both schedules and writes JSON."""

import json


def test_quick_run_pretrains_with_and_without_the_ramp(load_benchmark, tmp_path):
    bench = load_benchmark("pretrain_augmentation")
    out = tmp_path / "pa.json"
    assert bench.main(["--quick", "--output", str(out)]) == 0
    payload = json.loads(out.read_text())
    rows = payload["runs"]
    assert [r["augment_warmup"] for r in rows] == [0.0, 0.3]
    for row in rows:
        assert row["pair"] == "digits_mnistm" and row["epochs"] == 2
        assert 0.0 <= row["source_accuracy"] <= 1.0
        assert 0.0 <= row["target_accuracy"] <= 1.0
        assert len(row["train_accuracy_per_epoch"]) == 2
    cell = payload["summary"]["digits_mnistm"]["2"]
    assert set(cell) == {"0.0", "0.3"}
    assert cell["0.3"]["source_accuracy"] == rows[1]["source_accuracy"]


def test_take_off_epoch_is_the_first_past_three_times_chance(load_benchmark):
    bench = load_benchmark("pretrain_augmentation")
    assert bench.take_off_epoch([0.1, 0.2, 0.31, 0.9], 0.1) == 3
    assert bench.take_off_epoch([0.1, 0.1], 0.1) is None


def test_initializers_are_variants_of_their_own(load_benchmark, tmp_path):
    bench = load_benchmark("pretrain_augmentation")
    out = tmp_path / "pi.json"
    argv = ["--quick", "--warmups", "0.3", "--initializers", "keras_hub", "he_normal"]
    assert bench.main([*argv, "--output", str(out)]) == 0
    payload = json.loads(out.read_text())
    rows = payload["runs"]
    assert [r["conv_initializer"] for r in rows] == [None, "he_normal"]
    assert payload["config"]["initializers"] == ["keras_hub", "he_normal"]
    cell = payload["summary"]["digits_mnistm"]["2"]
    assert set(cell) == {"0.3", "0.3/he_normal"}
    assert cell["0.3/he_normal"]["source_accuracy"] == rows[1]["source_accuracy"]
