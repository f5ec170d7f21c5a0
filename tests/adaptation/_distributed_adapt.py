"""Run in a fresh process: kt.adapt with and without MirroredStrategy (2 CPUs)."""

import json

import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu,
    [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()],
)

import numpy as np  # noqa: E402

import keras_transfer as kt  # noqa: E402
from keras_transfer._backend import keras  # noqa: E402
from keras_transfer.distribute import maybe_distribute  # noqa: E402

rng = np.random.default_rng(0)
centres = rng.normal(0, 3, size=(3, 4))
ys = rng.integers(0, 3, 96)
xs = (centres[ys] + rng.normal(0, 1, (96, 4))).astype("float32")
xt = (centres[rng.integers(0, 3, 96)] * 1.3 + 2.0).astype("float32")
# adapt's own predictions run eagerly on one device, except under a strategy with
# several replicas, where Keras's predict shards them (and, across workers, gathers
# the same numbers for every worker): count the predict graphs each run builds.
predict_graphs = []
_make = keras.Model.make_predict_function


def _counting(self, *args, **kwargs):
    predict_graphs.append(self.name)
    return _make(self, *args, **kwargs)


keras.Model.make_predict_function = _counting
out = {}
for name in ("default", "mirrored"):
    predict_graphs.clear()
    with maybe_distribute(name) as strategy:
        keras.utils.set_random_seed(0)
        encoder = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, "relu")])
    result = kt.adapt(
        encoder,
        (xs, ys),
        xt,
        method="dann",
        epochs=8,
        warmup=3,
        strategy=name,
        batch_size=16,
        verbose=0,
    )
    out[name] = {
        "replicas": strategy.num_replicas_in_sync,
        "epochs": len(result.history.epoch),
        "source_accuracy": result.source_accuracy,
        "predict_graphs": len(predict_graphs),
        "finite": bool(np.all(np.isfinite(result.model.predict(xt, verbose=0)))),
    }
print("RESULT " + json.dumps(out))
