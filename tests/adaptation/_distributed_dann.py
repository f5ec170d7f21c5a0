"""Run in a fresh process: DANN one epoch with and without MirroredStrategy (2 CPUs)."""

import json
import sys

import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu,
    [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()],
)

import numpy as np  # noqa: E402

from keras_transfer._backend import keras  # noqa: E402
from keras_transfer.adaptation import DANN  # noqa: E402
from keras_transfer.data import domain_pairs  # noqa: E402


def train(strategy):
    rng = np.random.default_rng(0)
    xs = rng.normal(size=(32, 3)).astype("float32")
    ys = rng.integers(0, 3, 32).astype("int32")
    xt = (rng.normal(size=(32, 3)) + 1.0).astype("float32")
    with strategy.scope():
        keras.utils.set_random_seed(0)
        encoder = keras.Sequential([keras.Input((3,)), keras.layers.Dense(8, "relu")])
        model = DANN(encoder, 3, discriminator_units=(8,), lambda_=0.5)
        model.compile(keras.optimizers.SGD(0.1))
    pairs = domain_pairs((xs, ys), xt, batch_size=8, shuffle=False)
    history = model.fit(pairs, epochs=2, verbose=0).history
    weights = [w.tolist() for w in model.get_weights()]
    return {
        "history": history,
        "weights": weights,
        "replicas": strategy.num_replicas_in_sync,
    }


strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
out = {"single": train(tf.distribute.get_strategy()), "mirrored": train(strategy)}
sys.stdout.write("RESULT " + json.dumps(out) + "\n")
