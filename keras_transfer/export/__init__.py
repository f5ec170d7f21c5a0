"""Export to TF Serving (SavedModel) and to phones (TFLite/LiteRT), always verified.

Every export writes to a temporary sibling directory, runs the written artifact,
compares it with the Keras model (top-1 agreement, max |diff|, latency), and only then
moves it into place with a ``manifest.json`` (formats, I/O specs, class names, sha256 of
every file, versions, verification numbers, training metrics).

Examples:
```python
import tempfile

import keras
import numpy as np

from keras_transfer.export import export_tflite, load_tflite

rng = np.random.default_rng(0)
y = rng.integers(0, 3, size=96)
x = rng.random((96, 8, 8, 3), "float32") * 0.2
x[np.arange(96), :, :, y] += 0.8  # the class is the bright channel
x_train, y_train, x_test, y_test = x[:64], y[:64], x[64:], y[64:]
keras.utils.set_random_seed(0)
model = keras.Sequential([
    keras.Input((8, 8, 3)),
    keras.layers.Conv2D(4, 3, activation="relu"),
    keras.layers.GlobalAveragePooling2D(),
    keras.layers.Dense(3, activation="softmax"),
])
model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
model.fit(x_train, y_train, epochs=2, verbose=0)

report = export_tflite(model, f"{tempfile.mkdtemp()}/digits/tflite-int8",
                       quantization="int8", representative_data=x_train[:200],
                       verify_data=(x_test, y_test), class_names=["r", "g", "b"])
print(report.summary())  # agreement, max |diff|, latency, both accuracies
predictor = load_tflite(report.path)
names = predictor.predict_classes(x_test[:4])  # e.g. ['g', 'b', 'g', 'g']
assert report.top1_agreement >= 0.99 and len(names) == 4
```
"""

from keras_transfer.export.main import export_main, load_array_file
from keras_transfer.export.predictor import TFLitePredictor, load_tflite
from keras_transfer.export.report import (
    CorruptedExportError,
    ExportReport,
    ExportVerificationError,
    UnsupportedOpError,
)
from keras_transfer.export.saved_model import export_saved_model
from keras_transfer.export.tflite import export_tflite
from keras_transfer.layers.training_only import (
    is_training_only,
    register_training_only_layer,
)

__all__ = [
    "CorruptedExportError",
    "ExportReport",
    "ExportVerificationError",
    "TFLitePredictor",
    "UnsupportedOpError",
    "export_main",
    "export_saved_model",
    "export_tflite",
    "is_training_only",
    "load_array_file",
    "load_tflite",
    "register_training_only_layer",
]
