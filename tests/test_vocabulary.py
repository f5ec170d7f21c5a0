"""One vocabulary (docs/vocabulary.md): renamed arguments and their deprecated aliases.

Each alias warns (naming the new name) and behaves like the new name; passing both is
a ValueError; configs saved under an old key still load.
"""

import inspect
import json
import warnings
import zipfile

import numpy as np
import pytest

from keras_transfer._backend import keras, tf
from keras_transfer._deprecation import rename_config_keys, renamed_arguments
from keras_transfer.adaptation import (
    DANN,
    DomainAdaptationModel,
    DomainLambdaScheduler,
    dann_lambda,
)
from keras_transfer.data import domain_pairs
from keras_transfer.fewshot import ProtoNetClassifier


def tiny_backbone(dim=4, units=8):
    return keras.Sequential([keras.Input((dim,)), keras.layers.Dense(units, "relu")])


def _no_warning(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        return fn(*args, **kwargs)


# ------------------------------------------------------------------- the helper
def test_helper_warns_maps_and_refuses_both():
    @renamed_arguments(old="new")
    def f(a, new=1):
        return a, new

    with pytest.warns(DeprecationWarning, match=r"f: old= .* use new= instead"):
        assert f(0, old=5) == (0, 5)
    assert _no_warning(f, 0, new=5) == (0, 5)
    with pytest.raises(ValueError, match="Received both new= and old="):
        f(0, new=1, old=2)
    with pytest.raises(ValueError, match="Received both new= and old="):
        f(0, 1, old=2)  # the new one given positionally
    assert inspect.signature(f) == inspect.signature(f.__wrapped__)


def test_helper_refuses_wrong_declarations():
    with pytest.raises(TypeError, match="no parameter 'missing'"):
        renamed_arguments(old="missing")(lambda new=1: new)
    with pytest.raises(TypeError, match="still has the old name"):
        renamed_arguments(old="new")(lambda old=1, new=1: new)


def test_rename_config_keys():
    assert rename_config_keys({"encoder": 1, "x": 2}, {"encoder": "backbone"}, "M") == {
        "backbone": 1,
        "x": 2,
    }
    with pytest.raises(ValueError, match="in M.*drop encoder="):
        rename_config_keys({"encoder": 1, "backbone": 1}, {"encoder": "backbone"}, "M")


# ----------------------------------------------------------- max_value -> lambda_max
def test_dann_lambda_max_value_alias():
    expected = _no_warning(dann_lambda, 0.3, gamma=10.0, lambda_max=0.4)
    assert expected == pytest.approx(0.4 * (2 / (1 + np.exp(-3.0)) - 1))
    with pytest.warns(DeprecationWarning, match="use lambda_max= instead"):
        assert dann_lambda(0.3, gamma=10.0, max_value=0.4) == expected
    with pytest.raises(ValueError, match="lambda_max= and max_value="):
        dann_lambda(0.3, lambda_max=0.4, max_value=0.4)
    with pytest.raises(ValueError, match="lambda_max= and max_value="):
        dann_lambda(0.3, 10.0, 0.4, max_value=0.4)


def test_lambda_scheduler_alias_drives_training_like_the_new_name():
    rng = np.random.default_rng(0)
    xs, ys = rng.normal(size=(32, 4)).astype("float32"), rng.integers(0, 2, 32)
    xt = rng.normal(size=(32, 4)).astype("float32")
    lambdas = {}
    for key in ("lambda_max", "max_value"):
        model = DANN(tiny_backbone(), 2)
        model.compile(optimizer="sgd")
        if key == "max_value":
            with pytest.warns(DeprecationWarning, match="use lambda_max= instead"):
                scheduler = DomainLambdaScheduler(max_value=0.25, total_steps=4)
        else:
            scheduler = _no_warning(
                DomainLambdaScheduler, lambda_max=0.25, total_steps=4
            )
        assert scheduler.lambda_max == 0.25
        pairs = domain_pairs((xs, ys), xt, batch_size=16, seed=0)
        model.fit(pairs, epochs=1, verbose=0, callbacks=[scheduler])
        lambdas[key] = float(model.lambda_)
    # 2 steps of a 4-step ramp: λ of the second step, p = 1/4.
    assert lambdas["lambda_max"] == pytest.approx(dann_lambda(0.25, lambda_max=0.25))
    assert lambdas["max_value"] == lambdas["lambda_max"]


def test_lambda_scheduler_old_attribute_and_both():
    scheduler = DomainLambdaScheduler(lambda_max=0.5)
    with pytest.warns(DeprecationWarning, match="use lambda_max= instead"):
        assert scheduler.max_value == 0.5
    with pytest.warns(DeprecationWarning):
        scheduler.max_value = 0.2
    assert scheduler.lambda_max == 0.2
    with pytest.raises(ValueError, match="DomainLambdaScheduler.*lambda_max= and"):
        DomainLambdaScheduler(lambda_max=0.5, max_value=0.5)
    with pytest.raises(ValueError, match="lambda_max >= 0"):
        DomainLambdaScheduler(lambda_max=-1.0)


# ----------------------------------------------------------------- encoder -> backbone
@pytest.mark.parametrize("cls", [DomainAdaptationModel, DANN])
def test_models_take_backbone_and_encoder_alias(cls):
    backbone = tiny_backbone()
    new = _no_warning(cls, backbone=backbone, num_classes=3)
    with pytest.warns(
        DeprecationWarning, match=rf"{cls.__name__}: encoder= .*backbone="
    ):
        old = cls(encoder=backbone, num_classes=3)
    assert new.encoder is backbone and old.encoder is backbone
    assert type(old.method) is type(new.method)
    x = np.ones((2, 4), "float32")
    old.classifier.set_weights(new.classifier.get_weights())
    if new.method is not None:
        old.method.set_weights(new.method.get_weights())
    np.testing.assert_allclose(old.predict(x, verbose=0), new.predict(x, verbose=0))
    with pytest.raises(ValueError, match="Received both backbone= and encoder="):
        cls(backbone=backbone, encoder=backbone, num_classes=3)
    with pytest.raises(ValueError, match="Received both backbone= and encoder="):
        cls(backbone, 3, encoder=backbone)


def test_model_signature_and_config_use_backbone():
    for cls in (DomainAdaptationModel, DANN):
        assert "encoder" not in inspect.signature(cls.__init__).parameters
        # Keras derives auto-configs with getfullargspec (no __wrapped__ following).
        assert inspect.getfullargspec(cls.__init__).args[:2] == ["self", "backbone"]
    model = DANN(tiny_backbone(), 2)
    config = model.get_config()
    assert "backbone" in config and "encoder" not in config
    clone = _no_warning(DANN.from_config, config)
    assert clone.encoder.output_shape == (None, 8)


def test_config_with_old_encoder_key_loads():
    model = DomainAdaptationModel(tiny_backbone(), 2, method="coral")
    config = model.get_config()
    config["encoder"] = config.pop("backbone")
    clone = _no_warning(DomainAdaptationModel.from_config, config)  # a file, no warning
    assert clone.encoder.output_shape == (None, 8)
    assert "backbone" in clone.get_config()
    config["backbone"] = config["encoder"]
    with pytest.raises(ValueError, match="drop encoder="):
        DomainAdaptationModel.from_config(config)


def test_keras_file_saved_with_old_encoder_key_loads(tmp_path):
    """A .keras file written before the rename (config key "encoder") still loads."""
    model = DANN(tiny_backbone(), 2)
    x = np.random.default_rng(0).normal(size=(5, 4)).astype("float32")
    expected = model.predict(x, verbose=0)
    new_path, old_path = tmp_path / "new.keras", tmp_path / "old.keras"
    model.save(new_path)
    with zipfile.ZipFile(new_path) as src, zipfile.ZipFile(old_path, "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "config.json":
                saved = json.loads(data)
                saved["config"]["encoder"] = saved["config"].pop("backbone")
                data = json.dumps(saved).encode()
            dst.writestr(item, data)
    loaded = keras.saving.load_model(old_path)
    assert isinstance(loaded, DANN)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), expected, atol=1e-6)


