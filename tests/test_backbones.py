"""Each loader on a real artifact the test creates; bad specs raise specific errors."""

import numpy as np
import pytest

from keras_transfer import build_classifier, load_backbone, register_backbone_loader
from keras_transfer._backend import keras, tf
from keras_transfer.backbones import HubLayer, LoadedBackbone, list_backbone_schemes
from keras_transfer.freezing import find_backbone


@pytest.fixture(scope="module")
def vgg_preset(tmp_path_factory):
    import keras_hub

    path = str(tmp_path_factory.mktemp("preset"))
    backbone = keras_hub.models.VGGBackbone(
        stackwise_num_repeats=[1, 1],
        stackwise_num_filters=[4, 8],
        image_shape=(16, 16, 3),
    )
    # "Pretrained" weights that no seeded random init reproduces.
    rng = np.random.default_rng(123)
    backbone.set_weights([rng.normal(0, 0.3, w.shape) for w in backbone.get_weights()])
    backbone.save_to_preset(path)
    keras_hub.layers.ImageConverter(
        image_size=(16, 16), scale=1 / 255.0
    ).save_to_preset(path)
    return path, backbone


def make_hub_module():
    """A TF2 SavedModel in TF-Hub's reusable format (variables, training arg)."""
    obj = tf.train.Checkpoint()
    kernel = tf.Variable(tf.random.normal((4, 3), seed=1), name="kernel")
    bias = tf.Variable(tf.zeros((3,)), name="bias")
    stat = tf.Variable(tf.ones((3,)), trainable=False, name="stat")
    obj.variables = [kernel, bias, stat]
    obj.trainable_variables = [kernel, bias]
    obj.regularization_losses = [
        tf.function(lambda: 1e-3 * tf.reduce_sum(tf.square(kernel)), input_signature=[])
    ]

    @tf.function(
        input_signature=[
            tf.TensorSpec([None, 4], tf.float32),
            tf.TensorSpec([], tf.bool),
        ]
    )
    def call(x, training=False):
        y = tf.matmul(x, kernel) + bias
        y = tf.cond(training, lambda: tf.nn.dropout(y, 0.0), lambda: y)
        return tf.nn.relu(y) * stat

    obj.__call__ = call
    return obj


@pytest.fixture(scope="module")
def hub_dir(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("hub"))
    tf.saved_model.save(make_hub_module(), path)
    return path


def test_keras_hub_preset_roundtrip(vgg_preset):
    path, original = vgg_preset
    bb = load_backbone(f"keras_hub:{path}")
    assert bb.modality == "image"
    assert bb.input_shape == (16, 16, 3)
    assert isinstance(bb.preprocessor, keras.layers.Layer)
    x = np.random.rand(2, 16, 16, 3).astype("float32")
    np.testing.assert_allclose(
        bb.model.predict(x, verbose=0), original.predict(x, verbose=0)
    )
    # The image converter scales raw [0, 255] images to [0, 1].
    np.testing.assert_allclose(bb.preprocessor(x * 255.0).numpy(), x, atol=1e-5)


def test_keras_hub_without_weights_differs(vgg_preset):
    path, original = vgg_preset
    bb = load_backbone(f"keras_hub:{path}", load_weights=False)
    x = np.random.rand(2, 16, 16, 3).astype("float32")
    assert not np.allclose(
        bb.model.predict(x, verbose=0), original.predict(x, verbose=0)
    )


@pytest.mark.parametrize("scheme", ["tfhub", "saved_model"])
def test_hub_layer_trains_and_roundtrips(hub_dir, scheme, tmp_path):
    bb = load_backbone(f"{scheme}:{hub_dir}", trainable=True, input_shape=(4,))
    assert isinstance(bb.model, HubLayer)
    model = build_classifier(bb, 2, unfreeze_depth="all", dropout=0.0)
    hub = find_backbone(model)
    assert hub is bb.model
    names = [w.name for w in hub.trainable_weights]
    assert names == ["kernel", "bias"]
    before = [w.numpy().copy() for w in hub.weights]
    x = np.random.rand(16, 4).astype("float32")
    y = np.arange(16) % 2
    model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    after = [w.numpy() for w in hub.weights]
    assert not np.allclose(before[0], after[0]), "hub kernel did not train"
    np.testing.assert_array_equal(before[2], after[2])  # non-trainable stat
    # The module's own function sees the updated variables (same storage).
    module_out = hub._fn(tf.constant(x[:2]), training=False).numpy()
    np.testing.assert_allclose(module_out, hub(x[:2]).numpy(), rtol=1e-6)
    # .keras round trip keeps the fine-tuned values.
    path = str(tmp_path / "hub.keras")
    model.save(path)
    reloaded = keras.models.load_model(path)
    np.testing.assert_allclose(
        reloaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6
    )
    # model.export writes a self-contained SavedModel.
    export_dir = str(tmp_path / "export")
    model.export(export_dir, format="tf_saved_model", verbose=False)
    exported = tf.saved_model.load(export_dir)  # keep a reference while serving
    served = exported.serve(tf.constant(x)).numpy()
    np.testing.assert_allclose(served, model.predict(x, verbose=0), atol=1e-6)


