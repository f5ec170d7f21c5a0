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


def check_target(path: str | os.PathLike, overwrite: bool) -> Path:
    """Refuses an existing export path unless ``overwrite``; returns it as a Path."""
    path = Path(path)
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


def _take(data: Any, limit: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Collects up to ``limit`` samples (and labels) from arrays or a dataset."""
    from keras_transfer._backend import tf

    if isinstance(data, tf.data.Dataset):
        xs, ys, count = [], [], 0
        for element in data:
            x, y = (
                (element[0], element[1])
                if isinstance(element, tuple)
                else (
                    element,
                    None,
                )
            )
            if isinstance(x, dict):
                raise ValueError(
                    "Expected dataset elements to be a tensor or (x, y). Received: "
                    f"a dict with keys {sorted(x)}"
                )
            xs.append(np.asarray(x))
            if y is not None:
                ys.append(np.asarray(y))
            count += len(xs[-1]) if xs[-1].ndim else 1
            if count >= limit:
                break
        if not xs:
            raise ValueError("Expected a non-empty dataset. Received: an empty one")
        return xs, (ys or None)  # type: ignore[return-value]
    if isinstance(data, tuple) and len(data) == 2:
        return np.asarray(data[0])[:limit], np.asarray(data[1])[:limit]
    return np.asarray(data)[:limit], None


def sample_array(
    data: Any,
    name: str,
    shape: tuple[int | None, ...],
    limit: int = 500,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Returns ``(x, y_or_None)``: up to ``limit`` samples shaped ``(n, *shape)``.

    Accepts an array of samples, an ``(x, y)`` tuple, or a ``tf.data.Dataset`` (batched
    or not) yielding ``x`` or ``(x, y)``.

    Raises:
        ValueError: if the samples do not have the model input shape.
    """
    x, y = _take(data, limit)
    if isinstance(x, list):  # dataset: batched or unbatched elements
        rank = len(shape)
        if x[0].ndim == rank:
            x = np.stack(x)
            y = np.stack(y) if y else None
        else:
            x = np.concatenate(x)
            y = np.concatenate(y) if y else None
        x, y = x[:limit], (None if y is None else y[:limit])
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
