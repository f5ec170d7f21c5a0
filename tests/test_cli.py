"""`keras-transfer` end to end on tiny data: exit codes, files, reports, bad configs."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from keras_transfer.cli import main

SIZE = 16


@pytest.fixture(scope="module")
def tiny_backbone(tmp_path_factory) -> str:
    from keras_transfer._backend import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((SIZE, SIZE, 3)),
            keras.layers.Rescaling(1 / 255.0),
            keras.layers.Conv2D(8, 3, strides=2, activation="relu"),
            keras.layers.Conv2D(16, 3, strides=2, activation="relu"),
        ],
        name="tiny_cnn",
    )
    path = tmp_path_factory.mktemp("bb") / "tiny.keras"
    model.save(path)
    return str(path)


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory) -> Path:
    from PIL import Image

    root = tmp_path_factory.mktemp("imgs") / "folder"
    rng = np.random.default_rng(0)
    for c, name in enumerate(["cat", "dog", "owl"]):
        (root / name).mkdir(parents=True)
        for i in range(6):
            img = rng.integers(0, 60, (20, 20, 3)) + 60 * c
            Image.fromarray(img.astype("uint8")).save(root / name / f"{i}.png")
    return root


def _write(path: Path, data: dict) -> str:
    path.write_text(yaml.safe_dump(data))
    return str(path)


def _train_cfg(tmp_path, backbone, **data) -> dict:
    return {
        "name": "r",
        "runs_dir": str(tmp_path / "runs"),
        "data": {"image_size": SIZE, "limit": 64, "batch_size": 16, **data},
        "model": {"backbone": backbone},
        "training": {"epochs": 1, "fine_tune_epochs": 0},
    }


def test_help_is_fast_and_imports_no_tensorflow():
    code = (
        "import sys; from keras_transfer.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit as e:\n    assert e.code == 0\n"
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    for word in ("train", "adapt", "tune", "export", "--resume", "config --template"):
        assert word in out.stdout


@pytest.mark.parametrize("kind", ["train", "adapt", "tune", "export"])
def test_subcommand_help_lists_config_fields(kind, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([kind, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "Config fields (--set PATH=VALUE):" in out and "Example:" in out
    assert {
        "train": "training.learning_rate",
        "adapt": "adaptation.lambda_max",
        "tune": "tuning.unfreeze_depths",
        "export": "quantization",
    }[kind] in out


def test_no_command_prints_help(capsys):
    assert main([]) == 2
    assert "COMMAND" in capsys.readouterr().out


def test_config_template_and_check(tmp_path, capsys):
    assert main(["config", "--template", "train"]) == 0
    text = capsys.readouterr().out
    assert yaml.safe_load(text)["training"]["epochs"] == 3
    path = tmp_path / "t.yaml"
    path.write_text(text)
    assert main(["config", "--check", str(path), "--kind", "train"]) == 0
    path.write_text(text.replace("epochs: 3", "epochs: three"))
    assert main(["config", "--check", str(path)]) == 2
    assert "training.epochs" in capsys.readouterr().err


@pytest.mark.parametrize(
    "change, message",
    [
        ({"training": {"epochz": 1}}, "Unknown field training.epochz"),
        ({"training": {"epochs": "many"}}, "training.epochs: expected int"),
        ({"data": {"source": "/no/such/dir"}}, "Data path not found: data.source"),
        ({"model": {"num_classes": 3}}, "model.num_classes=3 does not match"),
        ({"model": {"head": "cnn"}}, "model.head: expected one of"),
        ({"data": {"image_size": 4}}, "data.image_size: expected an int >= 8"),
        ({"training": {"jit_compile": "xla"}}, "training.jit_compile: expected one"),
        (
            {"training": {"mixed_precision": "float16"}},
            "training.mixed_precision: expected one of [None, 'mixed_float16'",
        ),
    ],
)
def test_bad_train_configs_fail_without_run_dir(tmp_path, capsys, change, message):
    cfg = _train_cfg(tmp_path, "unused.keras")
    for section, values in change.items():
        cfg[section].update(values)
    code = main(["train", _write(tmp_path / "c.yaml", cfg)])
    assert code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_missing_backbone_and_folder_mismatch_fail(tmp_path, capsys, image_folder):
    cfg = _train_cfg(tmp_path, str(tmp_path / "nope.keras"))
    assert main(["train", _write(tmp_path / "c.yaml", cfg)]) == 2
    assert "Backbone file not found" in capsys.readouterr().err
    cfg = _train_cfg(tmp_path, "x.keras", source=str(image_folder))
    cfg["model"]["num_classes"] = 10
    assert main(["train", _write(tmp_path / "c.yaml", cfg)]) == 2
    err = capsys.readouterr().err
    assert "has 3 classes (cat, dog, owl)" in err
    assert not (tmp_path / "runs").exists()


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory, tiny_backbone):
    tmp = tmp_path_factory.mktemp("train")
    cfg = _write(tmp / "train.yaml", _train_cfg(tmp, tiny_backbone))
    code = main(
        ["train", cfg, "--set", "training.fine_tune_epochs=1", "--name", "first"]
    )
    return code, tmp, cfg


def test_train_writes_a_complete_run(trained_run):
    code, tmp, _ = trained_run
    assert code == 0
    run = tmp / "runs" / "first"
    for name in ("config.yaml", "model.keras", "metrics.json", "classes.json"):
        assert (run / name).is_file(), name
    assert list((run / "logs").rglob("events.out.tfevents.*"))
    assert (run / "checkpoints" / "last.keras").is_file()
    resolved = yaml.safe_load((run / "config.yaml").read_text())
    assert resolved["name"] == "first" and resolved["model"]["num_classes"] == 10
    assert resolved["training"]["fine_tune_epochs"] == 1
    metrics = json.loads((run / "metrics.json").read_text())
    assert len(metrics["history"]["loss"]) == 2  # 1 head epoch + 1 fine-tune epoch
    assert set(metrics["evaluation"]["per_class"]) == {str(i) for i in range(10)}
    page = (run / "report" / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 3
    for png in ("training_curves.png", "confusion_matrix.png", "per_class.png"):
        assert (run / "report" / png).is_file()
    assert json.loads((run / "run.json").read_text())["status"] == "completed"


def test_same_name_refuses_and_completed_run_is_not_resumed(trained_run, capsys):
    _, tmp, cfg = trained_run
    before = (tmp / "runs" / "first" / "model.keras").stat().st_mtime
    assert main(["train", cfg, "--name", "first"]) == 3
    assert "--resume" in capsys.readouterr().err
    assert main(["train", cfg, "--name", "first", "--resume"]) == 3
    assert "already completed" in capsys.readouterr().err
    assert (tmp / "runs" / "first" / "model.keras").stat().st_mtime == before


def test_evaluate_and_predict(trained_run, tmp_path, capsys, image_folder):
    _, tmp, _ = trained_run
    model = str(tmp / "runs" / "first" / "model.keras")
    eval_cfg = {"model_path": model, "data": {"image_size": SIZE, "limit": 40}}
    eval_cfg["output"] = str(tmp_path / "eval")
    assert main(["evaluate", _write(tmp_path / "e.yaml", eval_cfg)]) == 0
    assert "accuracy" in capsys.readouterr().out
    html = (tmp_path / "eval" / "report.html").read_text()
    printed = re.search(r"(\d+) examples: accuracy ([0-9.]+)", html)
    assert printed, "the evaluation report shows no accuracy line"
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    # metrics.json holds the accuracy the report shows, on the 40 limited examples.
    assert int(printed.group(1)) == 40
    assert metrics["accuracy"] == pytest.approx(float(printed.group(2)), abs=5e-5)
    assert metrics["accuracy"] * 40 == pytest.approx(round(metrics["accuracy"] * 40))

    out = tmp_path / "pred.json"
    args = ["predict", "--set", f"model_path={model}", "--set", f"image_size={SIZE}"]
    args += ["--set", f"inputs={image_folder}", "--set", "top_k=2"]
    assert main([*args, "--set", f"output={out}"]) == 0
    preds = json.loads(out.read_text())
    assert len(preds) == 18 and len(preds[0]["predictions"]) == 2
    assert preds[0]["predictions"][0]["class"] in [str(i) for i in range(10)]
    csv_out = tmp_path / "pred.csv"
    assert main([*args, "--set", f"output={csv_out}"]) == 0
    rows = csv_out.read_text().splitlines()
    assert rows[0] == "input,rank,class,probability" and len(rows) == 1 + 18 * 2
    assert main([*args, "--set", "inputs=/no/such"]) == 2
    assert "Inputs not found" in capsys.readouterr().err


def test_predict_takes_a_built_in_domain_as_evaluate_does(trained_run, tmp_path):
    # `predict --set inputs=digits_target` scores the examples `evaluate` scores:
    # its top-1 classes give evaluate's accuracy on the same domain.
    from keras_transfer.cli._data import evaluation_arrays
    from keras_transfer.config import DataConfig

    _, tmp, _ = trained_run
    model = str(tmp / "runs" / "first" / "model.keras")
    eval_cfg = {"model_path": model, "output": str(tmp_path / "eval")}
    eval_cfg["data"] = {"source": "digits_target", "image_size": SIZE}
    assert main(["evaluate", _write(tmp_path / "e.yaml", eval_cfg)]) == 0
    accuracy = json.loads((tmp_path / "eval" / "metrics.json").read_text())["accuracy"]
    out = tmp_path / "pred.json"
    args = ["predict", "--set", f"model_path={model}", "--set", "inputs=digits_target"]
    assert main([*args, "--set", f"output={out}"]) == 0
    preds = json.loads(out.read_text())
    _, y, _ = evaluation_arrays(DataConfig(source="digits_target", image_size=SIZE))
    assert [p["input"] for p in preds] == [f"digits_target:{i}" for i in range(len(y))]
    top = np.array([int(p["predictions"][0]["class"]) for p in preds])
    assert np.mean(top == y) == pytest.approx(accuracy, abs=1e-6)


def test_a_trained_model_is_a_backbone_for_the_next_run(
    trained_run, tmp_path, capsys, image_folder
):
    # train -> train (new classes) -> evaluate, and fewshot, on the first run's model
    _, tmp, _ = trained_run
    first = str(tmp / "runs" / "first" / "model.keras")
    cfg = _train_cfg(tmp_path, first, source=str(image_folder))
    assert main(["train", _write(tmp_path / "c.yaml", cfg), "--name", "next"]) == 0
    out = capsys.readouterr().out
    assert f"model.backbone: {first} is a classifier; its head is removed" in out
    assert "(16 values from layer 'pool')" in out
    model = str(tmp_path / "runs" / "next" / "model.keras")
    eval_cfg = {"model_path": model, "data": {"source": str(image_folder)}}
    assert main(["evaluate", _write(tmp_path / "e.yaml", eval_cfg)]) == 0
    assert "accuracy" in capsys.readouterr().out
    classes = json.loads((tmp_path / "runs" / "next" / "classes.json").read_text())
    assert classes == ["cat", "dog", "owl"]  # the new run's classes, not the first's
    args = ["fewshot", "--set", f"backbone={first}", "--set", f"runs_dir={tmp_path}"]
    args += ["--set", f"data.source={image_folder}", "--set", f"data.image_size={SIZE}"]
    args += ["--set", "fewshot.n_way=3", "--set", "fewshot.k_shot=2"]
    args += ["--set", "fewshot.n_query=2", "--set", "fewshot.eval_episodes=5"]
    assert main(args) == 0
    assert "3-way 2-shot accuracy" in capsys.readouterr().out


def test_train_on_image_folder_and_npz(tmp_path, tiny_backbone, image_folder):
    cfg = _train_cfg(tmp_path, tiny_backbone, source=str(image_folder))
    cfg["data"]["validation_split"] = 0.25
    assert main(["train", _write(tmp_path / "f.yaml", cfg), "--quiet"]) == 0
    classes = json.loads((tmp_path / "runs" / "r" / "classes.json").read_text())
    assert classes == ["cat", "dog", "owl"]
    evaluate = ["evaluate", "--set", f"model_path={tmp_path}/runs/r/model.keras"]
    evaluate += [
        "--set",
        f"data.source={image_folder}",
        "--set",
        f"data.image_size={SIZE}",
    ]
    assert main([*evaluate, "--set", f"output={tmp_path}/ev"]) == 0
    metrics = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert sum(v["support"] for v in metrics["per_class"].values()) == 18  # all images

    rng = np.random.default_rng(0)
    npz = tmp_path / "d.npz"
    x = rng.integers(0, 255, (24, SIZE, SIZE, 3)).astype("uint8")
    np.savez(npz, x=x, y=np.arange(24) % 4)
    cfg = _train_cfg(tmp_path, tiny_backbone, source=str(npz))
    args = ["train", _write(tmp_path / "n.yaml", cfg), "--name", "npz", "--quiet"]
    assert main(args) == 0
    metrics = json.loads((tmp_path / "runs" / "npz" / "metrics.json").read_text())
    assert sum(v["support"] for v in metrics["evaluation"]["per_class"].values()) == 5


def test_train_with_xla_and_mixed_bfloat16(tmp_path, tiny_backbone, capsys):
    from keras_transfer import load_model
    from keras_transfer.backbones import find_backbone

    cfg = _train_cfg(tmp_path, tiny_backbone)
    cfg["training"].update(jit_compile=True, mixed_precision="mixed_bfloat16")
    assert main(["train", _write(tmp_path / "c.yaml", cfg), "--quiet"]) == 0
    model = load_model(tmp_path / "runs" / "r" / "model.keras")
    assert find_backbone(model).layers[-1].compute_dtype == "bfloat16"
    assert model.jit_compile is True
    x = np.zeros((2, SIZE, SIZE, 3), "float32")
    assert model.predict(x, verbose=0).dtype == np.float32  # the head stays float32
    evaluate = ["evaluate", "--set", f"model_path={tmp_path}/runs/r/model.keras"]
    evaluate += ["--set", f"data.image_size={SIZE}", "--set", "data.limit=20"]
    assert main([*evaluate, "--set", f"output={tmp_path}/ev"]) == 0
    metrics = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert sum(v["support"] for v in metrics["per_class"].values()) == 20


def test_a_validation_source_leaves_the_whole_training_source_to_train(image_folder):
    from keras_transfer.cli._data import load_labelled
    from keras_transfer.config import DataConfig

    split = load_labelled(DataConfig(source=str(image_folder), image_size=SIZE))
    assert (len(split.x_train), len(split.x_val)) == (14, 4)  # 18 images, 0.2 held
    both = DataConfig(
        source=str(image_folder), validation_source=str(image_folder), image_size=SIZE
    )
    data = load_labelled(both)
    # validation_split used to hold out 4 training images and then drop them
    assert (len(data.x_train), len(data.x_val)) == (18, 18)


def test_a_validation_source_with_some_of_the_classes_keeps_their_ids(
    image_folder, tmp_path
):
    import shutil

    from keras_transfer.cli._data import load_labelled
    from keras_transfer.config import ConfigError, DataConfig

    some = tmp_path / "some"
    shutil.copytree(image_folder / "owl", some / "owl")  # class 2 of cat, dog, owl
    cfg = DataConfig(
        source=str(image_folder), validation_source=str(some), image_size=SIZE
    )
    data = load_labelled(cfg)
    assert data.class_names == ["cat", "dog", "owl"]
    assert data.y_val.tolist() == [2] * 6
    (some / "owl").rename(some / "eel")
    with pytest.raises(ConfigError, match=r"classes \['eel'\] that data.source"):
        load_labelled(cfg)


def test_train_warns_about_a_random_backbone_by_the_phase_that_trains_it():
    import warnings

    from keras_transfer.cli._train import build_model
    from keras_transfer.config import ModelConfig

    spec = "keras_applications:MobileNetV3Small"
    mcfg = ModelConfig(backbone=spec, backbone_kwargs={"weights": None})
    frozen = r"is frozen \(unfreeze_depth=0\)"
    with pytest.warns(UserWarning, match=frozen):  # head phase only: nothing learns
        build_model(mcfg, 3, (32, 32, 3), 1e-3)
    with warnings.catch_warnings():  # a fine-tuning phase will train it: no warning
        warnings.filterwarnings("error", message=".*is frozen")
        warnings.filterwarnings("error", message=".*BatchNormalization layers stay")
        build_model(mcfg, 3, (32, 32, 3), 1e-3, unfreeze_depth_later="all")
    mcfg = ModelConfig(
        backbone=spec, backbone_kwargs={"weights": None}, train_batchnorm=False
    )
    with pytest.warns(UserWarning, match="BatchNormalization layers stay frozen"):
        build_model(mcfg, 3, (32, 32, 3), 1e-3, unfreeze_depth_later="all")


def test_model_pooling_reaches_train_and_tune(tiny_backbone):
    import keras_tuner

    from keras_transfer._backend import keras
    from keras_transfer.cli._train import build_model
    from keras_transfer.cli._tune import _hypermodel
    from keras_transfer.config import ModelConfig, TuneConfig

    mcfg = ModelConfig(backbone=tiny_backbone, pooling="flatten")
    model = build_model(mcfg, 3, (SIZE, SIZE, 3), 1e-3)
    assert isinstance(model.get_layer("pool"), keras.layers.Flatten)
    hypermodel = _hypermodel(TuneConfig(model=mcfg), ["a", "b"], (SIZE, SIZE, 3))
    tuned = hypermodel.build(keras_tuner.HyperParameters())
    assert isinstance(tuned.get_layer("pool"), keras.layers.Flatten)


def test_backbones_lists_schemes(capsys):
    assert main(["backbones"]) == 0
    out = capsys.readouterr().out
    for scheme in ("keras_hub", "tfhub", "saved_model", "keras_applications"):
        assert scheme in out


def test_resume_finishes_a_failed_run(tmp_path, tiny_backbone):
    from keras_transfer.runs import RunDir

    cfg = _write(tmp_path / "c.yaml", _train_cfg(tmp_path, tiny_backbone))
    RunDir.create(tmp_path / "runs", "r").fail("killed")  # an interrupted run
    assert main(["train", cfg, "--quiet"]) == 3
    assert main(["train", cfg, "--quiet", "--resume"]) == 0
    info = json.loads((tmp_path / "runs" / "r" / "run.json").read_text())
    assert info["status"] == "completed" and info["resumed"] == 1


def test_adapt_writes_projection_and_lambda_curves_in_mixed_precision(
    tmp_path, tiny_backbone
):
    cfg = {
        "runs_dir": str(tmp_path / "runs"),
        "source": {"image_size": SIZE, "limit": 120, "batch_size": 16},
        "target": {"image_size": SIZE, "limit": 48, "batch_size": 16},
        "model": {"backbone": tiny_backbone},
        "adaptation": {
            "method": "dann",
            "epochs": 3,
            "warmup": 1,
            "source_augmentation": "auto",
            "mixed_precision": "mixed_bfloat16",
            "batchnorm_momentum": None,
            "target_batchnorm": True,
        },
    }
    assert main(["adapt", _write(tmp_path / "a.yaml", cfg), "--quiet"]) == 0
    run = tmp_path / "runs" / "adapt"
    from keras_transfer import load_model

    computes = {
        layer.compute_dtype
        for layer in load_model(run / "model.keras")._flatten_layers()
    }
    assert computes == {"bfloat16", "float32"}  # the backbone's, the heads'
    metrics = json.loads((run / "metrics.json").read_text())
    assert {"lambda", "domain_accuracy", "source_val_accuracy"} <= set(
        metrics["history"]
    )
    assert len(metrics["history"]["source_val_accuracy"]) == 3
    assert metrics["method"] == "dann" and metrics["selection"]["warmup_epochs"] == 1
    no_bn = {"momentum": None, "layers": 0}  # this backbone has no BatchNorm
    assert metrics["selection"]["encoder_batchnorm"] == no_bn
    # target_batchnorm: true reached adapt; the bottleneck's statistics were
    # re-estimated on the target images (the backbone has none of its own)
    assert metrics["selection"]["target_batchnorm"]["layers"] == 1
    jitter = metrics["selection"]["source_augmentation"]  # the config reached adapt
    assert jitter == "auto: translation 0.1, rotation 0.1"
    page = (run / "report" / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 5
    for png in ("features_pca.png", "adaptation_curves.png", "confusion_matrix.png"):
        assert (run / "report" / png).is_file()
    resolved = yaml.safe_load((run / "config.yaml").read_text())
    assert resolved["target"]["source"] == "digits_target"


def _flat_target(folder: Path, n: int = 40) -> Path:
    """n unlabelled target images in one folder (no class sub-folders)."""
    from PIL import Image

    from keras_transfer.cli._data import load_labelled
    from keras_transfer.config import DataConfig

    x = load_labelled(DataConfig(source="digits_target", image_size=SIZE)).x_train
    folder.mkdir()
    for i, image in enumerate(x[:n]):
        Image.fromarray(image).save(folder / f"{i:03d}.png")
    return folder


def test_adapt_and_export_with_an_unlabelled_target_folder(tmp_path, tiny_backbone):
    from keras_transfer import load_model
    from keras_transfer._backend import keras
    from keras_transfer.cli._data import is_unlabelled

    Flatten = keras.layers.Flatten

    flat = _flat_target(tmp_path / "flat")
    assert is_unlabelled(str(flat)) and not is_unlabelled("digits_target")
    cfg = {
        "runs_dir": str(tmp_path / "runs"),
        "source": {"image_size": SIZE, "limit": 120, "batch_size": 16},
        "target": {"source": str(flat), "image_size": SIZE, "batch_size": 16},
        "model": {"backbone": tiny_backbone, "pooling": "flatten"},
        "adaptation": {"method": "mcc", "epochs": 2, "warmup": 1},
    }
    assert main(["adapt", _write(tmp_path / "a.yaml", cfg), "--quiet"]) == 0
    run = tmp_path / "runs" / "adapt"
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["target"] is None and metrics["method"] == "mcc"
    saved = load_model(run / "model.keras")  # model.pooling reached the encoder
    assert any(isinstance(layer, Flatten) for layer in saved._flatten_layers())
    assert 0.0 <= metrics["source_accuracy"] <= 1.0
    page = (run / "report" / "report.html").read_text()
    assert "The target is unlabelled" in page
    assert "features per example (model.pooling=flatten)" in page
    assert not (run / "report" / "confusion_matrix.png").exists()
    # export reads the run's unlabelled target for calibration and verification
    args = ["export", "--set", f"model_path={run / 'model.keras'}"]
    assert main([*args, "--set", "quantization=[float32]"]) == 0
    (row,) = json.loads((run / "export" / "summary.json").read_text())
    assert "unlabelled target" in row["data"] and row["agreement"] >= 0.999
    assert row["export_accuracy"] is None  # half the inputs have no label


@pytest.mark.large
def test_adapt_streams_a_target_folder_too_large_for_memory(
    tmp_path, tiny_backbone, monkeypatch
):
    """A folder over `STREAM_BYTES` reaches `adapt` as lazy `ImageFiles` (decoded
    batch by batch there: tests/adaptation/test_adapt_image_files.py), and the run's
    export reads it the same way."""
    import keras_transfer.adaptation as adaptation
    from keras_transfer.cli import _data
    from keras_transfer.data import ImageFiles

    monkeypatch.setattr(_data, "STREAM_BYTES", 0)  # every folder streams
    seen = {}
    real_adapt = adaptation.adapt

    def spy(encoder, source, target, **kwargs):
        seen["target"] = target
        return real_adapt(encoder, source, target, **kwargs)

    monkeypatch.setattr(adaptation, "adapt", spy)
    cfg = {
        "runs_dir": str(tmp_path / "runs"),
        "source": {"image_size": SIZE, "limit": 120, "batch_size": 16},
        "target": {"source": str(_flat_target(tmp_path / "flat")), "image_size": SIZE},
        "model": {"backbone": tiny_backbone, "pooling": "flatten"},
        "adaptation": {"method": "mcc", "epochs": 2, "warmup": 1},
    }
    assert main(["adapt", _write(tmp_path / "a.yaml", cfg), "--quiet"]) == 0
    assert isinstance(seen["target"], ImageFiles) and len(seen["target"]) == 32
    run = tmp_path / "runs" / "adapt"
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["method"] == "mcc" and metrics["source_accuracy"] > 0.0
    args = ["export", "--set", f"model_path={run / 'model.keras'}"]
    assert main([*args, "--set", "quantization=[float32]"]) == 0
    (row,) = json.loads((run / "export" / "summary.json").read_text())
    assert "unlabelled target" in row["data"] and row["agreement"] >= 0.999


def test_adapt_refuses_a_labelled_target_with_other_classes(tmp_path, capsys):
    rng = np.random.default_rng(0)
    npz = tmp_path / "t.npz"
    x = rng.integers(0, 255, (8, SIZE, SIZE, 3)).astype("uint8")
    np.savez(npz, x=x, y=["zebra"] * 4 + ["3"] * 4)
    args = ["adapt", "--set", f"target.source={npz}", "--set", f"runs_dir={tmp_path}"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "classes ['zebra'] that source.source does not have" in err
    assert "An unlabelled target is a folder of images" in err
    np.savez(tmp_path / "x_only.npz", x=np.zeros((4, SIZE, SIZE, 3), "uint8"))
    from keras_transfer.cli._data import is_unlabelled

    assert is_unlabelled(str(tmp_path / "x_only.npz"))


def test_adapt_scores_a_target_with_some_of_the_classes_by_name(
    tmp_path, tiny_backbone
):
    """A labelled target holding two of the ten digit classes (its labels the
    strings "3" and "7"): read for the report only, scored against outputs 3, 7."""
    from keras_transfer.cli._data import load_labelled
    from keras_transfer.config import DataConfig

    digits = load_labelled(DataConfig(source="digits_target", image_size=SIZE))
    keep = np.isin(digits.y_train, [3, 7])
    npz = tmp_path / "t.npz"
    np.savez(npz, x=digits.x_train[keep], y=digits.y_train[keep].astype(str))
    cfg = {
        "runs_dir": str(tmp_path / "runs"),
        "source": {"image_size": SIZE, "limit": 120, "batch_size": 16},
        "target": {"source": str(npz), "image_size": SIZE, "batch_size": 16},
        "model": {"backbone": tiny_backbone},
        "adaptation": {"method": "source_only", "epochs": 1},
    }
    assert main(["adapt", _write(tmp_path / "a.yaml", cfg), "--quiet"]) == 0
    metrics = json.loads((tmp_path / "runs" / "adapt" / "metrics.json").read_text())
    support = {k: v["support"] for k, v in metrics["target"]["per_class"].items()}
    assert sorted(k for k, n in support.items() if n) == ["3", "7"]
    assert len(support) == 10


def test_adapt_rejects_unknown_method(tmp_path, capsys):
    args = [
        "adapt",
        "--set",
        "adaptation.method=magic",
        "--set",
        f"runs_dir={tmp_path}",
    ]
    assert main(args) == 2
    assert "adaptation.method: expected one of" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_adapt_rejects_a_bad_jit_compile(tmp_path, capsys):
    args = ["adapt", "--set", "adaptation.jit_compile=xla"]
    assert main([*args, "--set", f"runs_dir={tmp_path}"]) == 2
    assert "adaptation.jit_compile: expected one of" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_adapt_rejects_choose_without_auto(tmp_path, capsys):
    args = ["adapt", "--set", "adaptation.method=mcc", "--set"]
    args += ["adaptation.source_augmentation=choose", "--set", f"runs_dir={tmp_path}"]
    assert main(args) == 2
    assert "needs adaptation.method: auto" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_adapt_rejects_a_bad_target_batchnorm(tmp_path, capsys):
    args = ["adapt", "--set", "adaptation.target_batchnorm=maybe"]
    assert main([*args, "--set", f"runs_dir={tmp_path}"]) == 2
    assert "adaptation.target_batchnorm: expected one of" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_adapt_rejects_a_batchnorm_momentum_out_of_range(tmp_path, capsys):
    args = ["adapt", "--set", "adaptation.batchnorm_momentum=1.5"]
    assert main([*args, "--set", f"runs_dir={tmp_path}"]) == 2
    err = capsys.readouterr().err
    assert "adaptation.batchnorm_momentum: expected a float in [0, 1) or null" in err
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("command", ["train", "tune"])
@pytest.mark.parametrize("bad", ["fast", "1.5"])
def test_train_and_tune_reject_a_bad_model_batchnorm_momentum(
    command, bad, tmp_path, capsys
):
    args = [command, "--set", f"model.batchnorm_momentum={bad}"]
    assert main([*args, "--set", f"runs_dir={tmp_path}"]) == 2
    err = capsys.readouterr().err
    assert "model.batchnorm_momentum: expected 'auto', null or a float in [0, 1)" in err
    assert (
        f"Received: model.batchnorm_momentum={float(bad) if bad[0] == '1' else bad!r}"
        in err
    )
    assert not list(tmp_path.iterdir())


def test_train_batchnorm_takes_auto_true_false_only(tmp_path, capsys):
    args = ["train", "--set", "model.train_batchnorm=maybe"]
    assert main([*args, "--set", f"runs_dir={tmp_path}"]) == 2
    err = capsys.readouterr().err
    assert "model.train_batchnorm: expected one of ['auto', True, False]" in err
    assert not list(tmp_path.iterdir())
    args = ["train", "--set", "training.recompute_batchnorm=sometimes"]
    assert main([*args, "--set", f"runs_dir={tmp_path}"]) == 2
    err = capsys.readouterr().err
    assert "training.recompute_batchnorm: expected one of ['auto', True, False]" in err
    assert not list(tmp_path.iterdir())


def test_tune_writes_trials_and_best_model(tmp_path, tiny_backbone):
    cfg = {
        "runs_dir": str(tmp_path / "runs"),
        "data": {"image_size": SIZE, "limit": 48, "batch_size": 16},
        "model": {"backbone": tiny_backbone},
        "tuning": {"max_trials": 2, "epochs": 1, "learning_rates": [1e-2, 1e-3]},
    }
    assert main(["tune", _write(tmp_path / "t.yaml", cfg), "--quiet"]) == 0
    run = tmp_path / "runs" / "tune"
    metrics = json.loads((run / "metrics.json").read_text())
    assert len(metrics["trials"]) == 2
    assert {"learning_rate", "unfreeze_depth"} <= set(metrics["best"])
    assert (run / "model.keras").is_file() and (run / "report" / "trials.png").is_file()
    assert "retrained" not in metrics  # retrain_epochs defaults to 0
    bad = ["tune", "--set", "tuning.unfreeze_depths=[0, all]", "--name", "bad"]
    assert main([*bad, "--set", f"runs_dir={tmp_path}/runs"]) == 2
    assert not (run.parent / "bad").exists()
    bad = ["tune", "--set", "tuning.retrain_epochs=-1", "--name", "bad"]
    assert main([*bad, "--set", f"runs_dir={tmp_path}/runs"]) == 2
    assert not (run.parent / "bad").exists()


def test_tune_retrains_the_best_for_retrain_epochs(tmp_path, tiny_backbone):
    from keras_transfer import load_model

    cfg = {
        "runs_dir": str(tmp_path / "runs"),
        "data": {"image_size": SIZE, "limit": 48, "batch_size": 16},
        "model": {"backbone": tiny_backbone},
        "tuning": {
            "max_trials": 1,
            "epochs": 1,
            "learning_rates": [1e-2],
            "unfreeze_depths": [0],
            "retrain_epochs": 3,
        },
    }
    assert main(["tune", _write(tmp_path / "t.yaml", cfg), "--quiet"]) == 0
    run = tmp_path / "runs" / "tune"
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["retrained"]["epochs"] == 3
    assert len(metrics["retrained"]["history"]["loss"]) == 3
    assert "val_loss" not in metrics["retrained"]["history"]  # validation held out
    from keras_transfer._backend import keras

    model = load_model(run / "model.keras")
    # the saved model is the retrained one, not the trial's (1 epoch): same
    # architecture, other weights
    trial = keras.models.clone_model(model)
    trial.load_weights(next((run / "tuner").glob("trial_*/checkpoint.weights.h5")))
    assert any(
        not np.allclose(a, b)
        for a, b in zip(model.get_weights(), trial.get_weights(), strict=True)
    )
    assert "afresh for 3 epochs" in (run / "report" / "report.html").read_text()


def test_export_per_quantization(trained_run, tmp_path, capsys):
    _, tmp, _ = trained_run
    cfg = {
        "model_path": str(tmp / "runs" / "first" / "model.keras"),
        "quantization": ["float32", "int8"],
        "representative": {"image_size": SIZE, "limit": 32},
        "output": str(tmp_path / "exp"),
    }
    assert main(["export", _write(tmp_path / "x.yaml", cfg)]) == 0
    summary = json.loads((tmp_path / "exp" / "summary.json").read_text())
    assert [r["quantization"] for r in summary] == ["float32", "int8"]
    assert summary[0]["agreement"] == 1.0 and summary[1]["size_kb"] > 0
    assert (tmp_path / "exp" / "tflite-int8" / "model.tflite").is_file()
    assert "data:image/png" in (tmp_path / "exp" / "report.html").read_text()
    assert "export tflite 2/2" in capsys.readouterr().err
    cfg["quantization"] = ["int4"]
    assert main(["export", _write(tmp_path / "x.yaml", cfg)]) == 2


def test_train_files_keep_a_keras_hub_backbones_frozen_layers(tmp_path):
    """`train` with a KerasHub backbone, top 1 layer unfrozen: its `model.keras` and
    `checkpoints/last.keras` load with that trainability and their optimizer state."""
    import warnings

    from test_saving import _vgg_preset

    import keras_transfer as kt
    from keras_transfer._backend import keras

    preset = str(tmp_path / "preset")
    _vgg_preset(preset)
    cfg = _train_cfg(tmp_path, f"keras_hub:{preset}")
    cfg["training"].update(fine_tune_epochs=1, unfreeze_depth=1)
    assert main(["train", _write(tmp_path / "c.yaml", cfg), "--quiet"]) == 0
    run = tmp_path / "runs" / "r"
    plain = keras.saving.load_model(run / "model.keras", compile=False)
    everything = len(plain.trainable_variables)
    kt.set_trainable(plain, 1)
    expected = sorted(v.path.split("/", 1)[1] for v in plain.trainable_variables)
    assert len(expected) < everything
    for path in (run / "model.keras", run / "checkpoints" / "last.keras"):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model = kt.load_model(path)
        assert not [w for w in caught if "Skipping variable" in str(w.message)], path
        got = sorted(v.path.split("/", 1)[1] for v in model.trainable_variables)
        assert got == expected, path
        assert int(model.optimizer.iterations.numpy()) > 0, path


def test_evaluate_matches_data_classes_to_the_models_by_name(
    tmp_path, tiny_backbone, image_folder
):
    import shutil

    cfg = _train_cfg(tmp_path, tiny_backbone, source=str(image_folder))
    cfg["training"]["epochs"] = 3
    assert main(["train", _write(tmp_path / "t.yaml", cfg), "--quiet"]) == 0
    model_path = tmp_path / "runs" / "r" / "model.keras"
    # a test folder holding two of the three classes: scored by name
    sub = tmp_path / "two"
    for name in ("dog", "owl"):
        shutil.copytree(image_folder / name, sub / name)
    evaluate = ["evaluate", "--set", f"model_path={model_path}"]
    evaluate += ["--set", f"data.source={sub}", "--set", f"output={tmp_path}/ev"]
    assert main(evaluate) == 0
    metrics = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert set(metrics["per_class"]) >= {"dog", "owl"}
    assert metrics["per_class"]["dog"]["support"] == 6
    # recall per class is what the whole folder gives those classes
    full = ["evaluate", "--set", f"model_path={model_path}"]
    full += ["--set", f"data.source={image_folder}", "--set", f"output={tmp_path}/f"]
    assert main(full) == 0
    whole = json.loads((tmp_path / "f" / "metrics.json").read_text())
    for name in ("dog", "owl"):
        assert (
            metrics["per_class"][name]["recall"] == whole["per_class"][name]["recall"]
        )
    right = sum(whole["per_class"][n]["recall"] * 6 for n in ("dog", "owl"))
    assert metrics["accuracy"] == pytest.approx(right / 12)
    # a class the model never saw is named, not scored against another output
    (sub / "owl").rename(sub / "eel")
    evaluate[-1] = f"output={tmp_path}/ev2"
    assert main(evaluate) == 2
    assert not (tmp_path / "ev2" / "metrics.json").exists()


def test_the_cli_prints_its_own_warnings_without_file_and_line():
    import warnings

    from keras_transfer import callbacks
    from keras_transfer.cli import _plain_warnings

    with _plain_warnings():
        ours = warnings.formatwarning("no good", UserWarning, callbacks.__file__, 9)
        theirs = warnings.formatwarning("other", UserWarning, "/elsewhere/x.py", 9)
    assert ours == "keras-transfer: warning: no good\n"
    assert "/elsewhere/x.py:9" in theirs
    assert warnings.formatwarning is not None
    assert "callbacks.py:9" in warnings.formatwarning(
        "m", UserWarning, callbacks.__file__, 9
    )
