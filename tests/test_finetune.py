"""fine_tune: two phases, recompiles, merged history, gradual unfreezing, backups."""

import os

import numpy as np
import pytest
from helpers import tiny_bn_backbone

from keras_transfer import build_classifier, fine_tune
from keras_transfer._backend import keras
from keras_transfer.finetune import _stages


def _data():
    rng = np.random.default_rng(1)
    return rng.uniform(0, 255, (16, 16, 16, 3)).astype("float32"), np.arange(16) % 2


def test_two_phases_merged_history_and_learning_rates():
    model = build_classifier(tiny_bn_backbone(), 2)
    conv1 = model.get_layer("tiny_backbone").get_layer("conv1")
    seen = []

    class Spy(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            seen.append(
                (
                    epoch,
                    float(self.model.optimizer.learning_rate),
                    bool(conv1.trainable_weights),
                )
            )

    x, y = _data()
    before = conv1.kernel.numpy().copy()
    history = fine_tune(
        model,
        (x, y),
        validation=(x, y),
        head_epochs=2,
        fine_tune_epochs=2,
        unfreeze_depth="all",
        head_learning_rate=1e-3,
        fine_tune_learning_rate=1e-4,
        callbacks=[Spy()],
        verbose=0,
    )
    assert history.epoch == [0, 1, 2, 3]
    assert len(history.history["val_accuracy"]) == 4
    assert [s[0] for s in seen] == [0, 1, 2, 3]
    assert [s[2] for s in seen] == [False, False, True, True]
    assert seen[0][1] == pytest.approx(1e-3) and seen[2][1] == pytest.approx(1e-4)
    assert not np.array_equal(before, conv1.kernel.numpy())


def test_gradual_stages():
    assert _stages("all", 3, 3, gradual=True) == [(1, 1), (2, 1), ("all", 1)]
    assert _stages(2, 5, 4, gradual=True) == [(1, 2), (2, 2)]
    assert _stages(2, 5, 4, gradual=False) == [(2, 4)]


def test_gradual_fine_tune_runs():
    model = build_classifier(tiny_bn_backbone(), 2)
    x, y = _data()
    history = fine_tune(
        model, (x, y), head_epochs=1, fine_tune_epochs=3, gradual=True, verbose=0
    )
    assert history.epoch == [0, 1, 2, 3]


def test_backup_dir_skips_finished_stage(tmp_path):
    backup = str(tmp_path / "backup")
    x, y = _data()
    model = build_classifier(tiny_bn_backbone(), 2)
    # Simulate a run that died after phase 1: phase 1 finished, phase 2 not.
    fine_tune(
        model, (x, y), head_epochs=1, fine_tune_epochs=0, backup_dir=backup, verbose=0
    )
    assert os.listdir(backup) == []  # finished runs clean up

    class Crash(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 2:
                raise RuntimeError("simulated crash")

    model = build_classifier(tiny_bn_backbone(), 2)
    with pytest.raises(RuntimeError, match="simulated crash"):
        fine_tune(
            model,
            (x, y),
            head_epochs=2,
            fine_tune_epochs=2,
            backup_dir=backup,
            callbacks=[Crash()],
            verbose=0,
        )
    assert os.path.exists(os.path.join(backup, "stage0.done.json"))
    epochs = []

    class Record(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            epochs.append(epoch)

    model = build_classifier(tiny_bn_backbone(), 2)
    history = fine_tune(
        model,
        (x, y),
        head_epochs=2,
        fine_tune_epochs=2,
        backup_dir=backup,
        callbacks=[Record()],
        verbose=0,
    )
    assert epochs == [2, 3]  # phase 1 was not re-run
    assert history.epoch == [0, 1, 2, 3]


def test_errors():
    x, y = _data()
    plain = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    plain.compile("adam", "mse")
    with pytest.raises(ValueError, match="names its backbone .*model.backbone ="):
        fine_tune(plain, (x, y))
    model = build_classifier(tiny_bn_backbone(), 2)
    with pytest.raises(ValueError, match="Expected head_epochs to be an int >= 0"):
        fine_tune(model, (x, y), head_epochs=-1)
    uncompiled = build_classifier(tiny_bn_backbone(), 2, compile=False)
    with pytest.raises(ValueError, match="compiled model"):
        fine_tune(uncompiled, (x, y))


def test_fine_tune_after_save_and_load(tmp_path):
    # A .keras file keeps no model.backbone / compile_recipe: fine_tune finds the
    # nested backbone and recompiles from the saved compile config, discriminative
    # backbone rate included (it was silently dropped without a recipe).
    import keras_transfer as kt

    model = build_classifier(tiny_bn_backbone(), 2, learning_rate=1e-2)
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = kt.load_model(path)
    backbone = loaded.get_layer("tiny_backbone")
    conv2, conv3 = backbone.get_layer("conv2"), backbone.get_layer("conv3")
    rates = []

    class Rates(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            opts = getattr(self.model.optimizer, "optimizers", [self.model.optimizer])
            rates.append(sorted(float(o.learning_rate) for o in opts))

    before = [conv2.kernel.numpy().copy(), conv3.kernel.numpy().copy()]
    x, y = _data()
    fine_tune(
        loaded,
        (x, y),
        head_epochs=1,
        fine_tune_epochs=1,
        unfreeze_depth=1,
        fine_tune_learning_rate=1e-3,
        backbone_learning_rate=1e-4,
        callbacks=[Rates()],
        verbose=0,
    )
    assert rates[0] == pytest.approx([1e-2])
    assert rates[1] == pytest.approx([1e-4, 1e-3])
    np.testing.assert_array_equal(before[0], conv2.kernel.numpy())
    assert not np.array_equal(before[1], conv3.kernel.numpy())


def test_finished_run_leaves_other_workers_backup_folders(tmp_path):
    # In a cluster another worker writes its last save into
    # <backup>/stage<i>/workertemp_<j> and removes it itself; the chief's cleanup
    # at the end of fine_tune must not pull it from under that worker (it did:
    # FileNotFoundError in the worker's on_epoch_end, 2-worker CLI test).
    backup = tmp_path / "backup"
    other = backup / "stage1" / "workertemp_1"
    other.mkdir(parents=True)
    (other / "training_metadata.json").write_text("{}")
    x, y = _data()
    model = build_classifier(tiny_bn_backbone(), 2)
    fine_tune(
        model,
        (x, y),
        head_epochs=1,
        fine_tune_epochs=1,
        backup_dir=str(backup),
        cache_features=False,
        verbose=0,
    )
    assert (other / "training_metadata.json").is_file()
    # everything of this process's is gone
    assert sorted(p.name for p in backup.rglob("*")) == [
        ".chief_done",  # the last worker out removes stage1
        "stage1",
        "training_metadata.json",
        "workertemp_1",
    ]


@pytest.mark.parametrize(
    "labels, match",
    [
        (lambda y: np.eye(3)[y], "argmax"),
        (lambda y: np.array(["a", "b", "c"])[y], "np.unique"),
        (lambda y: y + 1, r"class ids in \[0, 3\).*\[1, 3\]"),
        (lambda y: y + 0.5, "not whole numbers"),
    ],
)
def test_labels_a_sparse_loss_cannot_read_are_refused_by_name(labels, match):
    backbone = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(8, activation="relu")], name="tiny"
    )
    model = build_classifier(backbone, 3)
    x = np.random.default_rng(0).normal(size=(12, 4)).astype("float32")
    y = np.arange(12) % 3
    with pytest.raises(ValueError, match=match):
        fine_tune(model, (x, labels(y)), head_epochs=1, fine_tune_epochs=0, verbose=0)


def test_inputs_of_another_shape_are_refused_with_both_shapes():
    backbone = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(8, activation="relu")], name="tiny"
    )
    model = build_classifier(backbone, 3)
    x = np.zeros((6, 5), "float32")
    with pytest.raises(ValueError, match=r"shape \(4,\) per example.*\(6, 5\)"):
        fine_tune(model, (x, np.arange(6) % 3), head_epochs=1, verbose=0)


