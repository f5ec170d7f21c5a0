"""Frozen phases on cached features: exact, automatic only where exact, end-to-end."""

import logging
import os

import numpy as np
import pytest
from helpers import tiny_bn_backbone

from keras_transfer import build_classifier, fine_tune
from keras_transfer._backend import keras, tf
from keras_transfer.features import (
    cache_features,
    caching_blockers,
    data_blockers,
    split_model,
)


def _data(n=40):
    rng = np.random.default_rng(1)
    x = rng.uniform(0, 255, (n, 16, 16, 3)).astype("float32")
    return x, np.arange(n) % 2


def _train(mode, data, validation=None, caplog=None, **build):
    keras.utils.set_random_seed(0)
    model = build_classifier(tiny_bn_backbone(), 2, dropout=0.3, **build)
    keras.utils.set_random_seed(1)
    with caplog.at_level(logging.INFO, logger="keras_transfer"):
        history = fine_tune(
            model,
            data,
            validation,
            head_epochs=3,
            fine_tune_epochs=0,
            cache_features=mode,
            verbose=0,
        )
    return model, history


def _head_weights(model):
    return model.get_layer("predictions").get_weights()


def _max_diff(a, b):
    return max(float(np.abs(p - q).max()) for p, q in zip(a, b))


@pytest.mark.parametrize("kind", ["arrays", "dataset"])
def test_cached_head_phase_equals_uncached(kind, caplog):
    x, y = _data()
    if kind == "arrays":
        train, val = (x, y), (x[:16], y[:16])
    else:  # one fixed order in every epoch, so both runs see the same batches
        train = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
        val = tf.data.Dataset.from_tensor_slices((x[:16], y[:16])).batch(8)
    plain, h_plain = _train(False, train, val, caplog)
    assert "cached features" not in caplog.text
    cached, h_cached = _train("auto", train, val, caplog)
    assert "[fine_tune] head phase on cached features: 40 examples, 8 dims" in (
        caplog.text
    )
    assert _max_diff(_head_weights(plain), _head_weights(cached)) < 1e-5
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        np.testing.assert_allclose(
            h_plain.history[key], h_cached.history[key], rtol=1e-5
        )
    assert h_cached.epoch == [0, 1, 2]


def test_flatten_pooling_is_cached_as_flat_features(caplog):
    x, y = _data()
    plain, _ = _train(False, (x, y), caplog=caplog, pooling="flatten")
    cached, _ = _train("auto", (x, y), caplog=caplog, pooling="flatten")
    dims = int(np.prod(plain.get_layer("pool").output.shape[1:]))
    assert f"head phase on cached features: 40 examples, {dims} dims" in caplog.text
    assert _max_diff(_head_weights(plain), _head_weights(cached)) < 1e-5


def test_auto_is_off_with_augmentation(caplog):
    x, y = _data(16)
    model, _ = _train("auto", (x, y), None, caplog, augmentation={"flip": "horizontal"})
    assert "cached features:" not in caplog.text
    assert "runs uncached" in caplog.text and "augmentation" in caplog.text
    with pytest.raises(ValueError, match="augmentation layer 'augmentation'"):
        _train(True, (x, y), None, caplog, augmentation={"flip": "horizontal"})


def test_blockers_name_unfrozen_layers_batchnorm_and_random_data():
    model = build_classifier(tiny_bn_backbone(), 2, unfreeze_depth="all")
    extractor, _ = split_model(model)
    reasons = caching_blockers(model, extractor)
    assert any("trainable weights before the head" in r for r in reasons)
    model = build_classifier(
        tiny_bn_backbone(), 2, unfreeze_depth=1, train_batchnorm=True
    )
    reasons = caching_blockers(model, split_model(model)[0])
    assert any("trainable weights" in r for r in reasons)
    model = build_classifier(tiny_bn_backbone(), 2)
    assert caching_blockers(model, split_model(model)[0]) == []
    x, y = _data(8)
    plain = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(8).batch(4)
    assert data_blockers(plain) == []  # a shuffle keeps the images
    flipped = plain.map(lambda a, b: (tf.image.random_flip_left_right(a), b))
    assert "random ops" in data_blockers(flipped)[0]
    assert "infinite" in data_blockers(plain.repeat())[0]


def test_auto_is_off_when_phase_two_unfreezes(caplog):
    """Phase 1 caches; phase 2 (unfrozen) runs end to end and still trains."""
    x, y = _data(16)
    keras.utils.set_random_seed(0)
    model = build_classifier(tiny_bn_backbone(), 2)
    conv1 = model.get_layer("tiny_backbone").get_layer("conv1")
    before = conv1.kernel.numpy().copy()
    with caplog.at_level(logging.INFO, logger="keras_transfer"):
        history = fine_tune(model, (x, y), head_epochs=1, fine_tune_epochs=1, verbose=0)
    assert caplog.text.count("cached features:") == 1
    assert history.epoch == [0, 1]
    assert not np.array_equal(before, conv1.kernel.numpy())


def test_returned_model_is_end_to_end_and_saves(tmp_path, caplog):
    x, y = _data(16)
    model, _ = _train(True, (x, y), None, caplog)
    assert model.input_shape == (None, 16, 16, 3)
    path = os.path.join(tmp_path, "m.keras")
    model.save(path)
    reloaded = keras.saving.load_model(path)
    np.testing.assert_allclose(
        reloaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6
    )


