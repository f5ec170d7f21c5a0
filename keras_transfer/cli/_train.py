"""`train`, `evaluate` and `predict`: fine-tuning runs and what follows them.

(Over 400 lines on purpose: train, evaluate and predict share loading a model and
reading its run directory: class names, image size, the data it was trained on.)

Each function takes a validated config dataclass, so the same code serves the CLI and
Python callers:

```python
from keras_transfer.config import TrainConfig
from keras_transfer.cli import run_train
# run_train(TrainConfig(name="mine"))  # writes runs/mine/
```
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import json
import logging
import os
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from keras_transfer.cli._data import (
    BUILTIN,
    check_data_config,
    check_num_classes,
    class_ids,
    evaluation_arrays,
    inspect_source,
    load_labelled,
    read_images,
)
from keras_transfer.config import (
    ConfigError,
    EvaluateConfig,
    ModelConfig,
    PredictConfig,
    TrainConfig,
    check_fields,
    to_dict,
)
from keras_transfer.runs import RunDir
from keras_transfer.saving import save_model

# `.keras` classifiers whose head removal was announced (once per process: `tune`
# loads the backbone once per trial)
_ANNOUNCED: set[str] = set()


def load_backbone_from_config(
    mcfg: ModelConfig, input_shape: tuple, field: str = "model.backbone"
) -> Any:
    """Loads `model.backbone`: a `.keras` file or a backbone spec.

    A `.keras` file holding a classifier (a model `train`, `adapt` or `distill`
    wrote) gives the features its head classifies (`feature_extractor`), announced
    once per file.

    ``field`` is the config field errors name (``backbone`` for `fewshot`,
    ``distillation.student`` for `distill`).
    """
    from keras_transfer.backbones import (
        feature_extractor,
        load_backbone,
        looks_like_classifier,
    )

    spec = mcfg.backbone
    if spec.endswith(".keras"):
        if not os.path.isfile(spec):
            raise ConfigError(
                f"Backbone file not found: {field}={spec!r}. Accepted: an "
                "existing .keras file or a spec such as 'keras_applications:"
                "MobileNetV3Small' (see `keras-transfer backbones`)."
            )
        model = load_model(spec, field, compile=False)
        if looks_like_classifier(model):  # a trained model: reuse its features
            try:
                model = feature_extractor(model)
            except ValueError as err:
                raise ConfigError(
                    f"{field}={spec!r} holds a classifier whose features cannot be "
                    f"taken out: {err}"
                ) from err
            if spec not in _ANNOUNCED:
                _ANNOUNCED.add(spec)
                print(
                    f"{field}: {spec} is a classifier; its head is removed and the "
                    f"features it classifies are used ({model.output.shape[-1]} "
                    f"values from layer {model.layers[-1].name!r})",
                    flush=True,
                )
        return load_backbone(model)
    kwargs = dict(mcfg.backbone_kwargs)
    if spec.startswith(("keras_applications:", "tfhub:", "saved_model:")):
        kwargs.setdefault("input_shape", tuple(input_shape))
    try:
        return load_backbone(spec, **kwargs)
    except (ValueError, OSError) as err:
        raise ConfigError(f"Could not load {field}={spec!r}: {err}") from err


def augmentation_options(section: Any) -> dict | None:
    """`AugmentationSection` -> `augment.AugmentationConfig` fields; None when all off.

    Raises:
        ConfigError: a value out of range, named `augmentation.<field>`.
    """
    if section is None:
        return None
    check_fields("augmentation", section, section.range_checks())
    options = dataclasses.asdict(section)
    defaults = dataclasses.asdict(type(section)())
    return None if options == defaults else options


def build_model(
    mcfg: ModelConfig,
    num_classes: int,
    input_shape: tuple,
    lr: float,
    augmentation: dict | None = None,
    strategy: Any = None,
    jit_compile: bool | str = "auto",
    mixed_precision: str | None = None,
    unfreeze_depth_later: Any = 0,
):
    """Builds the classifier described by `mcfg` (backbone frozen, head trainable).

    `unfreeze_depth_later`: the depth a later phase unfreezes (0: none). The warnings
    about a backbone without pretrained weights then judge that plan, not the frozen
    head phase (a frozen random backbone is fine when the next phase trains it).
    """
    from keras_transfer.backbones import LoadedBackbone, warn_if_frozen_batchnorm_random
    from keras_transfer.builders import build_classifier
    from keras_transfer.distribute import maybe_distribute

    with maybe_distribute(strategy):  # the backbone's variables too
        backbone = load_backbone_from_config(mcfg, input_shape)
    later = unfreeze_depth_later != 0
    with _without_frozen_random_warning() if later else contextlib.nullcontext():
        model = build_classifier(
            backbone,
            num_classes,
            augmentation=augmentation,
            unfreeze_depth=0,
            dropout=mcfg.dropout,
            head=mcfg.head,
            head_units=mcfg.head_units,
            pooling=mcfg.pooling or "avg",
            train_batchnorm=mcfg.train_batchnorm,
            batchnorm_momentum=mcfg.batchnorm_momentum,
            input_shape=tuple(input_shape),
            learning_rate=lr,
            strategy=strategy,
            jit_compile=jit_compile,
            mixed_precision=mixed_precision,
        )
    if later and isinstance(backbone, LoadedBackbone):
        warn_if_frozen_batchnorm_random(
            backbone, unfreeze_depth_later, mcfg.train_batchnorm
        )
    return model


@contextlib.contextmanager
def _without_frozen_random_warning() -> Any:
    """Drops `warn_if_frozen_random`'s warning and log line inside the block."""
    marker = "is frozen (unfreeze_depth=0)"

    def keep(record: logging.LogRecord) -> bool:
        return marker not in record.getMessage()

    log = logging.getLogger("keras_transfer")
    log.addFilter(keep)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=f".*{re.escape(marker)}")
            yield
    finally:
        log.removeFilter(keep)


