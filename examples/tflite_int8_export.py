# ruff: noqa: E402
"""# TFLite int8 export and on-device-style inference

Trains a small digits classifier, exports it to a fully int8-quantized TFLite file
(calibrated on representative images and verified against the Keras model before it
is written), then runs it the way a phone would: the LiteRT interpreter, one image at
a time, quantizing the input and dequantizing the output by hand.
Run as a script with `--quick` for a smoke test.
"""

# %%
import os
import sys

QUICK = "--quick" in sys.argv or os.environ.get("KERAS_TRANSFER_QUICK") == "1"
OUT = os.environ.get("KERAS_TRANSFER_EXAMPLES_OUT", "saved_models/examples")
OUT = os.path.join(OUT, "tflite_int8_export")
N = 300 if QUICK else None

# %% Train a small classifier on the source digits
import numpy as np

from keras_transfer import build_classifier
from keras_transfer._backend import keras
from keras_transfer.datasets import digits_domains

source, _ = digits_domains(size=32)
keras.utils.set_random_seed(0)
backbone = keras.Sequential(
    [
        keras.Input((32, 32, 3)),
        keras.layers.Rescaling(1 / 255.0),
        keras.layers.Conv2D(16, 3, strides=2, activation="relu"),
        keras.layers.Conv2D(32, 3, strides=2, activation="relu"),
    ]
)
model = build_classifier(backbone, 10, unfreeze_depth="all", dropout=0.0)
model.fit(source.x_train[:N], source.y_train[:N], epochs=2 if QUICK else 10, verbose=0)

# %% Export: int8 weights and activations, verified before writing
from keras_transfer.export import export_tflite

report = export_tflite(
    model,
    os.path.join(OUT, "digits_int8"),
    quantization="int8",
    representative_data=source.x_test[:200].astype("float32"),
    overwrite=True,
)
print(report.summary())

# %% On-device-style inference with the LiteRT interpreter
from ai_edge_litert.interpreter import Interpreter

interpreter = Interpreter(model_path=os.path.join(report.path, "model.tflite"))
interpreter.allocate_tensors()
inp = interpreter.get_input_details()[0]
out = interpreter.get_output_details()[0]


def classify(image: np.ndarray) -> int:
    x = image[None].astype("float32")
    scale, zero = inp["quantization"]
    if np.issubdtype(inp["dtype"], np.integer) and scale:
        x = np.clip(np.round(x / scale + zero), -128, 127)
    interpreter.set_tensor(inp["index"], x.astype(inp["dtype"]))
    interpreter.invoke()
    y = interpreter.get_tensor(out["index"])[0].astype("float32")
    scale, zero = out["quantization"]
    if np.issubdtype(out["dtype"], np.integer) and scale:
        y = (y - zero) * scale
    return int(y.argmax())


n = 50 if QUICK else len(source.x_test)
preds = np.array([classify(img) for img in source.x_test[:n]])
keras_preds = model.predict(source.x_test[:n], verbose=0).argmax(-1)
print(
    f"TFLite int8 accuracy {np.mean(preds == source.y_test[:n]):.3f}, "
    f"agreement with Keras {np.mean(preds == keras_preds):.3f}"
)
