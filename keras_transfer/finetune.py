"""The two-phase fine-tuning recipe: train the head, then unfreeze and fine-tune.

(Over 400 lines on purpose: the phases, their resumable backups and the cached-feature
head phase share one loop and one set of checks; splitting them would spread one
recipe over several files.)
"""

from __future__ import annotations

import inspect
import json
import os
import re
from typing import Any

from keras_transfer._backend import keras, tf
from keras_transfer.builders import recompile
from keras_transfer.data.pipelines import refuse_infinite
from keras_transfer.distribute.backup import (  # public here too
    ResumableBackup,
    _load_random_states,
    _save_random_states,
    build_optimizer,
)
from keras_transfer.distribute.cluster import remove_backup, remove_write_dir, write_dir
from keras_transfer.features import FeaturePlan, check_cache_features
from keras_transfer.freezing import (
    check_unfreeze_depth,
    depth_units,
    find_backbone,
    set_trainable,
)
from keras_transfer.labels import (
    check_dataset,
    check_input_shape,
    check_sparse_labels,
)
from keras_transfer.normalization import (
    check_recompute_batchnorm,
    recompute_after_training,
)


def _merge(histories: list, model: keras.Model) -> keras.callbacks.History:
    merged = keras.callbacks.History()
    merged.set_model(model)
    merged.history = {}
    merged.epoch = []
    keys = sorted({k for h in histories for k in h.history})
    for h in histories:
        n = len(h.epoch)
        merged.epoch.extend(h.epoch)
        for k in keys:
            merged.history.setdefault(k, []).extend(h.history.get(k, [None] * n))
    return merged


class _EpochLog(keras.callbacks.Callback):
    """Writes the logs of every finished epoch to a JSON file (rewritten atomically).

    `BackupAndRestore` restores weights and the epoch number but not the history:
    the epochs run before an interruption would be missing from the merged history.
    Put it before `BackupAndRestore` in the callback list, so that an epoch is in the
    log whenever it is in the backup.
    """

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path

    def records(self) -> list[dict]:
        if not os.path.exists(self.path):
            return []
        with open(self.path) as f:
            return json.load(f)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
        kept = [r for r in self.records() if r["epoch"] < epoch]
        logs = {k: float(v) for k, v in (logs or {}).items()}
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(kept + [{"epoch": epoch, "logs": logs}], f)
        os.replace(tmp, self.path)


def _with_earlier_epochs(h: Any, records: list[dict], first: int) -> Any:
    """Prepends the logged epochs in [first, h.epoch[0]) to history `h`."""
    start = h.epoch[0] if h.epoch else None
    earlier = [r for r in records if r["epoch"] >= first]
    if start is not None:
        earlier = [r for r in earlier if r["epoch"] < start]
    if not earlier:
        return h
    n = len(h.epoch)
    keys = list(
        dict.fromkeys([k for r in earlier for k in r["logs"]] + list(h.history))
    )
    merged = keras.callbacks.History()
    merged.epoch = [r["epoch"] for r in earlier] + list(h.epoch)
    merged.history = {
        k: [r["logs"].get(k) for r in earlier] + list(h.history.get(k, [None] * n))
        for k in keys
    }
    return merged


def _stages(unfreeze_depth: Any, n_units: int, epochs: int, gradual: bool) -> list:
    """(depth, epochs) per stage of phase 2."""
    final = n_units if unfreeze_depth == "all" else unfreeze_depth
    if not gradual or epochs < 2 or final < 2:
        return [(unfreeze_depth, epochs)]
    n_stages = min(epochs, final)
    stages = []
    for i in range(n_stages):
        depth = max(1, round(final * (i + 1) / n_stages))
        stage_epochs = epochs // n_stages + (1 if i < epochs % n_stages else 0)
        stages.append((depth if depth < n_units else "all", stage_epochs))
    return stages


#: What fine_tune writes into ``backup_dir``: stage<i>/ (a `ResumableBackup`) and
#: stage<i>.done.json, .epochs.json, .weights.h5, .random.npz (and temporary names).
_STAGE_ENTRY = re.compile(
    r"^stage\d+(\.(done\.json|epochs\.json|weights\.h5|random\.npz)(\.tmp(\.npz)?)?)?$"
)