def predict_classes(model: Any, x: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """Returns the class probabilities of `model` on `x` (a streamed folder,
    `ImageFiles`, is decoded batch by batch)."""
    from keras_transfer.data import folders, from_arrays

    if isinstance(model, _Predictor):  # an export: its runtime on NumPy batches
        if isinstance(x, folders.ImageFiles):
            batches = from_arrays(x, batch_size=batch_size, shuffle=False)
            return np.concatenate([np.asarray(model.run(b.numpy())) for b in batches])
        return np.asarray(model.run(np.asarray(x)))
    if isinstance(x, folders.ImageFiles):
        return np.asarray(
            model.predict(
                from_arrays(x, batch_size=batch_size, shuffle=False), verbose=0
            )
        )
    return np.asarray(model.predict(x, batch_size=batch_size, verbose=0))


def classification_section(
    report: Any, model: Any, x: np.ndarray, y: np.ndarray, class_names: list[str]
) -> dict:
    """Adds confusion matrix and per-class metrics to `report`; returns the metrics."""
    from keras_transfer import reports

    y_pred = predict_classes(model, x).argmax(axis=-1)
    metrics = reports.classification_metrics(y, y_pred, class_names)
    out = report.directory
    report.add_heading("Evaluation")
    report.add_text(
        f"{len(y)} examples: accuracy {metrics['accuracy']:.4f}, "
        f"macro F1 {metrics['macro_f1']:.4f}."
    )
    from keras_transfer.callbacks import check_against_majority

    if check_against_majority(metrics["accuracy"], y, context=f"({report.title})"):
        report.add_text("Warning: no better than predicting the majority class.")
    cm = reports.plot_confusion_matrix(
        y, y_pred, class_names, out / "confusion_matrix.png"
    )
    report.add_figure(cm, "Confusion matrix (rows: true, columns: predicted)")
    report.add_figure(
        reports.plot_per_class(metrics, out / "per_class.png"), "Per class"
    )
    rows = [{"class": k, **v} for k, v in metrics["per_class"].items()]
    report.add_table(rows, ["class", "precision", "recall", "f1", "support"])
    return metrics


def _check_train_config(cfg: TrainConfig) -> list[str]:
    check_data_config(cfg.data)
    names = inspect_source(cfg.data.source)
    check_num_classes(cfg.model.num_classes, names, "data.source")
    for key in ("epochs", "fine_tune_epochs"):
        if getattr(cfg.training, key) < 0:
            raise ConfigError(
                f"Expected training.{key} >= 0. Received: {getattr(cfg.training, key)}"
            )
    depth = cfg.training.unfreeze_depth
    if (
        isinstance(depth, str)
        and depth != "all"
        or isinstance(depth, int)
        and depth < 0
    ):
        raise ConfigError(
            "Expected training.unfreeze_depth to be an int >= 0 or 'all'. "
            f"Received: training.unfreeze_depth={depth!r}"
        )
    if not 0.0 <= cfg.model.dropout < 1.0:
        raise ConfigError(
            f"Expected model.dropout in [0, 1). Received: {cfg.model.dropout}"
        )
    check_model_batchnorm_momentum(cfg.model.batchnorm_momentum)
    augmentation_options(cfg.augmentation)
    return names


def check_model_batchnorm_momentum(momentum: Any) -> None:
    """`model.batchnorm_momentum`: 'auto', null or a float in [0, 1)."""
    if momentum is None or momentum == "auto":
        return
    if isinstance(momentum, float) and 0.0 <= momentum < 1.0:
        return
    raise ConfigError(
        "Invalid value for model.batchnorm_momentum: expected 'auto', null or a "
        f"float in [0, 1). Received: model.batchnorm_momentum={momentum!r}"
    )


def run_train(
    cfg: TrainConfig, *, resume: bool = False, overwrite: bool = False, verbose: int = 1
) -> RunDir:
    """Fine-tunes as `cfg` says and writes `<runs_dir>/<name>/` with a report.

    Everything that can be checked (config, data, backbone, model) is checked before
    the run directory is created.

    Under `TF_CONFIG` (several machines) every worker runs the same command: the
    strategy is chosen first (`get_strategy("auto")`), only the chief writes
    `<runs_dir>/<name>/` (run files, report, model); the other workers train in step
    and write into a private temporary folder removed at the end, restoring from
    the chief's backup on `--resume`.

    Returns:
        The `RunDir` of the finished run.

    Raises:
        ConfigError: an invalid config, data source or backbone.
        RunExistsError: the run exists and neither `resume` nor `overwrite` is set.
    """
    strategy, runs_dir = cluster_start()
    _check_train_config(cfg)
    return finish_in_cluster(
        cfg,
        runs_dir,
        resume,
        overwrite,
        lambda: _run_train(cfg, strategy, runs_dir, resume, overwrite, verbose),
    )


def cluster_start() -> tuple[Any, str | None]:
    """Chooses the strategy first (before any TensorFlow work) and the runs folder.

    Returns:
        `(strategy, runs_dir)`: `runs_dir` is None for the chief (it writes the
        configured runs folder), else a private temporary folder for this worker.
    """
    import tempfile

    from keras_transfer.distribute import get_strategy, is_chief

    strategy = get_strategy("auto")
    if is_chief():
        return strategy, None
    return strategy, tempfile.mkdtemp(prefix="keras-transfer-worker-")


def cluster_end(runs_dir: str, written: str | None) -> None:
    """Removes a worker's temporary runs folder (nothing for the chief)."""
    import shutil

    if written is not None and written != runs_dir:
        shutil.rmtree(written, ignore_errors=True)


def finish_in_cluster(
    cfg: Any, runs_dir: str | None, resume: bool, overwrite: bool, work: Any
) -> RunDir:
    """Runs `work()` for a `train`/`adapt`/`tune` command chosen by `cluster_start`.

    The chief refuses an existing run (neither `resume` nor `overwrite`) before any
    work; a worker's temporary runs folder is removed afterwards, whatever happens.

    Returns:
        The run `work()` wrote (on a worker: the chief's configured run folder).
    """
    chief = runs_dir is None
    exists = (Path(cfg.runs_dir) / cfg.name).exists()
    if chief and not resume and not overwrite and exists:
        RunDir.create(cfg.runs_dir, cfg.name)  # raises RunExistsError, writes nothing
    try:
        run = work()
    finally:
        cluster_end(cfg.runs_dir, runs_dir)
    return run if chief else RunDir(Path(cfg.runs_dir) / cfg.name)


def create_run(
    cfg: Any,
    runs_dir: str,
    num_classes: int,
    *,
    resume: bool,
    overwrite: bool,
    chief: bool,
) -> RunDir:
    """The run folder of a `train`/`adapt`/`tune` command, with its resolved config.

    `num_classes` is filled into the saved `model` section (the data decided it). In a
    cluster only the chief resumes or overwrites; a worker's private folder is new.
    """
    resolved = to_dict(cfg)
    resolved["model"]["num_classes"] = num_classes
    return RunDir.create(
        runs_dir,
        cfg.name,
        config=resolved,
        resume=resume and chief,
        overwrite=overwrite and chief,
    )


def _check_cacheable(model: Any, augmentation: dict | None) -> None:
    """Raises ConfigError when `training.cache_features: true` cannot be exact."""
    from keras_transfer.features import caching_blockers, split_model

    try:
        reasons = caching_blockers(model, split_model(model)[0])
    except ValueError as err:
        reasons = [str(err)]
    if augmentation and (augmentation["mixup_alpha"] or augmentation["cutmix"]):
        reasons.append("MixUp/CutMix change the images every epoch")
    if reasons:
        raise ConfigError(
            "Invalid value for training.cache_features: true, but the head phase "
            f"cannot train on cached features exactly: {'; '.join(reasons)}. Set "
            "training.cache_features to 'auto' or false, or remove the augmentation."
        )


def _run_train(cfg, strategy, runs_dir, resume, overwrite, verbose) -> RunDir:
    chief = runs_dir is None
    runs_dir = cfg.runs_dir if chief else runs_dir
    from keras_transfer import reports
    from keras_transfer._backend import keras
    from keras_transfer.data import from_arrays
    from keras_transfer.finetune import fine_tune

    data = load_labelled(cfg.data)
    num_classes = check_num_classes(
        cfg.model.num_classes, data.class_names, "data.source"
    )
    keras.utils.set_random_seed(cfg.training.seed)
    augmentation = augmentation_options(cfg.augmentation)
    model = build_model(
        cfg.model,
        num_classes,
        data.x_train.shape[1:],
        cfg.training.learning_rate,
        augmentation,
        strategy,
        jit_compile=cfg.training.jit_compile,
        mixed_precision=cfg.training.mixed_precision,
        unfreeze_depth_later=(
            cfg.training.unfreeze_depth if cfg.training.fine_tune_epochs else 0
        ),
    )
    if cfg.training.cache_features is True:
        _check_cacheable(model, augmentation)
    run = create_run(
        cfg, runs_dir, num_classes, resume=resume, overwrite=overwrite, chief=chief
    )
    try:
        run.write_json("classes.json", data.class_names)
        train = from_arrays(
            data.x_train,
            data.y_train,
            batch_size=cfg.data.batch_size,
            seed=cfg.data.seed,
        )
        if augmentation and (augmentation["mixup_alpha"] or augmentation["cutmix"]):
            from keras_transfer.augment import mix_dataset

            train = mix_dataset(
                train,
                num_classes,
                mixup_alpha=augmentation["mixup_alpha"],
                cutmix=augmentation["cutmix"],
                seed=cfg.training.seed,
            )
        val = from_arrays(
            data.x_val, data.y_val, batch_size=cfg.data.batch_size, shuffle=False
        )
        from keras_transfer.callbacks import SaveModelCheckpoint

        callbacks = [
            keras.callbacks.TensorBoard(str(run.logs_dir)),
            SaveModelCheckpoint(run.checkpoints_dir / "last.keras"),
        ]
        history = fine_tune(
            model,
            train,
            val,
            head_epochs=cfg.training.epochs,
            fine_tune_epochs=cfg.training.fine_tune_epochs,
            unfreeze_depth=cfg.training.unfreeze_depth,
            head_learning_rate=cfg.training.learning_rate,
            train_batchnorm=cfg.model.train_batchnorm,
            fine_tune_learning_rate=cfg.training.fine_tune_learning_rate,
            callbacks=callbacks,
            # Shared by every worker of a cluster; only the chief writes it.
            backup_dir=str(Path(cfg.runs_dir) / cfg.name / "checkpoints" / "backup"),
            strategy=strategy,
            cache_features=cfg.training.cache_features,
            # Features over features.MEMORY_LIMIT: a tf.data cache file, removed
            # at the end.
            cache_dir=str(run.checkpoints_dir / "features"),
            recompute_batchnorm=cfg.training.recompute_batchnorm,
            verbose=verbose,
        )
        if augmentation:
            from keras_transfer.augment import strip_augmentation

            model = strip_augmentation(model)  # the saved model is for inference
        save_model(model, run.model_path)
        hist = {k: [float(v) for v in vals] for k, vals in history.history.items()}
        report = reports.Report(f"keras-transfer train: {cfg.name}", run.report_dir)
        report.add_text(f"Backbone {cfg.model.backbone}; data {cfg.data.source}.")
        report.add_heading("Training curves")
        marks = {}
        if cfg.training.fine_tune_epochs and cfg.training.epochs:
            marks["unfreeze"] = cfg.training.epochs + 0.5
        curves = reports.plot_history(
            hist, run.report_dir / "training_curves.png", marks=marks
        )
        report.add_figure(curves, "Loss and metrics per epoch")
        metrics = classification_section(
            report, model, data.x_val, data.y_val, data.class_names
        )
        report.save()
        run.finish({"evaluation": metrics, "history": hist})
    except BaseException as err:
        run.fail(err)
        raise
    return run


def _output_dir(model_path: str, output: str, leaf: str) -> Path:
    """The report folder: `output`, else `<model folder>/<leaf>`.

    Raises:
        ConfigError: `output` is an existing file (reports are folders).
    """
    out = Path(output) if output else Path(model_path).resolve().parent / leaf
    if out.exists() and not out.is_dir():
        raise ConfigError(
            f"output={str(out)!r} is an existing file; the report is written into a "
            "folder. Set output to a folder path (or leave it empty for "
            f"<model folder>/{leaf}/)."
        )
    return out


def _model_size(model: Any, model_path: str) -> int | None:
    """The model's square input size, else the image size of its run, else None."""
    from keras_transfer.cli._data import model_image_size, run_image_size

    return model_image_size(model) or run_image_size(model_path)


def load_model(path: str, field: str = "model_path", compile: bool = True) -> Any:  # noqa: A002
    """Loads a `.keras` model with `keras_transfer.load_model`.

    Raises:
        ConfigError: nothing, a folder or a corrupt file at `path`; the message
            names `field` (the config field or flag to change).
    """
    from keras_transfer.saving import check_model_file
    from keras_transfer.saving import load_model as _load

    try:
        check_model_file(path)
    except (OSError, ValueError) as err:
        raise ConfigError(f"Invalid value for {field}={path!r}: {err}") from err
    return _load(path, compile=compile)


def _is_export(path: str) -> bool:
    p = Path(path)
    return (p.is_file() and p.suffix == ".tflite") or (
        p.is_dir()
        and ((p / "model.tflite").is_file() or (p / "saved_model.pb").is_file())
    )


def run_evaluate(cfg: EvaluateConfig) -> dict:
    """Evaluates a saved model on `cfg.data`; writes a report.

    `model_path` may be a `.keras` file, a `.tflite` file, or a TFLite or SavedModel
    export folder (`keras-transfer export`): an export is evaluated through its own
    runtime (LiteRT or the SavedModel signature), i.e. the file that ships; its
    report goes to `<export's parent>/eval-<export name>/` by default.

    Uses the test split where the source has one (built-in domains, a `.npz` with
    `x_test`, `data.validation_source`), else every example of the source. Images
    are read at the model's input size unless `data.image_size` is set (which must
    then match it).

    Returns:
        The metrics dict (also written to `<output>/metrics.json`).

    Raises:
        ConfigError: a bad model path, data source or image size, or data whose
            classes differ from the model's.
    """
    check_data_config(cfg.data, model_size=True)
    names = inspect_source(cfg.data.source)
    exported = _is_export(cfg.model_path)
    if exported and not cfg.output:
        # beside the export, never inside it (its manifest describes its files)
        path = Path(cfg.model_path).resolve()
        if path.is_file() and (path.parent / "manifest.json").is_file():
            path = path.parent  # model.tflite of an export folder
        out = _output_dir(str(path), "", f"eval-{path.stem}")
    else:
        out = _output_dir(cfg.model_path, cfg.output, "eval")
    from keras_transfer import reports
    from keras_transfer.cli._data import resolve_image_size

    if exported:
        model = _open_model(cfg.model_path)
        shape = tuple(model.input_shape)
        size = shape[0] if len(shape) == 3 and shape[0] == shape[1] else None
        classes = int(np.asarray(model.run(np.zeros((1, *shape), "float32"))).shape[-1])
        expected = shape
    else:
        model = load_model(cfg.model_path, compile=False)
        size = _model_size(model, cfg.model_path)
        classes = model.output_shape[-1]
        expected = tuple(model.input_shape[1:])
    model_names = _trained_class_names(cfg.model_path, model if exported else None)
    remap = _class_remap(names, model_names, classes, cfg.model_path)
    if remap is None:
        check_num_classes(classes, names, "data.source")
    data_cfg = resolve_image_size(cfg.data, size, "data.image_size", cfg.model_path)
    x, y, _ = evaluation_arrays(data_cfg)
    if remap is not None:
        y, names = remap[y], list(model_names)
    if len(expected) == x.ndim - 1 and not all(
        e is None or e == s for e, s in zip(expected, x.shape[1:])
    ):
        raise ConfigError(
            f"data.source={cfg.data.source!r} gives inputs of shape "
            f"{tuple(x.shape[1:])} but {cfg.model_path!r} takes {expected}."
        )
    report = reports.Report(f"keras-transfer evaluate: {cfg.model_path}", out)
    metrics = classification_section(report, model, x, y, names)
    report.save()
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    return metrics


def _trained_class_names(model_path: str, opened: Any = None) -> list[str] | None:
    """The class names a model was trained on: an export's manifest, else the
    run's ``classes.json`` beside the ``.keras`` file; None when neither says."""
    if opened is not None:
        names = opened.class_names
    else:
        path = Path(model_path).resolve().parent / "classes.json"
        names = json.loads(path.read_text()) if path.is_file() else None
    return [str(n) for n in names] if names else None


def _class_remap(
    names: list[str], model_names: list[str] | None, classes: int, model_path: str
) -> np.ndarray | None:
    """Maps the data's class ids onto the model's by name; None: by position.

    Data whose classes are named (class folders, a `.npz` with `class_names` or
    string labels) is matched by name to the classes the model was trained on,
    so a test folder with fewer classes, or the same names in another order, is
    scored against the right outputs. Unnamed ids (a `.npz` of ints) and a model
    whose names are unknown are matched by position, as before.

    Raises:
        ConfigError: a named data class the model was never trained on.
    """
    if not model_names or len(model_names) != classes:
        return None
    if names == [str(i) for i in range(len(names))] and not set(names) <= set(
        model_names
    ):
        return None  # ids without names: positional
    return class_ids(
        names,
        model_names,
        f"data.source has classes {{unknown}} that {model_path!r} was not trained "
        "on (its classes: {known}). Evaluate on data of those classes, in folders "
        "(or class_names) named as in training.",
    )


def _class_names(
    cfg: PredictConfig, num_classes: int, exported: list[str] | None = None
) -> list[str]:
    """`class_names`, else the export's manifest, else the run's classes.json."""
    if cfg.class_names:
        names = [str(c) for c in cfg.class_names]
    elif exported:
        names = [str(c) for c in exported]
    else:
        path = Path(cfg.model_path).resolve()
        path = (path if path.is_dir() else path.parent) / "classes.json"
        names = json.loads(path.read_text()) if path.exists() else []
    if not names:
        names = [str(i) for i in range(num_classes)]
    if len(names) != num_classes:
        raise ConfigError(
            f"class_names has {len(names)} entries but the model predicts "
            f"{num_classes} classes. Set class_names to {num_classes} names (or [] "
            "to use the run's)."
        )
    return names


@dataclasses.dataclass
class _Predictor:
    """A loaded model of any kind `predict` accepts: `run(x) -> probabilities`."""

    run: Any
    input_shape: tuple
    class_names: list[str] | None
    kind: str


def _open_model(path: str) -> _Predictor:
    """Opens a `.keras` file, a `.tflite` file, or a TFLite / SavedModel export.

    Raises:
        ConfigError: nothing usable at `path` (the message says what is accepted).
    """
    p = Path(path)
    accepted = (
        "Accepted: a .keras file, a .tflite file, or an export folder (with "
        "model.tflite or saved_model.pb) written by `keras-transfer export`."
    )
    if p.is_file() and p.suffix == ".tflite" or (p / "model.tflite").is_file():
        from keras_transfer.export import load_tflite

        tfl = load_tflite(p)
        return _Predictor(tfl.predict, tfl.input_shape, tfl.class_names, "tflite")
    if (p / "saved_model.pb").is_file():
        from keras_transfer._backend import tf
        from keras_transfer.export._io import read_manifest

        signature = tf.saved_model.load(str(p)).signatures["serving_default"]
        spec = signature.structured_input_signature[1]["inputs"]
        dtype = spec.dtype

        def run_saved_model(x: np.ndarray) -> np.ndarray:
            if dtype == tf.uint8 and x.dtype != np.uint8:
                x = np.clip(x, 0, 255).astype("uint8")
            batches = [
                signature(inputs=tf.constant(x[i : i + 64], dtype))["probabilities"]
                for i in range(0, len(x), 64)
            ]
            return np.concatenate([b.numpy() for b in batches])

        names = (read_manifest(p) or {}).get("class_names")
        return _Predictor(run_saved_model, tuple(spec.shape[1:]), names, "saved_model")
    if p.is_dir():
        raise ConfigError(
            f"Invalid value for model_path={path!r}: a folder. {accepted}"
        )
    model = load_model(path, compile=False)
    return _Predictor(
        lambda x: predict_classes(model, x),
        tuple(model.input_shape[1:]),
        None,
        "keras",
    )


def _check_predict_output(output: str) -> None:
    if not output:
        return
    out = Path(output)
    if out.is_dir():
        raise ConfigError(
            f"output={output!r} is a folder. Set output to a .json or .csv file path."
        )
    parent = next((q for q in out.parents if q.exists()), None)
    if parent is not None and not parent.is_dir():
        raise ConfigError(
            f"output={output!r} cannot be created: {str(parent)!r} is a file, not a "
            "folder. Choose another output path."
        )


def run_predict(cfg: PredictConfig) -> list[dict]:
    """Predicts the top-k classes of every input; writes JSON/CSV or returns them.

    `model_path` may be a `.keras` file, a `.tflite` file, or a TFLite or SavedModel
    export folder. Images are read at the model's input size unless `image_size` is
    set (which must then match it). `inputs` may also name a built-in domain
    (`digits`, `digits_target`): its test split, the examples `evaluate` scores,
    identified as `<domain>:<index>`.

    Raises:
        ConfigError: missing inputs or model, a bad `top_k`, `image_size` or
            `output` (the message names the field).
    """
    builtin = cfg.inputs in BUILTIN
    if not builtin and (not cfg.inputs or not os.path.exists(cfg.inputs)):
        raise ConfigError(
            f"Inputs not found: inputs={cfg.inputs!r}. Accepted: an image file, a "
            "folder of images, a .npz file with an array x, or a built-in domain "
            f"({', '.join(BUILTIN)})."
        )
    if cfg.top_k < 1:
        raise ConfigError(f"Expected top_k >= 1. Received: top_k={cfg.top_k}")
    if cfg.image_size is not None and cfg.image_size < 8:
        raise ConfigError(
            "Invalid value for image_size: expected an int >= 8 or null. "
            f"Received: image_size={cfg.image_size!r}"
        )
    _check_predict_output(cfg.output)
    if not os.path.exists(cfg.model_path):
        raise ConfigError(
            f"Invalid value for model_path={cfg.model_path!r}: nothing there. "
            "Accepted: a .keras file, a .tflite file, or an export folder."
        )
    from keras_transfer.cli._data import resolve_image_size
    from keras_transfer.config import DataConfig

    predictor = _open_model(cfg.model_path)
    if cfg.inputs.endswith(".npz"):
        with np.load(cfg.inputs) as npz:
            x = npz["x"] if "x" in npz else npz[npz.files[0]]
        ids = [str(i) for i in range(len(x))]
    else:
        shape = predictor.input_shape
        size = shape[0] if len(shape) == 3 and shape[0] == shape[1] else None
        if size is None and predictor.kind == "keras":
            size = _model_size(None, cfg.model_path)
        size = resolve_image_size(
            DataConfig(source="", image_size=cfg.image_size),
            size,
            "image_size",
            cfg.model_path,
        ).image_size
        if builtin:
            # the examples `evaluate` scores on this domain (its test split)
            x = evaluation_arrays(DataConfig(source=cfg.inputs, image_size=size))[0]
            ids = [f"{cfg.inputs}:{i}" for i in range(len(x))]
        else:
            x, ids = read_images(cfg.inputs, size)
    probs = np.asarray(predictor.run(x))
    names = _class_names(cfg, probs.shape[-1], predictor.class_names)
    results = []
    for ident, p in zip(ids, probs):
        top = np.argsort(-p)[: cfg.top_k]
        results.append(
            {
                "input": ident,
                "predictions": [
                    {"class": names[i], "probability": float(p[i])} for i in top
                ],
            }
        )
    if cfg.output:
        out = Path(cfg.output)
        out.parent.mkdir(parents=True, exist_ok=True)
        if out.suffix == ".csv":
            with open(out, "w", newline="", encoding="utf-8") as fh:
                writer = csv.writer(fh)
                writer.writerow(["input", "rank", "class", "probability"])
                for r in results:
                    for rank, p in enumerate(r["predictions"], 1):
                        writer.writerow(
                            [r["input"], rank, p["class"], f"{p['probability']:.6f}"]
                        )
        else:
            out.write_text(json.dumps(results, indent=2))
    return results
