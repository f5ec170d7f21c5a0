"""Helper process for tests/test_distribute.py and benchmarks/scale.py (not a test).

Runs one tiny training job and writes its result as JSON + NPZ into ``--out``:
``result_<index>_<model>.json`` (epochs run, history, examples/s) and
``weights_<index>_<model>.npz``.

Modes:
- ``--strategy default|mirrored|multi_worker``; ``mirrored`` with ``--logical-cpus N``
  splits the CPU into N logical devices (must happen before TensorFlow starts, which is
  why this runs in its own process). ``multi_worker`` reads ``TF_CONFIG``.
- ``--model classifier|dann|classifier,dann``: ``build_classifier`` on a tiny CNN
  backbone and/or DANN from ``keras_transfer.adaptation``, one after the other in the
  same process and strategy (saves a TensorFlow start-up per model).
- ``--backup-dir`` + ``--crash-at-epoch K``: the process SIGKILLs itself at the end of
  epoch K (after ``BackupAndRestore`` saved it) unless ``--out/crashed_<index>`` exists.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time


def parse_args(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--strategy", default="default")
    p.add_argument("--logical-cpus", type=int, default=0)
    p.add_argument(
        "--model", default="classifier", help="'classifier', 'dann' or both: 'a,b'"
    )
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--examples", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=16, help="global batch size")
    p.add_argument("--image-size", type=int, default=16)
    p.add_argument("--backup-dir", default=None)
    p.add_argument("--crash-at-epoch", type=int, default=-1)
    p.add_argument("--index", type=int, default=0)
    p.add_argument("--out", required=True)
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from keras_transfer._backend import keras, tf

    if args.logical_cpus > 1:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * args.logical_cpus
        )
    from keras_transfer.distribute import get_strategy

    devices = None
    if args.strategy == "mirrored" and args.logical_cpus > 1:
        devices = [f"/cpu:{i}" for i in range(args.logical_cpus)]
    # MultiWorkerMirroredStrategy must be created before any other TF op runs.
    strategy = get_strategy(args.strategy, devices=devices)

    import numpy as np

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    n, s = args.examples, args.image_size
    x = rng.random((n, s, s, 3), dtype=np.float32)
    y = x[:, : s // 2].mean(axis=(1, 2, 3)) > x[:, s // 2 :].mean(axis=(1, 2, 3))
    y = y.astype("int32")
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = (
        tf.data.experimental.AutoShardPolicy.DATA
    )

    def dataset(features, labels):
        ds = tf.data.Dataset.from_tensor_slices((features, labels))
        return ds.batch(args.batch_size, drop_remainder=True).with_options(options)

    for name in args.model.split(","):
        if name not in ("classifier", "dann"):
            raise SystemExit(f"unknown --model {name!r}")
        keras.utils.set_random_seed(0)
        train_one(args, name, keras, strategy, x, y, dataset)
    return 0


def train_one(args, name, keras, strategy, x, y, dataset) -> None:
    """Builds, fits and saves one model; writes its result files."""
    import numpy as np

    from keras_transfer.distribute import backup_callback

    model, train = build(args, name, keras, strategy, x, y, dataset)

    epochs_run: list[int] = []
    epoch_seconds: list[float] = []

    def begin(epoch, logs):
        epochs_run.append(epoch)
        epoch_seconds.append(time.perf_counter())

    def end(epoch, logs):
        epoch_seconds[-1] = time.perf_counter() - epoch_seconds[-1]

    callbacks = [keras.callbacks.LambdaCallback(on_epoch_begin=begin, on_epoch_end=end)]
    backup = backup_callback(args.backup_dir)
    if backup is not None:
        callbacks.insert(0, backup)
    marker = os.path.join(args.out, f"crashed_{args.index}")
    if args.crash_at_epoch >= 0 and not os.path.exists(marker):

        def crash(epoch, logs):
            if epoch == args.crash_at_epoch:
                with open(marker, "w") as f:
                    json.dump({"epochs_run": epochs_run}, f)
                os.kill(os.getpid(), signal.SIGKILL)

        callbacks.append(keras.callbacks.LambdaCallback(on_epoch_end=crash))

    start = time.perf_counter()
    history = model.fit(
        train, epochs=args.epochs, callbacks=callbacks, verbose=0, shuffle=False
    )
    seconds = time.perf_counter() - start
    examples_per_epoch = (args.examples // args.batch_size) * args.batch_size
    result = {
        "epochs_run": epochs_run,
        "history": {k: [float(v) for v in vs] for k, vs in history.history.items()},
        "replicas": strategy.num_replicas_in_sync,
        "strategy": type(strategy).__name__,
        "seconds": seconds,
        "epoch_seconds": epoch_seconds,
        # Throughput of the last epoch (the first one includes tracing).
        "examples_per_s": examples_per_epoch / epoch_seconds[-1],
    }
    np.savez(
        os.path.join(args.out, f"weights_{args.index}_{name}.npz"),
        *[np.asarray(w) for w in model.get_weights()],
    )
    with open(os.path.join(args.out, f"result_{args.index}_{name}.json"), "w") as f:
        json.dump(result, f)


def build(args, name, keras, strategy, x, y, dataset):
    """Returns (compiled model, training dataset) for model ``name``."""
    from keras_transfer.distribute import maybe_distribute

    def backbone():
        inputs = keras.Input((args.image_size, args.image_size, 3))
        h = keras.layers.Conv2D(4, 3, strides=2, activation="relu")(inputs)
        h = keras.layers.Conv2D(8, 3, strides=2, activation="relu")(h)
        return keras.Model(inputs, h, name="tiny_cnn")

    if name == "dann":
        from keras_transfer.adaptation import DANN

        with maybe_distribute(strategy):
            model = DANN(backbone(), num_classes=2, discriminator_units=(8,))
            model.compile(optimizer=keras.optimizers.Adam(1e-3))
        target = (x[::-1] * 0.5).astype("float32")
        return model, dataset({"source": x, "target": target}, y)
    try:
        from keras_transfer.builders import build_classifier
    except ImportError:  # foundation not landed: same shape of model by hand
        build_classifier = None
    with maybe_distribute(strategy):
        if build_classifier is not None:
            model = build_classifier(
                backbone(), 2, unfreeze_depth="all", dropout=0.0, strategy=strategy
            )
        else:
            inputs = keras.Input((args.image_size, args.image_size, 3))
            h = keras.layers.GlobalAveragePooling2D()(backbone()(inputs))
            outputs = keras.layers.Dense(2, activation="softmax")(h)
            model = keras.Model(inputs, outputs)
            model.compile(
                keras.optimizers.Adam(1e-3),
                "sparse_categorical_crossentropy",
                metrics=["accuracy"],
            )
    return model, dataset(x, y)


if __name__ == "__main__":
    sys.exit(main())
