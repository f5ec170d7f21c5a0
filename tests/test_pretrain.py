"""`pretrain_preset` and `keras-transfer pretrain`: a preset that loads as a backbone."""

import json
import os

import numpy as np
import pytest

from keras_transfer import build_classifier, load_backbone
from keras_transfer.cli import main
from keras_transfer.initializers import initialize_convolutions
from keras_transfer.pretrain import (
    _ramped_augment,
    augment_probability,
    color_augment,
    make_vgg_backbone,
    pretrain_preset,
)


def _separable(n=48, size=16, classes=3, seed=0):
    """Class c: stripes of period 2 + c/2 (texture, not colour, carries the label)."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    rows = np.arange(size)[:, None] * np.ones((1, size))
    patterns = [
        rows % 4 < 2,  # horizontal stripes
        rows.T % 4 < 2,  # vertical stripes
        (rows + rows.T) % 4 < 2,  # diagonal stripes
        (rows // 4 + rows.T // 4) % 2 == 0,  # checkerboard
    ]
    x = rng.integers(0, 60, (n, size, size, 3))
    for i, c in enumerate(y):
        x[i][patterns[c]] += 180
    return x.astype("uint8"), y


def test_pretrain_preset_trains_and_loads(tmp_path):
    x, y = _separable()
    preset = str(tmp_path / "preset")
    result = pretrain_preset(
        x,
        y,
        preset,
        x_val=x[:12],
        y_val=y[:12],
        filters=(8, 16),
        epochs=15,
        learning_rate=3e-3,
    )
    assert result.train_accuracy > 0.8 and result.val_accuracy > 0.8
    assert len(result.history["loss"]) == 15
    bb = load_backbone(f"keras_hub:{preset}")
    assert bb.pretrained is True and bb.preprocessor is not None
    # Fully convolutional: the preset serves any image size.
    model = build_classifier(f"keras_hub:{preset}", 2, input_shape=(40, 40, 3))
    assert model.predict(np.zeros((1, 40, 40, 3)), verbose=0).shape == (1, 2)
    with pytest.raises(ValueError, match="overwrite=True"):
        pretrain_preset(x, y, preset, epochs=1)
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".preset-")]
    # overwrite replaces a preset, never a folder of the user's (checked first)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    with pytest.raises(FileExistsError, match="is not a KerasHub preset"):
        pretrain_preset(x, y, str(mine), epochs=1, overwrite=True)
    assert (mine / "notes.txt").read_text() == "keep"


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"epochs": 0}, "epochs"),
        ({"filters": ()}, "filters"),
        ({"filters": (4, 8), "repeats": (1,)}, "repeats"),
        ({"augment_warmup": 1.0}, "augment_warmup"),
        ({"augment_warmup": -0.1}, "augment_warmup"),
        ({"conv_initializer": "no_such_initializer"}, "conv_initializer"),
        ({"conv_initializer": 0.1}, "conv_initializer"),
    ],
)
def test_pretrain_preset_bad_arguments(tmp_path, kwargs, match):
    x, y = _separable(n=6)
    with pytest.raises(ValueError, match=match):
        pretrain_preset(x, y, str(tmp_path / "p"), **kwargs)


def _kernels(backbone):
    return [
        layer.kernel.numpy()
        for layer in backbone._flatten_layers(include_self=False)
        if layer.__class__.__name__ == "Conv2D"
    ]


def test_conv_initializer_draws_every_kernel_seeded():
    backbone = make_vgg_backbone((8, 16))
    glorot = _kernels(backbone)
    initialize_convolutions(backbone, "he_normal", seed=3)
    he = _kernels(backbone)
    assert len(he) == 2
    for before, after in zip(glorot, he):
        fan_in = np.prod(after.shape[:-1])
        # He normal: std sqrt(2 / fan_in) (Keras rescales its truncated normal)
        assert after.std() == pytest.approx(np.sqrt(2 / fan_in), rel=0.15)
        assert after.std() > 1.3 * before.std()  # Glorot's is smaller for ReLU
    again = make_vgg_backbone((8, 16))
    initialize_convolutions(again, "he_normal", seed=3)
    for a, b in zip(he, _kernels(again)):
        np.testing.assert_array_equal(a, b)


def test_pretrain_preset_saves_the_kernels_it_drew(tmp_path):
    x, y = _separable(n=12)
    kwargs = dict(filters=(4, 8), epochs=1, learning_rate=1e-9, augment=False)
    runs = {}
    for init in (None, "he_normal"):
        preset = str(tmp_path / f"p_{init}")
        pretrain_preset(x, y, preset, conv_initializer=init, **kwargs)
        runs[init] = _kernels(load_backbone(f"keras_hub:{preset}").model)
    # a step of 1e-9 leaves the drawn kernels as they were: He normal's scale
    first_he, first_glorot = runs["he_normal"][0], runs[None][0]
    assert first_he.std() > 1.3 * first_glorot.std()


def test_color_augment_inverts_and_jitters():
    x = np.zeros((64, 2, 2, 3), "float32")
    out, _ = color_augment(x, np.zeros(64))
    out = np.asarray(out)
    assert out.min() >= 0.0 and out.max() <= 255.0
    assert (out.reshape(64, -1).max(axis=1) > 50).mean() > 0.2  # some inverted


def test_augment_probability_ramps_then_holds():
    assert [augment_probability(e, 10, 0.3) for e in range(5)] == [
        0.0,
        1 / 3,
        2 / 3,
        1.0,
        1.0,
    ]
    assert [augment_probability(e, 30, 0.3) for e in (0, 3, 9, 29)] == [0, 1 / 3, 1, 1]
    # no ramp: every image jittered from the first epoch (as before stop 43)
    assert augment_probability(0, 10, 0.0) == 1.0
    assert augment_probability(0, 2, 0.2) == 1.0  # a ramp shorter than one epoch


def test_ramped_augment_jitters_the_share_the_variable_holds():
    import tensorflow as tf

    x = np.full((400, 2, 2, 3), 100.0, "float32")
    probability = tf.Variable(0.0)
    augment = _ramped_augment(probability)
    out, _ = augment(x, np.zeros(400))
    np.testing.assert_array_equal(np.asarray(out), x)  # none jittered
    probability.assign(0.5)
    changed = np.any(np.asarray(augment(x, np.zeros(400))[0]) != x, axis=(1, 2, 3))
    assert 0.4 < changed.mean() < 0.6
    probability.assign(1.0)
    changed = np.any(np.asarray(augment(x, np.zeros(400))[0]) != x, axis=(1, 2, 3))
    assert changed.all()


def test_pretrain_ramps_the_jitter_epoch_by_epoch(tmp_path, monkeypatch):
    # the ramp's callback sets the share before each epoch's batches are drawn
    import keras_transfer.pretrain as pretrain

    seen = []

    def spy(epoch, epochs, warmup):
        seen.append(augment_probability(epoch, epochs, warmup))
        return seen[-1]

    monkeypatch.setattr(pretrain, "augment_probability", spy)
    x, y = _separable(n=12, size=8)
    path = str(tmp_path / "p")
    pretrain_preset(x, y, path, filters=(2,), epochs=4, augment_warmup=0.5)
    assert seen == [0.0, 0.5, 1.0, 1.0]
    seen.clear()
    pretrain_preset(x, y, path, filters=(2,), epochs=2, augment_warmup=0.0,
                    overwrite=True)  # fmt: skip
    assert seen == [1.0, 1.0]  # no ramp: every image jittered from the first epoch


def test_pretraining_with_the_jitter_repeats_for_a_seed(tmp_path):
    # The jitter's draws are stateless, keyed by (seed, epoch, batch): a parallel
    # map gives the same batches on every run (stateful draws made two runs of one
    # seed differ by up to 0.008 in a weight after 4 epochs).
    x, y = _separable(n=48, size=8)
    kwargs = dict(filters=(4,), epochs=4, batch_size=8, augment_warmup=0.5)
    weights = [
        pretrain_preset(
            x, y, str(tmp_path / f"p{i}"), seed=seed, **kwargs
        ).model.get_weights()
        for i, seed in enumerate((0, 0, 1))
    ]
    for a, b in zip(weights[0], weights[1]):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(weights[0], weights[2]))


def test_pretraining_on_image_files_streams_and_matches_the_arrays(
    tmp_path, monkeypatch
):
    """A folder kept on disk (`ImageFiles`, as `keras-transfer pretrain` passes a
    large one) trains to the same weights as its images in memory, decoding a
    batch at a time."""
    from PIL import Image

    from keras_transfer.data import ImageFiles

    x, y = _separable(n=24, size=8)
    paths = []
    for i, image in enumerate(x):
        paths.append(str(tmp_path / f"{i:02d}.png"))
        Image.fromarray(image).save(paths[-1])
    files = ImageFiles(paths, (8, 8))
    kwargs = dict(filters=(4,), epochs=2, batch_size=8, augment_warmup=0.5)
    split = dict(x_val=x[:6], y_val=y[:6])
    in_memory = pretrain_preset(x, y, str(tmp_path / "a"), **split, **kwargs)

    def refuse(*args, **kwargs):
        raise AssertionError("the image files were decoded into one array")

    monkeypatch.setattr(ImageFiles, "__array__", refuse)
    split = dict(x_val=files[:6], y_val=y[:6])
    streamed = pretrain_preset(files, y, str(tmp_path / "b"), **split, **kwargs)
    for a, b in zip(in_memory.model.get_weights(), streamed.model.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-6)
    assert streamed.train_accuracy == pytest.approx(in_memory.train_accuracy)
    assert streamed.val_accuracy == pytest.approx(in_memory.val_accuracy)


def test_color_augment_with_a_seed_draws_the_same_jitter():
    x = np.full((16, 2, 2, 3), 100.0, "float32")
    first = np.asarray(color_augment(x, None, seed=np.array([3, 7]))[0])
    again = np.asarray(color_augment(x, None, seed=np.array([3, 7]))[0])
    other = np.asarray(color_augment(x, None, seed=np.array([3, 8]))[0])
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    assert first.min() >= 0.0 and first.max() <= 255.0


def _folder(root, size=16):
    from PIL import Image

    x, y = _separable(n=40, size=size, classes=4)
    for i, (img, label) in enumerate(zip(x, y)):
        os.makedirs(root / f"class{label}", exist_ok=True)
        Image.fromarray(img).save(root / f"class{label}" / f"{i}.png")
    return str(root)


@pytest.mark.parametrize("stream", [False, True])
def test_cli_pretrain_writes_a_preset(tmp_path, capsys, monkeypatch, stream):
    data = _folder(tmp_path / "imgs")
    if stream:  # a folder over STREAM_BYTES: never decoded whole
        from keras_transfer.cli import _data
        from keras_transfer.data import ImageFiles

        def refuse(*args, **kwargs):
            raise AssertionError("the image files were decoded into one array")

        monkeypatch.setattr(_data, "STREAM_BYTES", 0)
        monkeypatch.setattr(ImageFiles, "__array__", refuse)
    runs = str(tmp_path / "runs")
    argv = [
        "pretrain", "--name", "base", "--runs-dir", runs, "--quiet",
        "--set", f"data.source={data}", "--set", "data.image_size=16",
        "--set", "pretrain.epochs=2", "--set", "pretrain.filters=[4, 8]",
    ]  # fmt: skip
    assert main(argv) == 0
    preset = os.path.join(runs, "base", "preset")
    assert f"model.backbone=keras_hub:{preset}" in capsys.readouterr().out
    metrics = json.loads(open(os.path.join(runs, "base", "metrics.json")).read())
    assert metrics["preset"] == preset and "evaluation" in metrics
    assert load_backbone(f"keras_hub:{preset}").pretrained is True
    assert main(argv) == 3  # the run exists: never overwritten silently


@pytest.mark.parametrize(
    "override, field",
    [
        ("pretrain.filters=[]", "pretrain.filters"),
        ("pretrain.repeats=[1]", "pretrain.repeats"),
        ("pretrain.epochs=0", "pretrain.epochs"),
        ("pretrain.architecture=resnet", "pretrain.architecture"),
        ("pretrain.augment_warmup=1", "pretrain.augment_warmup"),
        ("pretrain.augment_warmup=true", "pretrain.augment_warmup"),
    ],
)
def test_cli_pretrain_bad_config(tmp_path, capsys, override, field):
    argv = ["pretrain", "--runs-dir", str(tmp_path), "--set", override]
    assert main(argv) == 2
    assert field in capsys.readouterr().err
