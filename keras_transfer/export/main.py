"""`export_main`: the function behind ``keras-transfer export MODEL.keras ...``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from keras_transfer.export.report import ExportReport

_FORMATS = ("tflite", "saved_model")


def load_array_file(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray | None]:
    """Loads ``x`` (and ``y`` when present) from a ``.npy`` or ``.npz`` file.

    A ``.npz`` is read from keys ``x``/``y``, else ``x_test``/``y_test``, else
    ``x_train``/``y_train``, else its first array.

    Raises:
        ValueError: for another suffix or an empty ``.npz``.
    """
    path = Path(path)
    if path.suffix == ".npy":
        return np.load(path, allow_pickle=False), None
    if path.suffix != ".npz":
        raise ValueError(
            "Expected representative data as a .npy or .npz file. Received: "
            f"{str(path)!r}"
        )
    with np.load(path, allow_pickle=False) as data:
        for x_key, y_key in (("x", "y"), ("x_test", "y_test"), ("x_train", "y_train")):
            if x_key in data.files:
                y = data[y_key] if y_key in data.files else None
                return data[x_key], y
        if not data.files:
            raise ValueError(f"Expected arrays in {str(path)!r}. Received: none")
        return data[data.files[0]], None


def export_main(
    model_path: str | os.PathLike | Any,
    *,
    format: str = "tflite",  # noqa: A002 - mirrors the CLI flag --format
    quantization: str | None = None,
    representative: str | os.PathLike | Any = None,
    verify_data: Any = None,
    output: str | os.PathLike | None = None,
    overwrite: bool = False,
    class_names: list[str] | None = None,
    verify: bool = True,
    **kwargs: Any,
) -> ExportReport:
    """Loads a ``.keras`` file and exports it (what the CLI ``export`` command runs).

    Args:
        model_path: str. A ``.keras`` model file (loaded with
            `keras_transfer.load_model`), or an already loaded ``keras.Model``.
        format: str. ``"tflite"`` or ``"saved_model"``. Defaults to ``"tflite"``.
        quantization: str. For TFLite: None, ``"float16"``, ``"dynamic"``, ``"int8"``
            (the ladder: full, selective within a size budget, 16x8, selective),
            ``"int8-full"`` or ``"int16x8"`` (see `export_tflite`; its
            ``selective_size_budget`` passes through ``**kwargs``).
        representative: str. A ``.npy``/``.npz`` file of model inputs (with labels
            in the ``.npz``, verification also reports accuracy), or the arrays
            themselves (``x`` or ``(x, y)``). Used to calibrate int8, and to verify
            unless ``verify_data`` is given.
        verify_data: ``x`` or ``(x, y)`` arrays to verify on. Defaults to None (the
            representative data).
        output: str. Export directory. Defaults to
            ``saved_models/<model file stem>/<format>[-<quantization>]``.
        overwrite: bool. Replace an existing export. Defaults to False.
        class_names: list of str. Written to the manifest. Defaults to None.
        verify: bool. Verify before writing. Defaults to True.
        **kwargs: passed to `export_tflite` / `export_saved_model`.

    Returns:
        ExportReport.

    Raises:
        ValueError: bad ``format``, a quantization given for a SavedModel, or a
            ``model_path`` that is not a valid ``.keras`` file.
        FileNotFoundError: ``model_path`` or ``representative`` does not exist.
        IsADirectoryError: ``model_path`` is a folder (e.g. an export).

    Examples:
    ```python
    import os
    import tempfile

    import keras
    import numpy as np

    from keras_transfer.export import export_main

    folder = tempfile.mkdtemp()
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 3))
    features = keras.layers.GlobalMaxPooling2D()(keras.layers.Conv2D(4, 3)(inputs))
    model = keras.Model(inputs, keras.layers.Dense(3, "softmax")(features))
    model.save(os.path.join(folder, "digits.keras"))
    rng = np.random.default_rng(0)  # calibration inputs, with labels for accuracy
    np.savez(os.path.join(folder, "calibration.npz"),
             x=rng.random((64, 8, 8, 3), "float32"), y=rng.integers(0, 3, 64))

    report = export_main(os.path.join(folder, "digits.keras"), format="tflite",
                         quantization="int8",
                         representative=os.path.join(folder, "calibration.npz"),
                         output=os.path.join(folder, "digits", "tflite-int8"))
    print(report.summary())
    assert report.quantization == "int8" and report.keras_accuracy is not None
    ```
    """
    from keras_transfer.export.saved_model import export_saved_model
    from keras_transfer.export.tflite import export_tflite
    from keras_transfer.saving import load_model

    if format not in _FORMATS:
        raise ValueError(
            f"Expected format to be one of {_FORMATS}. Received: format={format!r}"
        )
    if format == "saved_model" and quantization not in (None, "none", "float32"):
        raise ValueError(
            "SavedModel export is float32 only; quantization applies to tflite. "
            f"Received: quantization={quantization!r}"
        )
    if isinstance(model_path, str | os.PathLike):
        model_path = Path(model_path)
        model = load_model(model_path, compile=False)
        stem = model_path.stem
    else:
        model, stem = model_path, getattr(model_path, "name", "model")
    data = representative
    if isinstance(representative, str | os.PathLike):
        if not Path(representative).exists():
            raise FileNotFoundError(f"No data file at {str(representative)!r}.")
        x, y = load_array_file(representative)
        data = x if y is None else (x, y)
    if output is None:
        leaf = "saved_model"
        if format == "tflite":
            leaf = f"tflite-{quantization or 'float32'}"
        output = Path("saved_models") / stem / leaf
    common = dict(overwrite=overwrite, class_names=class_names, verify=verify)
    if format == "saved_model":
        return export_saved_model(
            model,
            output,
            verify_data=data if verify_data is None else verify_data,
            **common,
            **kwargs,
        )
    return export_tflite(
        model,
        output,
        quantization=quantization,
        representative_data=data,
        verify_data=verify_data,
        **common,
        **kwargs,
    )