def test_callbacks_see_the_whole_model(tmp_path, caplog):
    x, y = _data(16)
    path = os.path.join(tmp_path, "last.keras")
    seen = []

    class Spy(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append(self.model.input_shape)
            self.model.stop_training = epoch == 1  # EarlyStopping's way

    keras.utils.set_random_seed(0)
    model = build_classifier(tiny_bn_backbone(), 2)
    with caplog.at_level(logging.INFO, logger="keras_transfer"):
        history = fine_tune(
            model,
            (x, y),
            head_epochs=4,
            fine_tune_epochs=0,
            callbacks=[Spy(), keras.callbacks.ModelCheckpoint(path)],
            verbose=0,
        )
    assert "cached features" in caplog.text
    assert seen == [(None, 16, 16, 3)] * 2 and history.epoch == [0, 1]
    assert keras.saving.load_model(path).input_shape == (None, 16, 16, 3)


def test_disk_cache_when_over_the_memory_limit(tmp_path):
    x, y = _data(12)
    model = build_classifier(tiny_bn_backbone(), 2, dropout=0.0)
    extractor, head = split_model(model)
    assert cache_features(extractor, (x, y), memory_limit=10) is None
    cached = cache_features(
        extractor, (x, y), batch_size=4, cache_dir=str(tmp_path), memory_limit=10
    )
    assert (cached.num_examples, cached.dims) == (12, 8)
    assert cached.where.startswith(str(tmp_path)) and os.listdir(cached.where)
    features = np.concatenate([f for f, _ in cached.fit_kwargs["x"]])
    np.testing.assert_allclose(
        np.sort(features, axis=0),
        np.sort(extractor.predict(x, verbose=0), axis=0),
        atol=1e-5,
    )
    cached.close()
    assert not os.path.exists(cached.where)


def test_cache_features_validation():
    x, y = _data(8)
    model = build_classifier(tiny_bn_backbone(), 2)
    with pytest.raises(ValueError, match="Expected cache_features"):
        fine_tune(model, (x, y), cache_features="yes", verbose=0)


def _cli_config(tmp_path, **training):
    import yaml

    keras.utils.set_random_seed(0)
    backbone = keras.Sequential(
        [
            keras.Input((16, 16, 3)),
            keras.layers.Rescaling(1 / 255.0),
            keras.layers.Conv2D(8, 3, strides=2, activation="relu"),
            keras.layers.BatchNormalization(),
        ],
        name="tiny_cnn",
    )
    backbone.save(tmp_path / "tiny.keras")
    cfg = {
        "name": "r",
        "runs_dir": str(tmp_path / "runs"),
        "data": {"image_size": 16, "limit": 48, "batch_size": 16},
        "model": {"backbone": str(tmp_path / "tiny.keras")},
        "training": {"epochs": 2, "fine_tune_epochs": 0, **training},
    }
    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


def test_cli_train_caches_the_head_phase(tmp_path, capsys):
    from keras_transfer.cli import main

    cfg = _cli_config(tmp_path)
    assert main(["train", cfg]) == 0
    out = capsys.readouterr().out
    assert "[fine_tune] head phase on cached features: " in out
    assert (tmp_path / "runs" / "r" / "model.keras").exists()
    assert not (tmp_path / "runs" / "r" / "checkpoints" / "features").exists()
    cfg = _cli_config(tmp_path, cache_features=False)
    assert main(["train", cfg, "--name", "plain"]) == 0
    assert "cached features" not in capsys.readouterr().out


def test_cli_cache_features_true_with_augmentation_fails_early(tmp_path, capsys):
    from keras_transfer.cli import main

    cfg = _cli_config(tmp_path, cache_features=True)
    code = main(["train", cfg, "--set", "augmentation.flip=horizontal"])
    err = capsys.readouterr().err
    assert code != 0 and "training.cache_features" in err and "augmentation" in err
    assert not (tmp_path / "runs" / "r").exists()


def test_tuner_reuses_one_cache_across_depth_zero_trials(tmp_path, caplog):
    from keras_transfer.tuning import TransferHyperModel, make_tuner

    x, y = _data(32)
    hypermodel = TransferHyperModel(
        tiny_bn_backbone(),
        2,
        learning_rate=[1e-3, 1e-2],
        unfreeze_depth=0,
        dropout=0.0,
        head_units=None,
    )
    tuner = make_tuner(
        "grid", hypermodel, "val_accuracy", max_trials=2, directory=tmp_path
    )
    with caplog.at_level(logging.INFO, logger="keras_transfer"):
        tuner.search(x, y, validation_data=(x[:8], y[:8]), epochs=2, verbose=0)
    depths = [
        t.hyperparameters.values["unfreeze_depth"] for t in tuner.oracle.trials.values()
    ]
    assert depths == [0, 0]
    assert caplog.text.count("[tuner] head phase on cached features: 32 examples") == 2
    assert hypermodel.feature_passes == 1
    best = tuner.get_best_models(1)[0]
    assert best.predict(x[:4], verbose=0).shape == (4, 2)


def test_dropout_inside_the_backbone_blocks_only_with_a_rate():
    def backbone(rate):
        inputs = keras.Input((16, 16, 3))
        x = keras.layers.Conv2D(4, 3, name="conv")(inputs)
        x = keras.layers.Dropout(rate, name="inner_dropout")(x)
        return keras.Model(inputs, x, name="bb")

    for rate, blocked in ((0.1, True), (0.0, False)):
        model = build_classifier(backbone(rate), 2)
        reasons = caching_blockers(model, split_model(model)[0])
        assert any("inner_dropout" in r for r in reasons) is blocked
