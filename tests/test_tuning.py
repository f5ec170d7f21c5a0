"""Tests for keras_transfer.tuning: real (tiny) KerasTuner searches."""

from __future__ import annotations

import keras_tuner as kt
import numpy as np
import pytest

from keras_transfer._backend import keras
from keras_transfer.tuning import (
    TransferHyperModel,
    format_summary,
    make_tuner,
    retrain_best,
    search_summary,
)


def tiny_backbone():
    inputs = keras.Input((8, 8, 3))
    h = keras.layers.Conv2D(4, 3, activation="relu", name="conv_a")(inputs)
    h = keras.layers.Conv2D(4, 3, activation="relu", name="conv_b")(h)
    return keras.Model(inputs, h, name="tiny")


def tiny_data(n=32, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((n, 8, 8, 3)).astype("float32")
    y = (x[..., 0].mean(axis=(1, 2)) > 0.5).astype("int32")
    return x, y


def test_define_specs_and_errors():
    hm = TransferHyperModel(
        tiny_backbone, 2, learning_rate=1e-3, unfreeze_depth=[0, 2], dropout=(0.1, 0.3)
    )
    hp = kt.HyperParameters()
    values = hm.declare(hp)
    assert values["learning_rate"] == 1e-3
    assert values["unfreeze_depth"] in (0, 2)
    assert 0.1 <= values["dropout"] <= 0.3
    assert values["head_units"] in (32, 64, 128)
    assert hm.depth == 2
    assert isinstance(hp._hps["learning_rate"][0], kt.engine.hyperparameters.Fixed)
    with pytest.raises(ValueError, match="min < max"):
        TransferHyperModel(tiny_backbone, 2, dropout=(0.5, 0.1)).declare(
            kt.HyperParameters()
        )
    with pytest.raises(ValueError, match="method='cdan'"):
        TransferHyperModel(tiny_backbone, 2, method="cdan")
    with pytest.raises(ValueError, match="Received: kind='sobol'"):
        make_tuner("sobol", TransferHyperModel(tiny_backbone, 2))
    # KerasTuner reads max_trials=0 as "no limit": refused, as is a width of 0
    for bad in (0, None, 2.5):
        with pytest.raises(ValueError, match=f"max_trials={bad!r}"):
            make_tuner("random", TransferHyperModel(tiny_backbone, 2), max_trials=bad)
    for bad in (0, [0, 64], (0, 64), "wide"):
        with pytest.raises(ValueError, match="head_units to be units >= 1"):
            TransferHyperModel(tiny_backbone, 2, head_units=bad)
    TransferHyperModel(tiny_backbone, 2, head_units=None)  # a linear head
    with pytest.raises(ValueError, match="dev_data for objective='dev_risk'"):
        make_tuner("random", TransferHyperModel(tiny_backbone, 2), "dev_risk")


def test_unfreeze_depth_range_follows_backbone():
    hm = TransferHyperModel(tiny_backbone(), 2)  # a model: cloned per trial
    hp = kt.HyperParameters()
    hm.declare(hp)
    depth_hp = hp._hps["unfreeze_depth"][0]
    assert (depth_hp.min_value, depth_hp.max_value) == (0, 2)
    first, second = hm.new_backbone(), hm.new_backbone()
    assert first is not second
    np.testing.assert_array_equal(first.get_weights()[0], second.get_weights()[0])


def _search(tmp_path, max_trials, **kwargs):
    x, y = tiny_data()
    hm = TransferHyperModel(tiny_backbone, 2, **kwargs)
    tuner = make_tuner(
        "random",
        hm,
        "val_accuracy",
        max_trials=max_trials,
        directory=tmp_path,
        project_name="search",
        seed=1,
    )
    hm.builds = 0  # the tuner builds once to discover the search space
    tuner.search(
        x[:24],
        y[:24],
        validation_data=(x[24:], y[24:]),
        epochs=1,
        batch_size=8,
        verbose=0,
    )
    return tuner, hm


@pytest.mark.large
def test_three_trial_search_resume_and_retrain(tmp_path):
    tuner, hm = _search(tmp_path, 3)
    assert hm.builds == 3
    rows = search_summary(tuner)
    assert len(rows) == 3
    assert rows[0]["score"] >= rows[-1]["score"]
    best = tuner.get_best_hyperparameters(1)[0].values
    assert 1e-4 <= best["learning_rate"] <= 1e-2
    assert 0 <= best["unfreeze_depth"] <= 2
    assert 0.0 <= best["dropout"] <= 0.5
    assert best["head_units"] in (32, 64, 128)
    table = format_summary(rows)
    assert "learning_rate" in table and "score" in table
    assert len(table.splitlines()) == 2 + 3

    # Resuming from the directory skips the 3 finished trials: one new build.
    tuner2, hm2 = _search(tmp_path, 4)
    assert hm2.builds == 1
    assert len(search_summary(tuner2)) == 4

    x, y = tiny_data()
    model, report = retrain_best(
        tuner2, (x[:24], y[:24]), (x[24:], y[24:]), epochs=1, verbose=0, batch_size=8
    )
    assert report is None
    assert model.predict(x[:2], verbose=0).shape == (2, 2)
    # misuses are refused before any training; an existing export folder too
    with pytest.raises(ValueError, match=r"retrain_best\(tuner, \(x, y\)\)"):
        retrain_best(tuner2, x, y, epochs=1)
    with pytest.raises(ValueError, match="export_kwargs=\\{'overwrite': True\\}"):
        retrain_best(tuner2, (x, y), epochs=1, overwrite=True)
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("mine")
    builds = hm2.builds
    with pytest.raises(FileExistsError, match="already exists"):
        retrain_best(tuner2, (x, y), epochs=1, export_dir=tmp_path / "taken")
    assert hm2.builds == builds  # nothing was trained


@pytest.mark.large
def test_dann_search_on_unsupervised_objective(tmp_path):
    # tuning.py imports DEVCallback from here: a rename must fail, not skip.
    from keras_transfer.adaptation import DEVCallback  # noqa: F401

    xs, ys = tiny_data(32, seed=0)
    xt, _ = tiny_data(32, seed=1)
    hm = TransferHyperModel(
        tiny_backbone,
        2,
        method="dann",
        unfreeze_depth="all",
        discriminator_units=16,
        dev_data=((xs[24:], ys[24:]), xt),
    )
    tuner = make_tuner(
        "random", hm, "dev_risk", max_trials=2, directory=tmp_path, seed=0
    )
    train = ({"source": xs[:24], "target": xt[:24]}, ys[:24])
    tuner.search(train[0], train[1], epochs=1, batch_size=8, verbose=0)
    rows = search_summary(tuner)
    assert len(rows) == 2
    assert rows[0]["score"] <= rows[1]["score"]  # dev_risk is minimised
    assert all(
        5.0 <= r["gamma"] <= 15.0 and 0.1 <= r["lambda_max"] <= 1.0 for r in rows
    )
    assert all(r["discriminator_units"] == 16 and "head_units" not in r for r in rows)


def _discriminator_widths(model):
    return model.method.hidden_units


def test_dann_discriminator_units_and_the_deprecated_head_units():
    import warnings

    hp = kt.HyperParameters()
    hm = TransferHyperModel(tiny_backbone, 2, method="dann", discriminator_units=16)
    assert _discriminator_widths(hm.build(hp)) == (16,)
    assert hp.values["discriminator_units"] == 16 and "head_units" not in hp.values
    searched = TransferHyperModel(tiny_backbone, 2, method="dann")
    values = searched.declare(kt.HyperParameters())
    assert values["discriminator_units"] in (32, 64, 128)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the new name alone does not warn
        TransferHyperModel(tiny_backbone, 2, method="dann", discriminator_units=[8])

    # The old name (head_units= with DANN, which has a linear label head) warns at
    # the caller's line and builds the same discriminator.
    with pytest.warns(
        DeprecationWarning,
        match=r"TransferHyperModel\(method='dann'\): head_units= is deprecated .* "
        "use discriminator_units=",
    ) as caught:
        old = TransferHyperModel(tiny_backbone, 2, method="dann", head_units=16)
    assert caught[0].filename == __file__
    old_hp = kt.HyperParameters()
    assert _discriminator_widths(old.build(old_hp)) == (16,)
    assert old_hp.values == hp.values

    with pytest.raises(
        ValueError, match="Received both discriminator_units= and head_units="
    ):
        TransferHyperModel(
            tiny_backbone, 2, method="dann", head_units=16, discriminator_units=16
        )
    with pytest.raises(ValueError, match="discriminator_units=16 with a classifier"):
        TransferHyperModel(tiny_backbone, 2, discriminator_units=16)


def test_backbone_kwargs_reach_the_loader():
    from keras_transfer.backbones import LoadedBackbone, register_backbone_loader

    seen = []

    def recording(rest, **kwargs):
        seen.append(kwargs)
        return LoadedBackbone(tiny_backbone(), modality="image", spec=f"rec:{rest}")

    register_backbone_loader("kt_test_rec", recording, overwrite=True)
    spec = "kt_test_rec:x"
    shape = (8, 8, 3)
    as_keyword = TransferHyperModel(spec, 2, weights=None, name="hm", input_shape=shape)
    as_build_kwarg = TransferHyperModel(
        spec, 2, build_kwargs={"weights": None}, input_shape=shape
    )
    for hm in (as_keyword, as_build_kwarg):
        hm.build(kt.HyperParameters())
        assert seen.pop() == {"weights": None}
    assert as_keyword.name == "hm"
    with pytest.raises(ValueError, match="only when backbone is a spec string"):
        TransferHyperModel(tiny_backbone, 2, weights=None)


def test_keras_applications_weights_none_offline():
    hm = TransferHyperModel(
        "keras_applications:MobileNetV3Small",
        2,
        weights=None,
        input_shape=(32, 32, 3),
        unfreeze_depth=0,
        head_units=None,
    )
    model = hm.build(kt.HyperParameters())
    assert model.input_shape == (None, 32, 32, 3)
    assert model.optimizer.built  # checkpoints reload with their optimizer state


def test_search_reloads_best_model_without_warnings(tmp_path):
    from keras_transfer.data import from_arrays

    x, y = tiny_data()
    ds = from_arrays(x, y, batch_size=8)
    hm = TransferHyperModel(
        tiny_backbone,
        2,
        learning_rate=[1e-2],
        unfreeze_depth=0,
        dropout=0.0,
        head_units=None,
    )
    tuner = make_tuner("random", hm, max_trials=1, directory=tmp_path, seed=0)
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tuner.search(ds, validation_data=ds, epochs=1, verbose=0)
        tuner.get_best_models(1)
    messages = [str(w.message) for w in caught]
    assert not [m for m in messages if "Skipping variable loading" in m], messages
    assert not [m for m in messages if "shuffle=True" in m], messages


def test_cli_tune_quiet_prints_one_line_per_trial(tmp_path, capsys):
    import yaml

    from keras_transfer.cli import main

    inputs = keras.Input((16, 16, 3))
    h = keras.layers.Rescaling(1 / 255.0)(inputs)
    h = keras.layers.Conv2D(4, 3, strides=2, activation="relu")(h)
    keras.Model(inputs, h, name="tiny").save(tmp_path / "tiny.keras")
    cfg = {
        "runs_dir": str(tmp_path / "runs"),
        "data": {"image_size": 16, "limit": 32, "batch_size": 16},
        "model": {"backbone": str(tmp_path / "tiny.keras")},
        "tuning": {
            "max_trials": 2,
            "epochs": 1,
            "learning_rates": [1e-2, 1e-3],
            "unfreeze_depths": [0, 1],
        },
    }
    (tmp_path / "t.yaml").write_text(yaml.safe_dump(cfg))
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(["tune", str(tmp_path / "t.yaml"), "--quiet"]) == 0
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.startswith("trial ")]
    assert len(lines) == 2, out
    for i, line in enumerate(lines, 1):
        assert f"[{i}/2]: " in line and "learning_rate=" in line, out
        assert " -> val_accuracy 0." in line or " -> val_accuracy 1." in line, out
    messages = [str(w.message) for w in caught]
    assert not [m for m in messages if "shuffle=True" in m], messages
    assert not [m for m in messages if "Skipping variable loading" in m], messages


