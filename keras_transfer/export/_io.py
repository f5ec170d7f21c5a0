"""Files and data for export: sample arrays, atomic directories, manifests, sha256."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from keras_transfer.runs import check_replaceable

MANIFEST = "manifest.json"
DEFAULT_ROOT = "saved_models"


def sha256_file(path: str | os.PathLike) -> str:
    """Returns the hex sha256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def file_hashes(root: str | os.PathLike) -> dict[str, dict[str, Any]]:
    """Maps every file under ``root`` (but the manifest) to its sha256 and size."""
    root = Path(root)
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file() and p.name != MANIFEST:
            rel = p.relative_to(root).as_posix()
            out[rel] = {"sha256": sha256_file(p), "bytes": p.stat().st_size}
    return out


def versions() -> dict[str, str | None]:
    """Versions of the libraries an export depends on."""
    from keras_transfer._backend import keras, tf
    from keras_transfer.version import __version__

    try:
        from importlib.metadata import version

        litert = version("ai-edge-litert")
    except Exception:  # noqa: BLE001 - optional dependency
        litert = None
    return {
        "keras": keras.__version__,
        "tensorflow": tf.__version__,
        "keras_transfer": __version__,
        "ai_edge_litert": litert,
        "numpy": np.__version__,
    }


def write_manifest(root: str | os.PathLike, content: dict[str, Any]) -> Path:
    """Writes ``manifest.json`` (with sha256 of every file) into ``root``."""
    content = dict(content)
    content["files"] = file_hashes(root)
    content["versions"] = versions()
    path = Path(root) / MANIFEST
    path.write_text(json.dumps(content, indent=2, default=_json_default) + "\n")
    return path


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def read_manifest(root: str | os.PathLike) -> dict[str, Any] | None:
    """Reads ``manifest.json`` from ``root``, or returns None when there is none."""
    path = Path(root) / MANIFEST
    if not path.exists():
        return None
    return json.loads(path.read_text())


#: Suffixes of model files: an export path ending in one is refused (exports are
#: folders; ``export_tflite(model, "model.tflite")`` would make a folder of that name).
FILE_SUFFIXES = (".tflite", ".keras", ".h5", ".pb", ".onnx", ".lite")


def check_target(path: str | os.PathLike, overwrite: bool) -> Path:
    """Refuses an existing export path unless ``overwrite``; returns it as a Path."""
    path = Path(path)
    if path.suffix.lower() in FILE_SUFFIXES:
        raise ValueError(
            f"Expected the export path to be a folder. Received: {str(path)!r}, a "
            f"{path.suffix} file name. An export is a folder holding the model "
            "(model.tflite or saved_model.pb) and manifest.json, which load_tflite "
            f"and keras-transfer predict read: pass e.g. {str(path.with_suffix(''))!r}"
            f" (the file is then {str(path.with_suffix('') / 'model.tflite')!r} for "
            "TFLite)."
        )
    if path.exists() and not overwrite:
        raise FileExistsError(
            f"The export path {str(path)!r} already exists. Pass overwrite=True to "
            "replace it, or choose another path."
        )
    if path.exists() and not path.is_dir():
        raise FileExistsError(
            f"The export path {str(path)!r} exists and is a file; exports are "
            "directories. Remove it or choose another path."
        )
    check_replaceable(path, (MANIFEST,), "an export")
    return path


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike, overwrite: bool) -> Iterator[Path]:
    """Yields a temporary sibling of ``path``; moves it into place on success.

    Nothing appears at ``path`` unless the block finishes without error; on error the
    temporary directory is removed and an existing export is left untouched.
    """
    path = check_target(path, overwrite)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        yield tmp
        check_target(path, overwrite)
        if path.exists():
            old = path.parent / f".{path.name}.old-{uuid.uuid4().hex[:8]}"
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def default_path(model: Any, leaf: str) -> Path:
    """``saved_models/<model name>/<leaf>``."""
    name = getattr(model, "name", None) or "model"
    return Path(DEFAULT_ROOT) / name / leaf


SCAN_FACTOR = 50  # a dataset is scanned for at most SCAN_FACTOR x limit samples