def test_protonet_backbone_and_encoder_alias():
    backbone = tiny_backbone()
    new = _no_warning(ProtoNetClassifier, backbone)
    with pytest.warns(DeprecationWarning, match="ProtoNetClassifier: encoder="):
        old = ProtoNetClassifier(encoder=backbone)
    assert new.encoder is backbone and old.encoder is backbone
    x = np.random.default_rng(0).normal(size=(6, 4)).astype("float32")
    y = np.arange(6) % 3
    np.testing.assert_array_equal(
        old.fit_support(x, y).predict(x), new.fit_support(x, y).predict(x)
    )
    with pytest.raises(ValueError, match="Received both backbone= and encoder="):
        ProtoNetClassifier(backbone, encoder=backbone)


# ------------------------------------------------------ distribution_strategy -> strategy
def test_make_tuner_strategy_and_alias(tmp_path):
    from keras_transfer.tuning import make_tuner

    def build(hp):
        return tiny_backbone()

    strategy = tf.distribute.get_strategy()
    common = {"max_trials": 1, "directory": tmp_path, "overwrite": True}
    new = _no_warning(
        make_tuner, "random", build, strategy=strategy, project_name="a", **common
    )
    with pytest.warns(DeprecationWarning, match="make_tuner: distribution_strategy="):
        old = make_tuner(
            "random", build, distribution_strategy=strategy, project_name="b", **common
        )
    assert new.distribution_strategy is strategy
    assert old.distribution_strategy is strategy
    with pytest.raises(ValueError, match="Received both strategy= and"):
        make_tuner(
            "random", build, strategy=strategy, distribution_strategy=strategy, **common
        )


