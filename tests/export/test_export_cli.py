"""The export/evaluate/predict commands on a run directory: model size, run data,
atomic writes, summary merging, exports as predict inputs, clear errors."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import yaml

from keras_transfer.cli import main
from keras_transfer.cli._data import _split, load_labelled, read_images
from keras_transfer.cli._export import run_export, sample
from keras_transfer.cli._train import run_evaluate, run_predict
from keras_transfer.config import (
    ConfigError,
    DataConfig,
    EvaluateConfig,
    ExportConfig,
    PredictConfig,
)

SIZE = 24  # the model's size; the config defaults (32) must not be needed
CLASSES = ["cat", "dog", "owl"]


def _images(root: Path, per_class: int = 8, seed: int = 0) -> Path:
    from PIL import Image

    rng = np.random.default_rng(seed)
    for c, name in enumerate(CLASSES):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            img = rng.integers(0, 40, (30, 30, 3)) + 100 * c
            Image.fromarray(img.astype("uint8")).save(root / name / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """runs/r/: a 24-px 3-class model.keras, config.yaml and classes.json."""
    from keras_transfer._backend import keras

    tmp = tmp_path_factory.mktemp("cli")
    folder = _images(tmp / "folder")
    data = load_labelled(DataConfig(source=str(folder), image_size=SIZE))
    keras.utils.set_random_seed(0)
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Rescaling(1 / 255.0)(inputs)
    x = keras.layers.Conv2D(4, 3, strides=2, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(x))
    model.compile(keras.optimizers.Adam(0.03), "sparse_categorical_crossentropy")
    model.fit(data.x_train, data.y_train, epochs=80, verbose=0)
    assert model.evaluate(data.x_val, data.y_val, verbose=0) < 0.5
    run = tmp / "runs" / "r"
    run.mkdir(parents=True)
    model.save(run / "model.keras")
    config = {"data": {"source": str(folder), "image_size": SIZE, "seed": 0}}
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    (run / "classes.json").write_text(json.dumps(CLASSES))
    return run


def _export(run: Path, out: Path, quantization, **kw) -> list[dict]:
    cfg = ExportConfig(
        model_path=str(run / "model.keras"),
        quantization=list(quantization),
        output=str(out),
        **kw,
    )
    return run_export(cfg)


def test_export_calibrates_on_the_runs_data_at_the_models_size(run_dir, tmp_path):
    out = tmp_path / "exp"
    rows = _export(run_dir, out, ["float32", "int8"], selective_size_budget=0.5)
    assert [r["quantization"] for r in rows] == ["float32", "int8"]
    for row in rows:
        assert "config.yaml" in row["data"] and "data.source" in row["data"]
        assert row["keras_accuracy"] is not None  # labelled validation data
        assert row["agreement"] >= 0.99
    manifest = json.loads((out / "tflite-int8" / "manifest.json").read_text())
    assert manifest["class_names"] == CLASSES
    assert manifest["quantization_details"]["selective_size_budget"] == 0.5
    with pytest.raises(ConfigError, match="selective_size_budget: expected a number"):
        _export(run_dir, tmp_path / "b", ["int8"], selective_size_budget=-1.0)
    assert not (tmp_path / "b").exists()
    assert sorted(p.name for p in out.iterdir()) == [
        "export_summary.png",
        "report.html",
        "summary.json",
        "tflite-float32",
        "tflite-int8",
    ]
    assert not list(tmp_path.glob(".exp*"))  # no temporary sibling left


def test_export_accepts_int16x8(run_dir, tmp_path, capsys):
    out = tmp_path / "exp"
    args = ["export", "--set", f"model_path={run_dir / 'model.keras'}"]
    args += ["--set", "quantization=[int16x8]", "--set", f"output={out}"]
    assert main(args) == 0
    (row,) = json.loads((out / "summary.json").read_text())
    assert row["quantization"] == "int16x8" and row["int8_mode"] == "int16x8"
    assert row["int8_ladder"] == ["int16x8: passed"]
    assert row["agreement"] >= 0.99
    manifest = json.loads((out / "tflite-int16x8" / "manifest.json").read_text())
    assert manifest["quantization_details"]["int8_mode"] == "int16x8"
    assert "int16x8" in (out / "report.html").read_text()
    with pytest.raises(ConfigError, match="int16x8"):  # the accepted list names it
        _export(run_dir, tmp_path / "b", ["int4"])


def test_failed_export_leaves_nothing_behind(run_dir, tmp_path, monkeypatch):
    import keras_transfer.export as export_pkg

    real = export_pkg.export_main

    def failing(model, **kw):
        if kw["quantization"] == "int8":
            raise ValueError("simulated int8 failure")
        return real(model, **kw)

    monkeypatch.setattr(export_pkg, "export_main", failing)
    with pytest.raises(ValueError, match="simulated"):
        _export(run_dir, tmp_path / "exp", ["float32", "int8"])
    assert list(tmp_path.iterdir()) == []


def test_overwrite_keeps_other_quantizations_in_summary(run_dir, tmp_path, capsys):
    out = tmp_path / "exp"
    _export(run_dir, out, ["float32"])
    _export(run_dir, out, ["float16"])
    summary = json.loads((out / "summary.json").read_text())
    assert [r["quantization"] for r in summary] == ["float32", "float16"]
    args = ["export", "--set", f"model_path={run_dir / 'model.keras'}"]
    args += ["--set", "quantization=[float16]", "--set", f"output={out}"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "--set overwrite=true" in err and "overwrite=True" not in err
    assert main([*args, "--set", "overwrite=true"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert [r["quantization"] for r in summary] == ["float32", "float16"]
    assert (out / "tflite-float32" / "model.tflite").is_file()


def test_export_size_and_data_errors(run_dir, tmp_path):
    with pytest.raises(ConfigError, match=rf"takes {SIZE}x{SIZE} images"):
        _export(
            run_dir,
            tmp_path / "a",
            ["float32"],
            representative=DataConfig(source="", image_size=16),
        )
    alone = tmp_path / "alone"
    alone.mkdir()
    (alone / "model.keras").write_bytes((run_dir / "model.keras").read_bytes())
    with pytest.raises(ConfigError, match="Set representative.source"):
        _export(alone, tmp_path / "b", ["float32"])
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="is an existing file"):
        _export(run_dir, tmp_path / "file", ["float32"])
    export_dir = tmp_path / "c"
    _export(run_dir, export_dir, ["float32"])
    cfg = ExportConfig(model_path=str(export_dir / "tflite-float32"))
    with pytest.raises(ConfigError, match="TFLite export folder, not a .keras"):
        run_export(cfg)
    assert not list(tmp_path.rglob("representative.npz"))


def test_min_agreement_reaches_every_file_and_is_checked(run_dir, tmp_path):
    out = tmp_path / "exp"
    _export(run_dir, out, ["float16"], min_agreement=0.5)
    manifest = json.loads((out / "tflite-float16" / "manifest.json").read_text())
    assert manifest["verification"]["threshold"] == 0.5  # not float16's 0.999
    with pytest.raises(ConfigError, match=r"min_agreement: expected a number in \[0"):
        _export(run_dir, tmp_path / "b", ["float32"], min_agreement=1.5)
    assert not (tmp_path / "b").exists()


def test_sample_draws_across_the_data():
    x = np.arange(100)
    y = np.repeat(np.arange(10), 10)  # sorted by class: the first 20 are 2 classes
    xs, ys = sample(x, y, 20, seed=0)
    assert len(set(ys.tolist())) >= 7
    np.testing.assert_array_equal(xs, sample(x, y, 20, seed=0)[0])
    assert len(sample(x, y, 500, seed=0)[0]) == 100


def test_evaluate_runs_the_exported_files(run_dir, tmp_path):
    folder = yaml.safe_load((run_dir / "config.yaml").read_text())["data"]["source"]
    out = tmp_path / "exp"
    _export(run_dir, out, ["int8"])
    run_export(
        ExportConfig(
            model_path=str(run_dir / "model.keras"),
            format="saved_model",
            quantization=["float32"],
            output=str(tmp_path / "sm"),
        )
    )
    data = DataConfig(source=folder, image_size=None)
    keras_metrics = run_evaluate(
        EvaluateConfig(
            model_path=str(run_dir / "model.keras"),
            data=data,
            output=str(tmp_path / "k"),
        )
    )
    before = sorted(p.name for p in (out / "tflite-int8").iterdir())
    for path in (out / "tflite-int8", out / "tflite-int8" / "model.tflite"):
        metrics = run_evaluate(EvaluateConfig(model_path=str(path), data=data))
        # the shipped file, through LiteRT: agreement >= 0.99 with Keras
        assert abs(metrics["accuracy"] - keras_metrics["accuracy"]) <= 0.05
        assert (out / "eval-tflite-int8" / "metrics.json").is_file()  # beside it
    assert sorted(p.name for p in (out / "tflite-int8").iterdir()) == before
    metrics = run_evaluate(
        EvaluateConfig(model_path=str(tmp_path / "sm" / "saved_model"), data=data)
    )
    assert metrics["accuracy"] == pytest.approx(keras_metrics["accuracy"], abs=0.02)
    assert (tmp_path / "sm" / "eval-saved_model" / "report.html").is_file()


def test_evaluate_reads_the_models_size(run_dir, tmp_path):
    folder = yaml.safe_load((run_dir / "config.yaml").read_text())["data"]["source"]
    cfg = EvaluateConfig(
        model_path=str(run_dir / "model.keras"),
        data=DataConfig(source=folder, image_size=None),
        output=str(tmp_path / "eval"),
    )
    metrics = run_evaluate(cfg)
    assert metrics["accuracy"] > 0.9
    cfg.data.image_size = 32
    with pytest.raises(ConfigError, match=rf"data.image_size=32 .* takes {SIZE}x"):
        run_evaluate(cfg)


def test_predict_on_keras_tflite_and_saved_model(run_dir, tmp_path):
    folder = Path(
        yaml.safe_load((run_dir / "config.yaml").read_text())["data"]["source"]
    )
    exports = tmp_path / "exp"
    _export(run_dir, exports, ["float32"])
    _export(run_dir, exports, ["float32"], format="saved_model")
    paths = {
        "keras": run_dir / "model.keras",
        "tflite_dir": exports / "tflite-float32",
        "tflite_file": exports / "tflite-float32" / "model.tflite",
        "saved_model": exports / "saved_model",
    }
    probs = {}
    for kind, path in paths.items():
        results = run_predict(
            PredictConfig(model_path=str(path), inputs=str(folder / "owl"), top_k=3)
        )
        assert len(results) == 8
        assert results[0]["predictions"][0]["class"] == "owl", kind
        probs[kind] = np.array(
            [
                [p["probability"] for p in sorted(r["predictions"], key=str)]
                for r in results
            ]
        )
    for kind, value in probs.items():
        np.testing.assert_allclose(value, probs["keras"], atol=1e-4, err_msg=kind)
    with pytest.raises(ConfigError, match=rf"image_size=16 .* takes {SIZE}x"):
        run_predict(
            PredictConfig(
                model_path=str(paths["tflite_dir"]), inputs=str(folder), image_size=16
            )
        )
    (tmp_path / "taken").write_text("x")
    with pytest.raises(ConfigError, match="is a file, not a folder"):
        run_predict(
            PredictConfig(
                model_path=str(paths["keras"]),
                inputs=str(folder),
                output=str(tmp_path / "taken" / "p.json"),
            )
        )


def test_corrupt_image_is_named_and_can_be_skipped(tmp_path, caplog):
    folder = _images(tmp_path / "f", per_class=3)
    (folder / "dog" / "broken.png").write_bytes(b"not an image")
    with pytest.raises(ConfigError, match=r"broken\.png.*skip_corrupt"):
        load_labelled(DataConfig(source=str(folder), image_size=16))
    with caplog.at_level(logging.WARNING, logger="keras_transfer"):
        data = load_labelled(
            DataConfig(source=str(folder), image_size=16, skip_corrupt=True)
        )
    assert len(data.x_train) + len(data.x_val) == 9
    assert "skipped 1 unreadable files: dog/broken.png" in caplog.text
    with pytest.raises(ConfigError, match=r"broken\.png"):
        read_images(str(folder / "dog"), 16)


def test_validation_split_is_stratified():
    y = np.repeat(np.arange(4), [3, 9, 12, 16])
    _, y_train, _, y_val = _split(np.arange(len(y)), y, 0.25, seed=0)
    assert np.bincount(y_val).tolist() == [1, 2, 3, 4]  # round(40 * 0.25) = 10
    assert len(y_train) + len(y_val) == 40


def test_export_help_keeps_field_names_apart(capsys):
    with pytest.raises(SystemExit):
        main(["export", "--help"])
    text = capsys.readouterr().out
    fields = text[text.index("Config fields") :].splitlines()[1:]
    names = [
        line.split()[0] for line in fields if line.startswith("  ") and line[2] != " "
    ]
    assert "representative.validation_source" in names
    assert "representative.skip_corrupt" in names


def test_a_refused_export_does_not_cost_the_others(run_dir, tmp_path, capsys):
    """float32 passes and is written; int8 of a model whose outputs are all near
    ties fails agreement 1.0 and is named on stderr, exit code 1; when every
    export of the call is refused nothing is written."""
    from keras_transfer._backend import keras
    from keras_transfer.cli import main

    run = tmp_path / "runs" / "r"
    run.mkdir(parents=True)
    for name in ("config.yaml", "classes.json"):
        (run / name).write_bytes((run_dir / name).read_bytes())
    keras.utils.set_random_seed(0)
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Rescaling(1 / 255.0)(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    small = keras.initializers.RandomNormal(stddev=0.01)  # untrained: near-uniform
    outputs = keras.layers.Dense(3, "softmax", kernel_initializer=small)(x)
    keras.Model(inputs, outputs).save(run / "model.keras")
    base = ["export", "--set", f"model_path={run / 'model.keras'}"]
    base += ["--set", "min_agreement=1.0"]
    out = tmp_path / "exp"
    args = [*base, "--set", f"output={out}"]
    assert main([*args, "--set", "quantization=[float32, int8-full]"]) == 1
    captured = capsys.readouterr()
    assert "int8-full: not written (refused by verification)" in captured.out
    assert "int8-full not written: The exported tflite model" in captured.err
    assert sorted(p.name for p in out.iterdir()) == [
        "export_summary.png",
        "report.html",
        "summary.json",
        "tflite-float32",
    ]
    summary = json.loads((out / "summary.json").read_text())
    assert [r["quantization"] for r in summary] == ["float32"]
    assert "Not written: int8-full" in (out / "report.html").read_text()
    alone = tmp_path / "alone"
    args = [*base, "--set", f"output={alone}", "--set", "quantization=[int8-full]"]
    assert main(args) == 1
    assert "nothing written: The exported tflite model" in capsys.readouterr().err
    assert not alone.exists() and not list(tmp_path.glob(".alone*"))
