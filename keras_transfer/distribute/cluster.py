"""The cluster a process belongs to, read from ``TF_CONFIG`` without starting TensorFlow.

Multi-worker training (``MultiWorkerMirroredStrategy``) must configure collective ops
before the TensorFlow runtime starts, so everything here reads the ``TF_CONFIG``
environment variable itself instead of asking TensorFlow. It also says which
process is the **chief** (the one that writes shared files: backups, run
directories, reports, exports) and where the other workers write instead, the
``write_filepath`` pattern of TensorFlow's multi-worker guide.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil

__all__ = [
    "TASK_TYPES",
    "ClusterSpec",
    "is_chief",
    "parse_tf_config",
    "remove_backup",
    "remove_write_dir",
    "runtime_initialized",
    "write_dir",
]

#: Task types a keras-transfer process may have in ``TF_CONFIG``.
TASK_TYPES = ("chief", "worker")

_EXAMPLE = (
    '{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
    '"task": {"type": "worker", "index": 0}}'
)


@dataclasses.dataclass(frozen=True)
class ClusterSpec:
    """What ``TF_CONFIG`` says about the cluster and this process.

    Attributes:
        chief: list of str. Addresses of the ``chief`` task (0 or 1).
        workers: list of str. Addresses of the ``worker`` tasks.
        task_type: str or None. This process's task type (``"chief"``/``"worker"``).
        task_index: int or None. This process's index within its task type.
    """

    chief: tuple[str, ...]
    workers: tuple[str, ...]
    task_type: str | None
    task_index: int | None

    @property
    def num_workers(self) -> int:
        """Processes that train: chief plus workers."""
        return len(self.chief) + len(self.workers)

    @property
    def is_chief(self) -> bool:
        """The chief task, else worker 0 when the cluster has no chief."""
        if self.task_type is None:
            return True
        if self.task_type == "chief":
            return True
        return not self.chief and self.task_index == 0


def _bad(what: str, value: str) -> ValueError:
    return ValueError(
        f"Expected TF_CONFIG to be {what}, e.g. {_EXAMPLE} (task type one of "
        f"{TASK_TYPES}, index from 0). Received: TF_CONFIG={value!r}"
    )


def parse_tf_config(tf_config: str | dict | None = None) -> ClusterSpec | None:
    """Parses and checks ``TF_CONFIG``; never touches the TensorFlow runtime.

    Args:
        tf_config: str, dict or None. A ``TF_CONFIG`` value; None reads the
            ``TF_CONFIG`` environment variable. Defaults to None.

    Returns:
        A :class:`ClusterSpec`, or None when ``TF_CONFIG`` is unset or empty.

    Raises:
        ValueError: ``TF_CONFIG`` is not a JSON object, names no ``worker`` list,
            has a task type other than ``chief``/``worker``, a task index outside
            the cluster, or no ``task`` while naming more than one process. The
            message names ``TF_CONFIG`` and shows an accepted value.

    Examples:
    ```python
    >>> spec = parse_tf_config(
    ...     {"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 1}}
    ... )
    >>> spec.num_workers, spec.is_chief
    (2, False)

    ```
    """
    if tf_config is None:
        tf_config = os.environ.get("TF_CONFIG", "")
    shown = tf_config if isinstance(tf_config, str) else json.dumps(tf_config)
    if isinstance(tf_config, str):
        if not tf_config.strip():
            return None
        try:
            tf_config = json.loads(tf_config)
        except json.JSONDecodeError as err:
            raise _bad("JSON", shown) from err
    if not isinstance(tf_config, dict):
        raise _bad("a JSON object", shown)
    if not tf_config:
        return None
    cluster = tf_config.get("cluster")
    if not isinstance(cluster, dict) or not _addresses(cluster.get("worker")):
        raise _bad('a JSON object whose "cluster" names a "worker" list', shown)
    unknown = sorted(set(cluster) - {"chief", "worker", "ps", "evaluator"})
    if unknown or cluster.get("ps") or cluster.get("evaluator"):
        raise _bad(
            f"a cluster of only {TASK_TYPES} tasks (got {unknown or 'ps/evaluator'})",
            shown,
        )
    chief = _addresses(cluster.get("chief")) or ()
    workers = _addresses(cluster["worker"])
    if len(chief) > 1:
        raise _bad('a cluster with at most one "chief"', shown)
    task = tf_config.get("task")
    if task is None or task == {}:
        if len(chief) + len(workers) > 1:
            raise _bad('a JSON object with a "task" for this process', shown)
        return ClusterSpec(chief, workers, None, None)
    if not isinstance(task, dict):
        raise _bad('a JSON object whose "task" is an object', shown)
    task_type, index = task.get("type"), task.get("index", 0)
    if task_type not in TASK_TYPES:
        raise _bad(f'a "task" of type {TASK_TYPES}', shown)
    size = len(chief) if task_type == "chief" else len(workers)
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < size:
        raise _bad(
            f'a "task" index in [0, {size - 1}] for its {size} {task_type} task(s)',
            shown,
        )
    return ClusterSpec(chief, workers, task_type, index)


def _addresses(value) -> tuple[str, ...] | None:
    if not isinstance(value, (list, tuple)) or not value:
        return None
    if not all(isinstance(a, str) and a for a in value):
        return None
    return tuple(value)


def is_chief(tf_config: str | dict | None = None) -> bool:
    """Whether this process writes shared files (True outside a cluster).

    Args:
        tf_config: str, dict or None. As in :func:`parse_tf_config`.

    Returns:
        True for the chief (or worker 0 of a cluster without a chief) and for a
        process with no ``TF_CONFIG``.

    Examples:
    ```python
    >>> is_chief("")
    True

    ```
    """
    spec = parse_tf_config(tf_config)
    return spec is None or spec.num_workers < 2 or spec.is_chief


def write_dir(path: str | os.PathLike, tf_config: str | dict | None = None) -> str:
    """Where this process writes what belongs at the shared ``path``.

    The chief writes ``path`` itself; every other worker writes a temporary
    ``path/workertemp_<index>`` (TensorFlow's multi-worker ``write_filepath``
    pattern) that it removes with :func:`remove_write_dir`.

    Args:
        path: str or PathLike. The folder every worker was given.
        tf_config: str, dict or None. As in :func:`parse_tf_config`.

    Returns:
        ``path`` for the chief, else the worker's temporary folder.

    Examples:
    ```python
    >>> cfg = {"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 1}}
    >>> write_dir("backup", cfg)
    'backup/workertemp_1'

    ```
    """
    path = os.fspath(path)
    if is_chief(tf_config):
        return path
    spec = parse_tf_config(tf_config)
    index = spec.task_index if spec.task_type == "worker" else 0
    return os.path.join(path, f"workertemp_{index}")


def remove_write_dir(path: str | os.PathLike, written: str | os.PathLike) -> None:
    """Removes a worker's temporary folder (``written`` != ``path``); else nothing."""
    if os.fspath(written) != os.fspath(path):
        shutil.rmtree(written, ignore_errors=True)