def _random_index(n: int, limit: int, seed: int | None) -> np.ndarray:
    """Sorted indices of ``limit`` of ``n`` samples: the first ones when ``seed`` is
    None, else drawn at random without replacement (seeded)."""
    if n <= limit or seed is None:
        return np.arange(min(n, limit))
    return np.sort(np.random.default_rng(seed).choice(n, limit, replace=False))


def _split_element(element: Any) -> tuple[Any, Any]:
    if isinstance(element, tuple | list):
        return element[0], (element[1] if len(element) > 1 else None)
    return element, None


def _take_dataset(
    data: Any, limit: int, rank: int, seed: int | None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Reservoir-samples up to ``limit`` samples from a batched or unbatched dataset.

    At most ``SCAN_FACTOR * limit`` samples are read (the whole dataset when it is
    shorter), so a repeated or very large dataset does not hang the export.
    """
    rng = None if seed is None else np.random.default_rng(seed)
    xs: list[np.ndarray] = []
    ys: list[Any] = []
    seen, has_y = 0, None
    for element in data:
        x, y = _split_element(element)
        if isinstance(x, dict):
            raise ValueError(
                "Expected dataset elements to be a tensor or (x, y). Received: "
                f"a dict with keys {sorted(x)}"
            )
        x = np.asarray(x)
        has_y = y is not None
        batch = x[None] if x.ndim == rank else x
        labels = (
            (np.asarray(y)[None] if x.ndim == rank else np.asarray(y))
            if has_y
            else None
        )
        for i in range(len(batch)):
            if seen < limit:
                xs.append(batch[i])
                ys.append(None if labels is None else labels[i])
            elif rng is not None:
                j = int(rng.integers(0, seen + 1))
                if j < limit:
                    xs[j], ys[j] = batch[i], (None if labels is None else labels[i])
            seen += 1
        if seen >= limit and (rng is None or seen >= SCAN_FACTOR * limit):
            break
    if not xs:
        raise ValueError("Expected a non-empty dataset. Received: an empty one")
    return np.stack(xs), (np.stack(ys) if has_y else None)


def _take(
    data: Any, limit: int, rank: int, seed: int | None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Collects up to ``limit`` samples (and labels) from arrays or a dataset."""
    from keras_transfer._backend import tf

    if isinstance(data, tf.data.Dataset):
        return _take_dataset(data, limit, rank, seed)
    if isinstance(data, tuple) and len(data) == 2:
        x, y = np.asarray(data[0]), np.asarray(data[1])
        index = _random_index(len(x), limit, seed)
        return x[index], y[index]
    x = np.asarray(data)
    if x.ndim == 0:
        return x, None
    return x[_random_index(len(x), limit, seed)], None


def sample_array(
    data: Any,
    name: str,
    shape: tuple[int | None, ...],
    limit: int = 500,
    seed: int | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Returns ``(x, y_or_None)``: up to ``limit`` samples shaped ``(n, *shape)``.

    Accepts an array of samples, an ``(x, y)`` tuple, or a ``tf.data.Dataset`` (batched
    or not) yielding ``x`` or ``(x, y)``. With a ``seed``, the samples are drawn at
    random (without replacement, in their original order) across the whole data;
    a dataset is reservoir-sampled over at most ``SCAN_FACTOR * limit`` samples.
    Without a seed, the first ``limit`` samples are taken.

    Raises:
        ValueError: if the samples do not have the model input shape.
    """
    x, y = _take(data, limit, len(shape), seed)
    if (
        x.dtype == object
        or x.ndim != len(shape) + 1
        or not all(d is None or d == s for d, s in zip(shape, x.shape[1:]))
    ):
        raise ValueError(
            f"Expected {name} samples of shape {tuple(shape)} (the model input "
            f"without the batch axis), i.e. an array of shape "
            f"(n, {', '.join(map(str, shape))})."
            f" Received: {name} of shape {tuple(x.shape)}"
        )
    if len(x) == 0:
        raise ValueError(f"Expected at least one sample in {name}. Received: none")
    return x, y