def _fresh_bn_backbone():
    inputs = keras.Input((8, 8, 3))
    h = keras.layers.Conv2D(4, 3, name="conv")(inputs)
    h = keras.layers.BatchNormalization(name="bn")(h)  # never trained: [build] line
    return keras.Model(inputs, h, name="fresh_bn")


def test_what_a_build_says_comes_out_once_per_search(capsys):
    hm = TransferHyperModel(_fresh_bn_backbone, 2, unfreeze_depth=0)
    for _ in range(3):  # three trials' builds
        hm.build(kt.HyperParameters())
    out = capsys.readouterr().out
    assert out.count("BatchNormalization layer(s) have never been trained") == 1
    assert hm.builds == 3
    other = TransferHyperModel(_fresh_bn_backbone, 2, unfreeze_depth=0)
    other.build(kt.HyperParameters())  # another search says it again
    assert "have never been trained" in capsys.readouterr().out


def test_said_once_drops_repeated_log_records_warnings_and_lines(caplog, capsys):
    import logging
    import warnings

    from keras_transfer.tuning.repeats import said_once

    seen: set = set()
    logger = logging.getLogger("keras_transfer")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for i in range(3):
            with said_once(seen):
                logger.warning("the backbone is frozen and random")
                warnings.warn(
                    "the backbone is frozen and random", UserWarning, stacklevel=1
                )
                print("[build] momentum 0.9")
                print(f"trial {i}")  # a new line each time: always shown
    assert caplog.text.count("the backbone is frozen and random") == 1
    assert len([w for w in caught if "frozen and random" in str(w.message)]) == 1
    out = capsys.readouterr().out
    assert out.count("[build] momentum 0.9") == 1 and "trial 2" in out
    with pytest.raises(RuntimeError), said_once(seen):  # shown even on an error
        print("[build] before the error")
        raise RuntimeError("boom")
    assert "[build] before the error" in capsys.readouterr().out


@pytest.mark.parametrize(
    "bad, match",
    [
        (lambda x, y: (x, np.eye(2)[y]), "argmax"),
        (lambda x, y: (x[:, :6, :6], y), r"shape \(8, 8, 3\) per example"),
    ],
)
def test_a_search_on_data_no_trial_can_read_stops_at_once(tmp_path, bad, match):
    x, y = bad(*tiny_data())
    hm = TransferHyperModel(tiny_backbone, 2)
    tuner = make_tuner(
        "random", hm, "val_accuracy", max_trials=3, directory=tmp_path,
        project_name="bad",
    )  # fmt: skip
    with pytest.raises(ValueError, match=match):
        tuner.search(x, y, validation_data=(x, y), epochs=1, verbose=0)
    assert len(tuner.oracle.trials) == 1  # not retried trial after trial