def runtime_initialized() -> bool:
    """Whether the TensorFlow runtime has started (devices listed, tensors made).

    Returns:
        True once the eager context is initialised; False when it cannot be told.
    """
    try:
        from tensorflow.python.eager import context
    except ImportError:  # pragma: no cover - TensorFlow always has it today
        return False
    return bool(getattr(context.context(), "_initialized", False))


#: Left in a shared backup folder by a chief that finished while a worker's
#: temporary folder was still there: the last worker to finish removes the rest.
CHIEF_DONE = ".chief_done"


def _worker_temps(path: str) -> list[str]:
    return [e for e in os.listdir(path) if e.startswith("workertemp_")]


#: What `ResumableBackup` (and Keras's `BackupAndRestore` under it) writes in its
#: folder: these names and their temporary / previous copies (".bkp", ".tmp.npz").
BACKUP_FILES = ("latest.weights.h5", "training_metadata.json", "random_states.npz")


def _backup_file(entry: str) -> bool:
    return entry == CHIEF_DONE or any(entry.startswith(n) for n in BACKUP_FILES)


def remove_backup(path: str | os.PathLike, written: str | os.PathLike) -> None:
    """Removes a finished backup without pulling a folder from under another process.

    A worker removes its temporary folder; the chief (or a lone process) removes
    its own files in ``path`` (`BACKUP_FILES`: anything else there is the
    user's and stays). The shared folder goes only once the chief is done with
    it and nothing else is left in it: the chief removes it when no worker's
    temporary folder is left, else it leaves a ``.chief_done`` marker and the
    last worker removes it. A worker never removes the folder before the chief
    is done (it once did, while it was still empty, just before the chief's
    first save into it: that save failed).

    Args:
        path: str or PathLike. The shared backup folder.
        written: str or PathLike. Where this process wrote (:func:`write_dir`).
    """
    path, written = os.fspath(path), os.fspath(written)
    marker = os.path.join(path, CHIEF_DONE)
    if written != path:
        shutil.rmtree(written, ignore_errors=True)
        if os.path.isdir(path) and os.path.exists(marker) and not _worker_temps(path):
            with contextlib.suppress(OSError):
                os.remove(marker)
                os.rmdir(path)
        return
    if not os.path.isdir(path):
        return
    for entry in os.listdir(path):
        full = os.path.join(path, entry)
        if _backup_file(entry) and os.path.isfile(full):
            with contextlib.suppress(FileNotFoundError):
                os.remove(full)
    if _worker_temps(path):  # a worker is still saving: it removes the folder after
        with contextlib.suppress(OSError), open(marker, "w") as f:
            f.write("the chief finished; the last worker removes this folder\n")
        if _worker_temps(path):
            return
        with contextlib.suppress(OSError):  # the last one left meanwhile
            os.remove(marker)
    with contextlib.suppress(OSError):  # not empty: the user's files stay with it
        os.rmdir(path)