# ------------------------------------------------------------------ the public surface
#: Old names a public signature may not use any more, with their replacement.
OLD_NAMES = {
    "encoder": "backbone",
    "distribution_strategy": "strategy",
    "max_value": "lambda_max",
}
#: Renames listed in docs/vocabulary.md whose file another change owns (pending).
PENDING: set = set()


def test_public_signatures_use_the_vocabulary():
    import keras_transfer

    found = set()
    for name in keras_transfer.__all__:
        obj = getattr(keras_transfer, name)
        target = obj.__init__ if inspect.isclass(obj) else obj
        if not callable(target):
            continue
        try:
            parameters = inspect.signature(target).parameters
        except (TypeError, ValueError):
            continue
        found |= {(name, p) for p in parameters if p in OLD_NAMES}
    assert found <= PENDING, {
        f"{name}({p}=...)": f"use {OLD_NAMES[p]}=" for name, p in found - PENDING
    }


def test_adapt_takes_backbone_and_lambda_max_with_the_old_names_deprecated():
    import numpy as np

    import keras_transfer as kt
    from keras_transfer._backend import keras

    rng = np.random.default_rng(0)
    xs = rng.normal(size=(60, 4)).astype("float32")
    ys = (xs[:, 0] > 0).astype(int)
    xt = xs + 0.5
    enc = keras.Sequential([keras.Input((4,)), keras.layers.Dense(4, "relu")])
    with pytest.warns(DeprecationWarning, match="use backbone="):
        result = kt.adapt(
            encoder=enc,
            source=(xs, ys),
            target=xt,
            method="source_only",
            epochs=1,
            verbose=0,
        )
    assert result.method == "source_only"
    with pytest.warns(DeprecationWarning, match="use lambda_max="):
        with pytest.raises(ValueError, match="Expected method to be one of"):
            kt.adapt(enc, (xs, ys), xt, method="nope", lambda_=0.5, verbose=0)
    with pytest.raises(ValueError, match="Received both"):
        kt.adapt(enc, (xs, ys), xt, encoder=enc, verbose=0)


# ------------------------------------------ builders share build_classifier's names
SHARED_BUILDER_ARGUMENTS = ("strategy", "backbone_learning_rate", "learning_rate")


@pytest.mark.parametrize(
    "builder, shared",
    [
        ("build_regressor", SHARED_BUILDER_ARGUMENTS),
        ("build_multitask", SHARED_BUILDER_ARGUMENTS),
        # learning_rate=None there: picked by depth (docs/vocabulary.md).
        ("build_text_classifier", ("strategy", "backbone_learning_rate")),
    ],
)
def test_builders_take_build_classifiers_arguments(builder, shared):
    import keras_transfer

    reference = inspect.signature(keras_transfer.build_classifier).parameters
    parameters = inspect.signature(getattr(keras_transfer, builder)).parameters
    for name in (*shared, "unfreeze_depth"):
        assert name in parameters, f"{builder} lacks {name}="
        assert parameters[name].default == reference[name].default, name
        assert parameters[name].kind is inspect.Parameter.KEYWORD_ONLY, name
    kwargs = [p for p in parameters.values() if p.kind is inspect.Parameter.VAR_KEYWORD]
    assert [p.name for p in kwargs] == ["backbone_kwargs"], builder


def test_text_pooling_defaults_to_avg():
    """'mean' is a deprecated value: no public default may use it."""
    from keras_transfer.text import TextEncoder, build_text_classifier
    from keras_transfer.text.adaptation import build_text_encoder_model
    from keras_transfer.text.encoder import POOLINGS, check_pooling

    assert "mean" not in POOLINGS and "avg" in POOLINGS
    for fn in (TextEncoder.__init__, build_text_classifier, build_text_encoder_model):
        assert inspect.signature(fn).parameters["pooling"].default == "avg"
    with pytest.warns(DeprecationWarning, match=r"f: pooling='mean'.*pooling='avg'"):
        assert check_pooling("mean", "f") == "avg"
    assert _no_warning(check_pooling, "mean", "f", warn=False) == "avg"
    with pytest.raises(ValueError, match=r"in f\. Received: pooling='max'"):
        check_pooling("max", "f")