def test_an_infinite_dataset_is_refused_instead_of_training_forever():
    import tensorflow as tf

    backbone = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(8, activation="relu")], name="tiny"
    )
    model = build_classifier(backbone, 2)
    x, y = np.zeros((8, 4), "float32"), np.arange(8) % 2
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(4)
    with pytest.raises(ValueError, match=r"finite dataset as train.*repeat\(\)"):
        fine_tune(model, ds.repeat(), head_epochs=1, verbose=0)
    with pytest.raises(ValueError, match="finite dataset as validation"):
        fine_tune(model, ds, ds.repeat(), head_epochs=1, verbose=0)


def test_datasets_it_cannot_train_on_are_refused_before_training():
    import tensorflow as tf

    backbone = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(8, activation="relu")], name="tiny"
    )
    model = build_classifier(backbone, 3)
    x, y = np.zeros((6, 4), "float32"), np.arange(6) % 3
    one_hot = tf.data.Dataset.from_tensor_slices((x, np.eye(3)[y])).batch(3)
    unbatched = tf.data.Dataset.from_tensor_slices((x, y))
    inputs_only = tf.data.Dataset.from_tensor_slices(x).batch(3)
    good = tf.data.Dataset.from_tensor_slices((x, y)).batch(3)
    cases = [
        ((one_hot,), r"train dataset .*shape \(None, 3\) \(one-hot.*label_mode='int'"),
        ((unbatched,), r"batched train dataset.*shape \(4,\).*dataset.batch\(32\)"),
        ((inputs_only,), r"\(inputs, labels\).*Dataset.zip"),
        ((good, one_hot), "in the validation dataset"),
    ]
    for args, match in cases:
        with pytest.raises(ValueError, match=match):
            fine_tune(model, *args, head_epochs=1, verbose=0)
    fine_tune(model, good, good, head_epochs=1, fine_tune_epochs=0, verbose=0)


def test_a_finished_fine_tune_removes_only_its_stage_backups(tmp_path):
    backbone = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(8, activation="relu")], name="tiny"
    )
    model = build_classifier(backbone, 2)
    mine = tmp_path / "project"
    (mine / "stage_photos").mkdir(parents=True)
    (mine / "stage_photos" / "a.jpg").write_bytes(b"keep")
    (mine / "stage2_notes.txt").write_text("keep")
    x, y = np.zeros((8, 4), "float32"), np.arange(8) % 2
    fine_tune(
        model, (x, y), head_epochs=1, fine_tune_epochs=1, verbose=0,
        backup_dir=str(mine),
    )  # fmt: skip
    assert sorted(p.name for p in mine.iterdir()) == [
        "stage2_notes.txt",
        "stage_photos",
    ]
    assert (mine / "stage_photos" / "a.jpg").read_bytes() == b"keep"
