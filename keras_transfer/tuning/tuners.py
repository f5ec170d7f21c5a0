"""`make_tuner`: a thin factory over KerasTuner's tuners."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import keras_tuner as kt

from keras_transfer._deprecation import renamed_arguments
from keras_transfer.tuning.distributed import distributed_search, wait_for_oracle

__all__ = ["KNOWN_OBJECTIVES", "TUNERS", "make_tuner"]

TUNERS = {
    "random": kt.RandomSearch,
    "bayesian": kt.BayesianOptimization,
    "hyperband": kt.Hyperband,
    "grid": kt.GridSearch,
}
#: Objectives whose direction KerasTuner cannot guess.
KNOWN_OBJECTIVES = {"dev_risk": "min", "val_source_accuracy": "max"}


@renamed_arguments(distribution_strategy="strategy")
def make_tuner(
    kind: str,
    hypermodel: kt.HyperModel,
    objective: str | kt.Objective = "val_accuracy",
    *,
    max_trials: int = 10,
    directory: str | os.PathLike = "runs/tuning",
    project_name: str = "keras_transfer",
    strategy: Any = None,
    seed: int | None = None,
    overwrite: bool = False,
    on_trial_end: Callable[[Any], None] | None = None,
    **kwargs: Any,
) -> kt.Tuner:
    """Makes a KerasTuner tuner; a thin factory.

    An existing ``directory/project_name`` is resumed (finished trials are skipped)
    unless ``overwrite=True``.

    **Many machines** (KerasTuner's chief/worker mode): run the same script on
    every machine with ``KERASTUNER_ORACLE_IP``/``KERASTUNER_ORACLE_PORT`` (the
    chief's address) and a ``KERASTUNER_TUNER_ID`` each (``chief`` on one,
    ``tuner0``, ``tuner1``... on the others) and one shared ``directory``. The
    environment is checked here (`keras_transfer.tuning.distributed_search`). On
    the chief, ``search`` serves the one oracle and returns when every worker has
    finished (the chief trains nothing); its tuner then holds every trial
    (`search_summary`, ``get_best_hyperparameters``, ``get_best_models``). On a
    worker, ``make_tuner`` first waits for the chief's oracle (`wait_for_oracle`,
    so nothing is written to the shared folder before the chief has set it up),
    then ``search`` runs the trials the oracle hands it; ``overwrite`` is ignored
    there (only the chief clears the shared folder, a worker starting late would
    delete trials the others wrote).

    Args:
        kind: str. "random", "bayesian", "hyperband" or "grid".
        hypermodel: keras_tuner.HyperModel (e.g. `TransferHyperModel`).
        objective: str or keras_tuner.Objective. ``"dev_risk"`` (unsupervised DA
            criterion, minimised) is understood. Defaults to "val_accuracy".
        max_trials: int. Trial budget (Hyperband: ignored, set ``max_epochs``).
            Defaults to 10.
        directory: path. Where trials are stored. Defaults to "runs/tuning".
        project_name: str. Sub-directory name. Defaults to "keras_transfer".
        strategy: `tf.distribute.Strategy`, strategy name or None, as in
            `build_classifier` and `adapt`. Passed to the tuner as KerasTuner's
            ``distribution_strategy`` (each trial builds inside its scope);
            ``distribution_strategy=`` is a deprecated alias. Defaults to None.
        seed: int or None. Tuner seed. Defaults to None.
        overwrite: bool. Start afresh instead of resuming. Defaults to False.
        on_trial_end: callable or None. Called with each finished
            `keras_tuner.engine.trial.Trial` (its ``trial_id``, ``hyperparameters``
            and ``score`` set), e.g. to print one line per trial. Defaults to None.
        **kwargs: Other arguments of the tuner class (``max_epochs``, ``factor``,
            ``num_initial_points``, ``executions_per_trial``...).

    Returns:
        A `keras_tuner.Tuner`.

    Raises:
        ValueError: For an unknown ``kind``, ``max_trials`` below 1 (KerasTuner would
            search without end), ``"dev_risk"`` with a hypermodel that has no
            ``dev_data`` (no trial would log it), or a half-set distributed-search
            environment (see `keras_transfer.tuning.distributed_search`).
    """
    role = distributed_search()  # fail before any work on a half-set environment
    if kind not in TUNERS:
        raise ValueError(
            f"Expected kind to be one of {sorted(TUNERS)}. Received: kind={kind!r}"
        )
    if objective == "dev_risk" and getattr(hypermodel, "dev_data", ...) is None:
        raise ValueError(
            "Expected a hypermodel with dev_data for objective='dev_risk': trials log "
            "dev_risk only when TransferHyperModel(..., dev_data=((x_source_val, "
            "y_source_val), x_target)) is given. Received: dev_data=None"
        )
    if isinstance(objective, str) and objective in KNOWN_OBJECTIVES:
        objective = kt.Objective(objective, KNOWN_OBJECTIVES[objective])
    if strategy is not None:
        from keras_transfer.distribute import get_strategy

        strategy = get_strategy(strategy)
    if kind != "hyperband":
        if (
            isinstance(max_trials, bool)
            or not isinstance(max_trials, int)
            or max_trials < 1
        ):
            # KerasTuner reads 0 (and None) as "no limit": a search that never ends
            raise ValueError(
                f"Expected max_trials to be an int >= 1. Received: max_trials={max_trials!r}"
            )
        kwargs["max_trials"] = max_trials
    else:
        kwargs.setdefault("max_epochs", 3)
    if role is not None and not role.is_chief:
        overwrite = False
        wait_for_oracle(role)
    cls = TUNERS[kind]
    if on_trial_end is not None:
        cls = _reporting(cls, on_trial_end)
    return cls(
        hypermodel=hypermodel,
        objective=objective,
        directory=os.fspath(directory),
        project_name=project_name,
        distribution_strategy=strategy,
        seed=seed,
        overwrite=overwrite,
        **kwargs,
    )


def _reporting(cls: type, on_trial_end: Callable[[Any], None]) -> type:
    """`cls` calling `on_trial_end(trial)` once the oracle has scored each trial."""

    class Reporting(cls):
        def on_trial_end(self, trial: Any) -> None:
            super().on_trial_end(trial)
            # The oracle scores its own copy of the trial (on a worker of a
            # distributed search, the chief's oracle: asked with get_trial).
            trials = getattr(self.oracle, "trials", None)
            if trials is not None:
                on_trial_end(trials.get(trial.trial_id, trial))
            else:
                on_trial_end(self.oracle.get_trial(trial.trial_id))

    Reporting.__name__ = Reporting.__qualname__ = cls.__name__
    return Reporting
