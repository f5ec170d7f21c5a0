"""`load_tflite`: a checked, batch-friendly predictor for an exported .tflite file."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from keras_transfer.export import _io, _verify
from keras_transfer.export._inference import top1
from keras_transfer.export.report import CorruptedExportError


class TFLitePredictor:
    """Runs an exported TFLite model on single examples or batches.

    Inputs are cast/quantized to what the file expects (int8 scale and zero point
    included) and outputs are dequantized to float32 probabilities.

    Attributes:
        path: str. The ``.tflite`` file.
        manifest: dict or None. The export's ``manifest.json``.
        class_names: list of str or None. From the manifest.
        input_shape: tuple. Input shape without the batch axis.
        runtime: str. Which interpreter runs the file.
    """

    def __init__(
        self,
        path: str,
        manifest: dict[str, Any] | None = None,
        num_threads: int | None = None,
    ):
        self.path = path
        self.manifest = manifest
        self.class_names = (manifest or {}).get("class_names")
        try:
            self._interpreter, self.runtime = _verify.make_interpreter(
                path, num_threads=num_threads
            )
        except _verify.FlexOpsError:
            raise
        except (ValueError, RuntimeError) as err:
            raise CorruptedExportError(
                f"Could not load the TFLite file {path!r}: it is corrupted, truncated "
                f"or not a TFLite model ({err})."
            ) from err
        detail = self._interpreter.get_input_details()[0]
        shape = detail.get("shape_signature", detail["shape"])
        self.input_shape = tuple(int(d) if d > 0 else None for d in shape[1:])

    def predict(self, x: Any) -> np.ndarray:
        """Returns float32 probabilities for one example or a batch.

        Args:
            x: array-like. One example of shape ``input_shape`` (returns one row of
                probabilities) or a batch ``(n, *input_shape)``.

        Returns:
            np.ndarray: ``(num_classes,)`` for one example, ``(n, num_classes)`` for a
            batch.

        Raises:
            ValueError: when ``x`` does not have the input shape.
        """
        x = np.asarray(x)
        rank = len(self.input_shape)
        single = x.ndim == rank
        if single:
            x = x[None]
        if x.ndim != rank + 1 or not all(
            d is None or d == s for d, s in zip(self.input_shape, x.shape[1:])
        ):
            raise ValueError(
                f"Expected one input of shape {self.input_shape} or a batch of shape "
                f"(n, {', '.join(map(str, self.input_shape))}). Received: shape "
                f"{x.shape}"
            )
        if x.dtype != np.float32:
            x = x.astype("float32")
        out = _verify.run_interpreter(self._interpreter, x)
        return out[0] if single else out

    __call__ = predict

    def predict_classes(self, x: Any) -> np.ndarray | list[str]:
        """Returns top-1 class names (from the manifest) or class ids."""
        probs = np.asarray(self.predict(x))
        single = probs.ndim == 1
        ids = top1(probs[None] if single else probs)
        if self.class_names:
            names = [self.class_names[i] for i in ids]
            return names[0] if single else names
        return ids[0] if single else ids


def _find_files(path: str | os.PathLike) -> tuple[Path, Path]:
    path = Path(path)
    if path.is_dir():
        root = path
        manifest = _io.read_manifest(root) or {}
        file = root / manifest.get("model_file", "model.tflite")
    else:
        root, file = path.parent, path
    if not file.exists():
        raise FileNotFoundError(
            f"No TFLite model at {str(file)!r}. Expected an export directory with "
            "model.tflite and manifest.json, or a .tflite file."
        )
    return root, file


def load_tflite(
    path: str | os.PathLike, *, check: bool = True, num_threads: int | None = None
) -> TFLitePredictor:
    """Loads an exported TFLite model, checking it against its manifest.

    Args:
        path: str. An export directory from `export_tflite`, or a ``.tflite`` file
            (its ``manifest.json`` is read from the same directory when present).
        check: bool. Compare the file's sha256 and size with the manifest. Defaults
            to True.
        num_threads: int. Interpreter threads. Defaults to LiteRT's choice.

    Returns:
        TFLitePredictor: with ``predict(array_or_batch)`` and ``predict_classes``.

    Raises:
        FileNotFoundError: no model file at ``path``.
        CorruptedExportError: the file does not match the manifest's sha256 (corrupted
            or truncated), or the interpreter cannot load it.

    Examples:
    ```python
    import tempfile

    import keras
    import numpy as np

    from keras_transfer.export import export_tflite, load_tflite

    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(3, "softmax")])
    x_test = np.random.default_rng(0).normal(size=(16, 5)).astype("float32")
    export_dir = f"{tempfile.mkdtemp()}/digits/tflite"
    export_tflite(model, export_dir, class_names=["cat", "dog", "fox"])

    predictor = load_tflite(export_dir)  # checks the sha256 in manifest.json
    probs = predictor.predict(x_test[:8])  # a batch: (8, 3) probabilities
    names = predictor.predict_classes(x_test[0])  # one example: its class name
    assert probs.shape == (8, 3) and names in ("cat", "dog", "fox")
    ```
    """
    root, file = _find_files(path)
    manifest = _io.read_manifest(root)
    if manifest is not None and check:
        rel = file.relative_to(root).as_posix()
        expected = manifest.get("files", {}).get(rel)
        if expected is None:
            raise CorruptedExportError(
                f"The manifest in {str(root)!r} does not list {rel!r}; it belongs to "
                "another export. Received files: "
                f"{sorted(manifest.get('files', {}))}"
            )
        size = file.stat().st_size
        digest = _io.sha256_file(file)
        if digest != expected["sha256"]:
            kind = "truncated" if size < expected["bytes"] else "corrupted"
            raise CorruptedExportError(
                f"{str(file)!r} looks {kind}: its sha256 {digest[:16]}... ({size} "
                f"bytes) does not match the manifest's {expected['sha256'][:16]}... "
                f"({expected['bytes']} bytes). Re-export the model or copy the file "
                "again."
            )
    return TFLitePredictor(str(file), manifest, num_threads=num_threads)