def test_hub_layer_frozen_keeps_weights(hub_dir):
    bb = load_backbone(f"tfhub:{hub_dir}", input_shape=(4,))
    model = build_classifier(bb, 2, unfreeze_depth=0)
    hub = find_backbone(model)
    before = [w.numpy().copy() for w in hub.weights]
    head_before = model.get_layer("predictions").kernel.numpy().copy()
    model.fit(np.random.rand(8, 4), np.arange(8) % 2, epochs=1, verbose=0)
    for a, w in zip(before, hub.weights):
        np.testing.assert_array_equal(a, w.numpy())
    assert not np.allclose(head_before, model.get_layer("predictions").kernel.numpy())


def test_hub_layer_regularization_losses_added_when_training(hub_dir):
    layer = HubLayer(hub_dir, trainable=True)
    x = tf.ones((2, 4))
    layer(x, training=True)
    assert len(layer.losses) == 1 and float(layer.losses[0]) > 0
    frozen = HubLayer(hub_dir, trainable=False)
    frozen(x, training=True)
    assert frozen.losses == []


def test_hub_layer_config(hub_dir):
    from helpers import run_config_roundtrip

    run_config_roundtrip(
        HubLayer,
        {
            "handle": hub_dir,
            "loader": "saved_model",
            "signature": None,
            "output_key": None,
            "trainable": True,
        },
    )


def test_keras_applications_with_preprocess(tmp_path):
    bb = load_backbone(
        "keras_applications:ResNet50", weights=None, input_shape=(32, 32, 3)
    )
    assert bb.input_shape == (32, 32, 3)
    x = np.random.uniform(0, 255, (1, 32, 32, 3)).astype("float32")
    expected = keras.applications.resnet50.preprocess_input(x.copy())
    np.testing.assert_allclose(bb.preprocessor(x).numpy(), expected, atol=1e-4)


def test_model_passes_through():
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4)])
    bb = load_backbone(model)
    assert bb.model is model and bb.modality == "features"
    assert load_backbone(bb) is bb


def test_register_custom_scheme():
    def loader(rest, **kwargs):
        model = keras.Sequential([keras.Input((int(rest),)), keras.layers.Dense(3)])
        return LoadedBackbone(model, modality="features", spec=f"tiny:{rest}")

    register_backbone_loader("tiny_test", loader, description="test", overwrite=True)
    assert "tiny_test" in list_backbone_schemes()
    bb = load_backbone("tiny_test:5")
    assert bb.model.input_shape == (None, 5)
    with pytest.raises(ValueError, match="already registered"):
        register_backbone_loader("tiny_test", loader)


@pytest.mark.parametrize(
    "spec, match",
    [
        (
            "nope:thing",
            r"Unknown backbone scheme 'nope'.*Accepted schemes: .*keras_hub",
        ),
        ("no_scheme_here", r"Expected a backbone spec of the form"),
        (
            "keras_hub:/no/such/dir/xyz",
            r"Could not load the KerasHub preset.*local preset",
        ),
        ("keras_hub:not_a_real_preset_name", r"Could not load the KerasHub preset"),
        ("saved_model:/no/such/dir", r"SavedModel directory '/no/such/dir' not found"),
        ("tfhub:/no/such/module/dir", r"Could not load the TF-Hub module.*offline"),
        ("keras_applications:NotANet", r"Unknown keras.applications model 'NotANet'"),
    ],
)
def test_bad_specs(spec, match):
    with pytest.raises(ValueError, match=match):
        load_backbone(spec)


def test_bad_spec_type():
    with pytest.raises(ValueError, match="Received: int"):
        load_backbone(42)


def test_classifier_is_not_a_backbone():
    model = keras.Sequential(
        [keras.Input((8,)), keras.layers.Dense(3, activation="softmax")]
    )
    with pytest.raises(ValueError, match="looks like a classifier"):
        load_backbone(model)


def test_non_feature_output_rejected():
    inputs = keras.Input((4, 4, 4, 4, 2))
    model = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    with pytest.raises(ValueError, match="rank 2"):
        load_backbone(model)