def fine_tune(
    model: keras.Model,
    train: Any,
    validation: Any = None,
    *,
    head_epochs: int = 3,
    fine_tune_epochs: int = 3,
    unfreeze_depth: int | str = "all",
    head_learning_rate: float | None = None,
    fine_tune_learning_rate: float = 1e-5,
    backbone_learning_rate: float | None = None,
    train_batchnorm: bool | str = "auto",
    gradual: bool = False,
    callbacks: list | None = None,
    backup_dir: str | None = None,
    strategy: Any = None,
    cache_features: bool | str = "auto",
    cache_dir: str | None = None,
    jit_compile: bool | str | None = None,
    recompute_batchnorm: bool | str = "auto",
    verbose: Any = "auto",
) -> keras.callbacks.History:
    """Fine-tunes a builder-made model in two phases and returns one merged history.

    Phase 1 trains the head with the backbone frozen. Phase 2 unfreezes the top
    `unfreeze_depth` layers (BatchNormalization stays frozen unless
    `train_batchnorm`) and recompiles with the lower `fine_tune_learning_rate`.
    Epoch numbers run on across phases, so callbacks and TensorBoard see one run.

    Frozen stages (the head phase, and phase 2 with `unfreeze_depth=0`) train on
    cached features when that is exact (`keras_transfer.features`): the backbone
    runs once over the data instead of once per epoch, the head is trained on its
    outputs, and the model, which shares the head's layers, comes back as the usual
    end-to-end model. Callbacks still see the whole model.

    Args:
        model: keras.Model. A compiled model with a nested backbone (from
            `build_classifier` / `build_regressor`).
        train: Training data accepted by `model.fit` (a `tf.data.Dataset`, ...).
        validation: Validation data or None.
        head_epochs: int. Phase-1 epochs (0 skips it). Defaults to 3.
        fine_tune_epochs: int. Phase-2 epochs (0 skips it). Defaults to 3.
        unfreeze_depth: int or str. Depth unfrozen in phase 2. Defaults to "all".
        head_learning_rate: float or None. Phase-1 learning rate (else the model's).
        fine_tune_learning_rate: float. Phase-2 learning rate. Defaults to 1e-5.
        backbone_learning_rate: float or None. Discriminative phase-2 rate for the
            backbone (the head keeps `fine_tune_learning_rate`).
        train_batchnorm: bool or `"auto"` (the default), as in `set_trainable`: with
            `"auto"` only BatchNorm layers whose statistics were never trained train.
        recompute_batchnorm: `"auto"`, True or False. After the last phase, set
            the trained BatchNorm layers' statistics to their average over `train`
            (`normalization.recompute_after_training`); `"auto"`: when
            `train_batchnorm="auto"` trained untrained ones. Defaults to `"auto"`.
        gradual: bool. Unfreeze gradually: phase 2 is split into stages that
            unfreeze progressively more layers (ULMFiT style). Defaults to False.
        callbacks: list or None. Keras callbacks for both phases.
        backup_dir: str or None. Fault tolerance: with it, a run whose process dies
            (or is interrupted) resumes from its last completed epoch with its
            optimizer state and random state (`ResumableBackup` per stage, plus a
            marker and weights file per finished stage), and the returned history
            holds every epoch, those run before the interruption included. In a
            cluster (`TF_CONFIG`) give every worker the same `backup_dir`: only the
            chief writes it, the others write a `workertemp_<i>` folder inside it,
            removed when they finish; every worker restores the chief's backup.
            A finished run removes its own `stage<i>` entries only: other files
            in `backup_dir` are never touched.
        strategy: A `tf.distribute.Strategy`, a strategy name, or None. The model
            must have been built under the same strategy (e.g.
            `build_classifier(..., strategy=...)`); every recompile happens in its
            scope. None uses the model's own strategy.
        cache_features: bool or str. `"auto"`: frozen stages train on cached
            backbone features when the result is the same as without (frozen
            backbone, BatchNormalization in inference mode, no augmentation,
            dropout or random layer before the head input, arrays or a finite
            `tf.data` pipeline without random ops); otherwise they run uncached
            and the reasons go to the `keras_transfer` logger. True: cache, or
            raise ValueError naming what prevents it. False: never. The log line
            "[fine_tune] head phase on cached features: N examples, D dims" says
            when it is used. Defaults to "auto".
        cache_dir: str or None. Folder for features larger than
            `features.MEMORY_LIMIT` (a `tf.data` cache file, removed at the end).
            None: such features are not cached with "auto", and go to the
            system's temporary folder with True. Defaults to None.
        jit_compile: bool, `"auto"` or None. XLA for every phase's steps (each
            phase recompiles with it, and the model keeps it in its
            `compile_recipe`); None keeps the model's own setting (the builder's
            `jit_compile=`). On a CPU XLA measured slower for every model tried
            (docs/performance.md). Defaults to None.
        verbose: Passed to `fit`.

    Returns:
        A `keras.callbacks.History` with the epochs of all phases.

    Raises:
        ValueError: invalid epochs, depth, or a model without a nested backbone;
            for ``(x, y)`` arrays and a sparse categorical loss (the default),
            labels it cannot read: strings, one-hot rows, fractions, ids outside
            ``[0, outputs)`` (`keras_transfer.labels.check_sparse_labels`), and
            inputs whose per-example shape is not the model's; for a `tf.data`
            dataset, unbatched elements or one-hot labels under a sparse loss
            (`keras_transfer.labels.check_dataset`).

    Examples:
    ```python
    import numpy as np
    from keras_transfer import build_classifier, fine_tune
    model = build_classifier(
        "keras_applications:MobileNetV3Small", 2, weights=None,
        input_shape=(32, 32, 3),
    )
    x = np.random.uniform(0, 255, (8, 32, 32, 3)).astype("float32")
    history = fine_tune(model, (x, np.arange(8) % 2), head_epochs=1,
                        fine_tune_epochs=1, verbose=0)
    assert len(history.epoch) == 2
    ```
    """
    for name, value in (
        ("head_epochs", head_epochs),
        ("fine_tune_epochs", fine_tune_epochs),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(
                f"Expected {name} to be an int >= 0. Received: {name}={value!r}"
            )
    depth = check_unfreeze_depth(unfreeze_depth)
    cache_features = check_cache_features(cache_features)
    check_recompute_batchnorm(recompute_batchnorm)
    if jit_compile not in (None, True, False, "auto"):
        raise ValueError(
            "Expected jit_compile to be True, False, 'auto' or None (keep the "
            f"model's). Received: jit_compile={jit_compile!r}"
        )
    backbone = find_backbone(model)
    if backbone is None:
        raise ValueError(
            "Expected a model that names its backbone (model.backbone, set by "
            "build_classifier and the other builders) or holds a nested backbone "
            f"model. Received: model={model.name!r} with neither; set "
            "model.backbone = <its backbone layer>."
        )
    if strategy is not None:
        from keras_transfer.distribute import get_strategy

        wanted = get_strategy(strategy) if isinstance(strategy, str) else strategy
        if wanted is not model.distribute_strategy:
            raise ValueError(
                f"The model was built under {type(model.distribute_strategy).__name__}"
                f", not the strategy passed ({type(wanted).__name__}). Build it with "
                "build_classifier(..., strategy=strategy) so its variables live on "
                "the strategy's devices."
            )
    if not getattr(model, "compiled", False):
        raise ValueError(
            "fine_tune needs a compiled model: call model.compile() first."
        )
    refuse_infinite(train, "train", "fine_tune")
    refuse_infinite(validation, "validation", "fine_tune")
    if isinstance(train, tuple) and len(train) in (2, 3):
        check_input_shape(model, train[0])
        check_sparse_labels(model, train[1])
        fit_data = {"x": train[0], "y": train[1]}
        if len(train) == 3:
            fit_data["sample_weight"] = train[2]
    else:
        check_dataset(model, train, "train")
        fit_data = {"x": train}
    check_dataset(model, validation, "validation")
    if isinstance(train, tf.data.Dataset) or inspect.isgenerator(train):
        # A dataset is shuffled by its pipeline: fit's default shuffle=True would
        # only warn that it is ignored.
        fit_data["shuffle"] = False
    n_units = len(depth_units(backbone))
    stages = [(0, head_epochs, head_learning_rate)] if head_epochs else []
    if fine_tune_epochs and depth != 0:
        for d, e in _stages(depth, n_units, fine_tune_epochs, gradual):
            stages.append((d, e, fine_tune_learning_rate))
    elif fine_tune_epochs:
        stages.append((0, fine_tune_epochs, fine_tune_learning_rate))

    histories = []
    cache = FeaturePlan(model, train, validation, cache_features, cache_dir)
    try:
        _run_stages(
            model,
            stages,
            cache,
            fit_data,
            validation,
            histories,
            callbacks,
            backup_dir,
            backbone_learning_rate,
            train_batchnorm,
            jit_compile,
            verbose,
        )
    finally:
        cache.close()
    recompute_after_training(
        model, train, recompute_batchnorm, label="fine_tune", verbose=verbose
    )
    owner = backup_dir is not None and write_dir(backup_dir) == backup_dir
    if backup_dir is not None:
        remove_write_dir(backup_dir, write_dir(backup_dir))
    if owner and os.path.isdir(backup_dir):
        # The run finished: drop the backup so the next run starts fresh; never
        # another worker's stage<i>/workertemp_<j>, which it may still be saving to.
        # Only its own stage<i> entries: backup_dir may hold the user's files.
        for entry in os.listdir(backup_dir):
            path = os.path.join(backup_dir, entry)
            if not _STAGE_ENTRY.match(entry):
                continue
            if os.path.isdir(path):
                remove_backup(path, path)
            else:
                os.remove(path)
    merged = _merge(histories, model)
    from keras_transfer.callbacks import check_fit_history

    check_fit_history(merged.history, train, validation)
    return merged


def _run_stages(
    model: Any,
    stages: list,
    cache: FeaturePlan,
    fit_data: dict,
    validation: Any,
    histories: list,
    callbacks: Any,
    backup_dir: Any,
    backbone_learning_rate: Any,
    train_batchnorm: bool | str,
    jit_compile: Any,
    verbose: Any,
) -> None:
    epoch = 0
    for index, (stage_depth, epochs, lr) in enumerate(stages):
        set_trainable(
            model, stage_depth, train_batchnorm=train_batchnorm, recompile=False
        )
        recompile(
            model,
            learning_rate=lr,
            backbone_learning_rate=backbone_learning_rate if index else None,
            jit_compile=jit_compile,
        )
        stage_callbacks = list(callbacks or [])
        marker = weights = epoch_log = None
        if backup_dir is not None:
            marker = os.path.join(backup_dir, f"stage{index}.done.json")
            weights = os.path.join(backup_dir, f"stage{index}.weights.h5")
            random_states = os.path.join(backup_dir, f"stage{index}.random.npz")
            if os.path.exists(marker):
                build_optimizer(model)  # else Keras skips the optimizer's state
                model.load_weights(weights)
                _load_random_states(model, random_states)
                with open(marker) as f:
                    done = json.load(f)
                h = keras.callbacks.History()
                h.history, h.epoch = done["history"], done["epoch"]
                histories.append(h)
                epoch += epochs
                continue
            # Restore from backup_dir; write where this process may (the chief:
            # backup_dir, another worker of a cluster: its own workertemp_<i>).
            out = write_dir(backup_dir)
            os.makedirs(out, exist_ok=True)
            epoch_log = _EpochLog(os.path.join(out, f"stage{index}.epochs.json"))
            stage_callbacks.append(epoch_log)
            stage_callbacks.append(
                ResumableBackup(os.path.join(backup_dir, f"stage{index}"))
            )
        plan = cache.get(verbose) if stage_depth == 0 else None
        try:
            if plan is not None:
                from keras_transfer.features import compile_head, fit_head

                head, cached = plan
                compile_head(model, head)
                h = fit_head(
                    model,
                    head,
                    cached,
                    epochs=epoch + epochs,
                    initial_epoch=epoch,
                    callbacks=stage_callbacks,
                    verbose=verbose,
                )
            else:
                h = model.fit(
                    **fit_data,
                    validation_data=validation,
                    epochs=epoch + epochs,
                    initial_epoch=epoch,
                    callbacks=stage_callbacks,
                    verbose=verbose,
                )
        finally:
            # BackupAndRestore sets the model's private _initial_epoch, which wins
            # over fit(initial_epoch=) in every later fit: the next stage would
            # restart at the restored epoch.
            if hasattr(model, "_initial_epoch"):
                model._initial_epoch = None
        if epoch_log is not None:
            h = _with_earlier_epochs(h, epoch_log.records(), epoch)
        histories.append(h)
        epoch += epochs
        if backup_dir is not None:
            marker, weights, random_states = (
                os.path.join(out, os.path.basename(p))
                for p in (marker, weights, random_states)
            )
            os.makedirs(out, exist_ok=True)
            model.save_weights(weights)
            _save_random_states(model, random_states)
            tmp = marker + ".tmp"
            with open(tmp, "w") as f:
                json.dump({"history": h.history, "epoch": h.epoch}, f)
            os.replace(tmp, marker)