def test_include_top_refused():
    with pytest.raises(ValueError, match="include_top=False"):
        load_backbone(
            "keras_applications:MobileNetV3Small",
            weights=None,
            input_shape=(32, 32, 3),
            include_top=True,
        )


def test_text_backbone_via_keras_hub(tmp_path):
    import keras_hub

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "good", "bad", "food"]
    tokenizer = keras_hub.models.BertTokenizer(vocabulary=vocab)
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=len(vocab),
        num_layers=2,
        num_heads=2,
        hidden_dim=8,
        intermediate_dim=16,
        max_sequence_length=16,
    )
    path = str(tmp_path / "bert")
    backbone.save_to_preset(path)
    tokenizer.save_to_preset(path)
    bb = load_backbone(f"keras_hub:{path}", sequence_length=8)
    assert bb.modality == "text"
    features = bb.preprocessor(["good food", "bad"])
    model = build_classifier(bb, 2, unfreeze_depth=1)
    assert model.predict(features, verbose=0).shape == (2, 2)


def test_pretrained_flag_of_each_loader(vgg_preset, hub_dir):
    path, _ = vgg_preset
    assert load_backbone(f"keras_hub:{path}").pretrained is True
    assert load_backbone(f"keras_hub:{path}", load_weights=False).pretrained is False
    assert load_backbone(f"tfhub:{hub_dir}", input_shape=(4,)).pretrained is True
    random_app = load_backbone(
        "keras_applications:MobileNetV3Small", weights=None, input_shape=(32, 32, 3)
    )
    assert random_app.pretrained is False
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4)])
    assert load_backbone(model).pretrained is None  # unknown: never warned about


def test_frozen_random_backbone_warns_and_logs(vgg_preset, caplog):
    path, _ = vgg_preset
    spec = f"keras_hub:{path}"
    with caplog.at_level("WARNING", logger="keras_transfer"):
        with pytest.warns(UserWarning, match="random weights") as record:
            build_classifier(spec, 2, unfreeze_depth=0, load_weights=False)
    message = str(record[0].message)
    assert spec in message and "keras-transfer pretrain" in message
    assert "unfreeze_depth='all'" in message
    assert any("random weights" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    "kwargs", [{"unfreeze_depth": "all", "load_weights": False}, {"unfreeze_depth": 0}]
)
def test_no_warning_when_trained_or_pretrained(vgg_preset, kwargs):
    import warnings

    path, _ = vgg_preset
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*random weights.*")
        build_classifier(f"keras_hub:{path}", 2, **kwargs)


def test_random_backbone_with_frozen_batchnorm_warns_in_both_builders():
    import warnings

    from keras_transfer.encoders import make_encoder

    def random_mobilenet():
        return load_backbone(
            "keras_applications:MobileNetV3Small", weights=None, input_shape=(32, 32, 3)
        )

    match = r"its \d+ BatchNormalization layers stay frozen"
    frozen = {"unfreeze_depth": "all", "train_batchnorm": False}
    with pytest.warns(UserWarning, match=match) as record:
        build_classifier(random_mobilenet(), 3, **frozen)
    assert "model.train_batchnorm: auto" in str(record[0].message)
    with pytest.warns(UserWarning, match=match):
        make_encoder(random_mobilenet(), **frozen)
    with warnings.catch_warnings():  # BatchNorm trains, or nothing trains at all
        warnings.filterwarnings("error", message=".*BatchNormalization layers stay")
        for train_batchnorm in (True, "auto"):  # "auto", the default, trains them
            build_classifier(
                random_mobilenet(),
                3,
                unfreeze_depth="all",
                train_batchnorm=train_batchnorm,
            )
            make_encoder(
                random_mobilenet(),
                unfreeze_depth="all",
                train_batchnorm=train_batchnorm,
            )
        build_classifier(random_mobilenet(), 3, unfreeze_depth="all")


# ------------------------------------------------------------- feature_extractor
def _dense_top(features_layer=None, final_activation=False):
    inputs = keras.Input((6, 6, 3))
    x = keras.layers.Conv2D(4, 3, name="conv")(inputs)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    if features_layer is not None:
        x = features_layer(x)
    x = keras.layers.Dropout(0.3, name="drop")(x)
    if final_activation:
        x = keras.layers.Dense(3, name="logits")(x)
        x = keras.layers.Activation("softmax", name="probabilities")(x)
    else:
        x = keras.layers.Dense(3, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, x, name="clf")


def test_feature_extractor_ends_where_the_head_begins():
    from keras_transfer import feature_extractor
    from keras_transfer.backbones import looks_like_classifier

    x = np.random.default_rng(0).random((2, 6, 6, 3)).astype("float32")
    model = _dense_top()
    features = feature_extractor(model)
    assert looks_like_classifier(model) and not looks_like_classifier(features)
    assert features.name == "clf_features" and features.layers[-1].name == "pool"
    pooled = keras.Model(model.inputs, model.get_layer("pool").output)
    np.testing.assert_allclose(features.predict(x, verbose=0), pooled(x), atol=1e-6)
    assert features.get_layer("conv") is model.get_layer("conv")  # shared weights
    # an adapted model's top: Dense logits then a softmax Activation
    assert feature_extractor(_dense_top(final_activation=True)).output.shape[-1] == 4
    hidden = keras.layers.Dense(5, activation="relu", name="hidden")
    assert feature_extractor(_dense_top(hidden)).layers[-1].name == "hidden"
    # the builder's own classifiers, linear and mlp heads; the result is a backbone
    backbone = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3)])
    linear = build_classifier(backbone, num_classes=3, compile=False)
    assert feature_extractor(linear).output.shape == (None, 4)
    mlp = build_classifier(backbone, 3, head="mlp", head_units=7, compile=False)
    assert feature_extractor(mlp, name="emb").output.shape == (None, 7)
    assert load_backbone(feature_extractor(mlp)).model.output.shape == (None, 7)


def test_feature_extractor_follows_this_models_call_of_a_shared_layer():
    # layers called in two models (a shared backbone and head, as an adapted
    # model's bottleneck is called in training and in inference)
    from keras_transfer import feature_extractor

    backbone = keras.Sequential([keras.Input((6, 6, 3)), keras.layers.Conv2D(4, 3)])
    pool, dense = (
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(3, "softmax"),
    )
    first_in, second_in = keras.Input((6, 6, 3)), keras.Input((6, 6, 3))
    keras.Model(first_in, dense(pool(backbone(first_in))))
    second = keras.Model(second_in, dense(pool(backbone(second_in))))
    features = feature_extractor(second)
    assert features.inputs[0] is second_in and features.output.shape == (None, 4)


@pytest.mark.parametrize(
    "model, match",
    [
        ("not a model", "Expected a keras.Model"),
        (
            keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, "softmax")]),
            "directly to its input",
        ),
        (
            keras.Sequential(
                [keras.Input((4,)), keras.layers.Dense(3), keras.layers.ReLU()]
            ),
            r"end in a Dense classification layer.*'re_lu\w*' \(ReLU\)",
        ),
    ],
)
def test_feature_extractor_refuses_what_has_no_dense_head(model, match):
    from keras_transfer import feature_extractor

    with pytest.raises(ValueError, match=match):
        feature_extractor(model)


def test_classifier_refusal_names_feature_extractor():
    with pytest.raises(ValueError, match=r"keras_transfer.feature_extractor\(model\)"):
        load_backbone(_dense_top())


def test_a_path_loads_by_what_it_holds(vgg_preset, hub_dir, tmp_path, caplog):
    from keras_transfer import build_classifier

    preset, backbone = vgg_preset
    # a KerasHub preset directory, as "keras_hub:<dir>"
    bb = load_backbone(preset)
    x = np.random.default_rng(0).uniform(0, 255, (2, 16, 16, 3)).astype("float32")
    want = load_backbone(f"keras_hub:{preset}").model.predict(x, verbose=0)
    np.testing.assert_allclose(bb.model.predict(x, verbose=0), want, atol=1e-6)
    # a SavedModel directory, as "saved_model:<dir>"
    sm = load_backbone(hub_dir, input_shape=(4,))
    assert sm.spec == f"saved_model:{hub_dir}"
    assert tuple(sm.model(np.ones((1, 4), "float32")).shape) == (1, 3)
    # a .keras classifier: its head is removed, logged
    inputs = keras.Input((6,))
    features = keras.layers.Dense(5, activation="relu", name="feat")(inputs)
    clf = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(features))
    clf.save(tmp_path / "clf.keras")
    with caplog.at_level("INFO", logger="keras_transfer"):
        loaded = load_backbone(str(tmp_path / "clf.keras"))
    assert "is a classifier; its head is removed" in caplog.text
    assert loaded.model.output_shape == (None, 5) and loaded.spec.endswith("clf.keras")
    model = build_classifier(str(tmp_path / "clf.keras"), 4)
    assert model.output_shape == (None, 4)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda p: p / "missing.keras", r"No file or directory at .*missing\.keras"),
        (lambda p: (p / "w.h5").write_bytes(b"x") and p / "w.h5", "none of these"),
        (lambda p: (p / "d").mkdir() or p / "d", "none of these"),
    ],
)
def test_a_path_that_holds_no_backbone_is_named(tmp_path, make, match):
    with pytest.raises(ValueError, match=match):
        load_backbone(str(make(tmp_path)))
