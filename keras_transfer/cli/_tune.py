"""`tune`: a KerasTuner search of learning rate and unfreeze depth, with its report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from keras_transfer.cli._data import (
    check_data_config,
    check_num_classes,
    inspect_source,
    load_labelled,
)
from keras_transfer.cli._train import (
    check_model_batchnorm_momentum,
    classification_section,
    cluster_start,
    create_run,
    finish_in_cluster,
    load_backbone_from_config,
)
from keras_transfer.config import ConfigError, TuneConfig
from keras_transfer.runs import RunDir
from keras_transfer.saving import save_model


def _choices(name: str, values: list, kind: type | tuple) -> list:
    if not values:
        raise ConfigError(f"Expected tuning.{name} to list at least one value.")
    if not all(isinstance(v, kind) and not isinstance(v, bool) for v in values):
        raise ConfigError(
            f"Invalid value for tuning.{name}: expected a list of "
            f"{getattr(kind, '__name__', 'numbers')}. Received: {values!r}"
        )
    return list(values)


def _check(cfg: TuneConfig) -> list[str]:
    check_data_config(cfg.data)
    names = inspect_source(cfg.data.source)
    check_num_classes(cfg.model.num_classes, names, "data.source")
    check_model_batchnorm_momentum(cfg.model.batchnorm_momentum)
    t = cfg.tuning
    _choices("learning_rates", t.learning_rates, (int, float))
    depths = t.unfreeze_depths
    if not (all(isinstance(d, int) for d in depths) or depths == ["all"]):
        raise ConfigError(
            "Invalid value for tuning.unfreeze_depths: expected a list of ints >= 0 "
            "(KerasTuner choices share one type) or ['all']. Received: "
            f"tuning.unfreeze_depths={depths!r}"
        )
    if t.max_trials < 1 or t.epochs < 1:
        raise ConfigError(
            "Expected tuning.max_trials >= 1 and tuning.epochs >= 1. Received: "
            f"max_trials={t.max_trials}, epochs={t.epochs}"
        )
    if t.retrain_epochs < 0:
        raise ConfigError(
            "Expected tuning.retrain_epochs >= 0 (0: keep the best trial's model). "
            f"Received: tuning.retrain_epochs={t.retrain_epochs}"
        )
    return names


def _trial_reporter(total: int | None, objective: str) -> Any:
    """Prints one line per finished trial (id, hyperparameters, score), even quiet."""
    count = [0]

    def cell(value: Any) -> str:
        return f"{value:.4g}" if isinstance(value, float) else str(value)

    def report(trial: Any) -> None:
        count[0] += 1
        values = ", ".join(
            f"{k}={cell(v)}" for k, v in trial.hyperparameters.values.items()
        )
        if trial.score is None:
            reason = (trial.message or "").strip().splitlines()
            score = "failed" + (f" ({reason[-1]})" if reason else "")
        else:
            score = f"{objective} {trial.score:.4f}"
        done = f"{count[0]}/{total}" if total else str(count[0])
        print(
            f"trial {trial.trial_id} [{done}]: {values} -> {score}",
            flush=True,
        )

    return report


def run_tune(
    cfg: TuneConfig, *, resume: bool = False, overwrite: bool = False, verbose: int = 1
) -> RunDir:
    """Searches as `cfg.tuning` says; writes trials, the best model and a report.

    With `resume`, KerasTuner skips the trials already finished in the run directory.
    Each finished trial prints one line (trial id, hyperparameters, score), also with
    `verbose=0` (`--quiet` only silences Keras's progress output).

    Many machines, two ways (every machine runs the same command):

    - KerasTuner's distributed search (``KERASTUNER_TUNER_ID``,
      ``KERASTUNER_ORACLE_IP``, ``KERASTUNER_ORACLE_PORT``): the chief serves the
      oracle, writes `<runs_dir>/<name>/` and, once every worker has finished, the
      summary, best model and report; each worker runs the trials it is handed
      and writes only their checkpoints, into the shared `<runs_dir>/<name>/tuner/`.
    - ``TF_CONFIG``: every trial trains on all workers at once (strategy "auto",
      i.e. `MultiWorkerMirroredStrategy`); only the chief writes
      `<runs_dir>/<name>/`, the other workers a private temporary folder removed at
      the end (on `--resume`, a copy of the chief's trials).

    Returns:
        The `RunDir` of the finished run (on a worker: the chief's run folder).

    Raises:
        ConfigError: an invalid config, data source or backbone, or both
            ``TF_CONFIG`` and ``KERASTUNER_*`` set.
        ValueError: a half-set ``KERASTUNER_*`` environment.
        RunExistsError: the run exists and neither `resume` nor `overwrite` is set.
    """
    role = _search_role()
    strategy, runs_dir = cluster_start()
    names = _check(cfg)
    if role is not None and not role.is_chief:
        return _tune_worker(cfg, names, role, strategy)
    return finish_in_cluster(
        cfg,
        runs_dir,
        resume,
        overwrite,
        lambda: _run_tune(cfg, names, strategy, runs_dir, resume, overwrite, verbose),
    )


def _search_role() -> Any:
    """KerasTuner's distributed-search role, refusing it together with TF_CONFIG."""
    from keras_transfer.distribute import parse_tf_config
    from keras_transfer.tuning import distributed_search

    role = distributed_search()  # ValueError on a half-set environment
    spec = parse_tf_config()
    if role is not None and spec is not None and spec.num_workers > 1:
        raise ConfigError(
            "Expected either TF_CONFIG (each trial trained on several machines) or "
            "KERASTUNER_TUNER_ID/KERASTUNER_ORACLE_IP/KERASTUNER_ORACLE_PORT (trials "
            "spread over machines), not both: unset one of them. Received: both"
        )
    return role


def _copy_trials(shared: Path, private: Path) -> None:
    import shutil

    if (shared / "tuner").is_dir():
        shutil.copytree(shared / "tuner", private / "tuner", dirs_exist_ok=True)


def _hypermodel(cfg: TuneConfig, names: list[str], shape: tuple) -> Any:
    from keras_transfer.tuning import TransferHyperModel

    t = cfg.tuning
    depths = t.unfreeze_depths[0] if t.unfreeze_depths == ["all"] else t.unfreeze_depths
    return TransferHyperModel(
        lambda: load_backbone_from_config(cfg.model, shape),
        len(names),
        learning_rate=[float(v) for v in t.learning_rates],
        unfreeze_depth=list(depths) if isinstance(depths, list) else depths,
        dropout=cfg.model.dropout,
        head_units=cfg.model.head_units if cfg.model.head == "mlp" else None,
        input_shape=tuple(shape),
        build_kwargs={
            "pooling": cfg.model.pooling or "avg",
            "batchnorm_momentum": cfg.model.batchnorm_momentum,
        },
    )


def _tuner(cfg: TuneConfig, hypermodel: Any, directory: Path, strategy: Any) -> Any:
    from keras_transfer.tuning import make_tuner

    t = cfg.tuning
    extra = {"max_epochs": t.epochs} if t.tuner == "hyperband" else {}
    return make_tuner(
        t.tuner,
        hypermodel,
        t.objective,
        max_trials=t.max_trials,
        directory=str(directory),
        project_name="tuner",
        seed=cfg.data.seed,
        strategy=strategy,
        on_trial_end=_trial_reporter(
            None if t.tuner == "hyperband" else t.max_trials, t.objective
        ),
        **extra,
    )


def _search(cfg: TuneConfig, tuner: Any, data: Any, callbacks: list) -> None:
    from keras_transfer.data import from_arrays

    batch = cfg.data.batch_size
    train = from_arrays(data.x_train, data.y_train, batch_size=batch)
    val = from_arrays(data.x_val, data.y_val, batch_size=batch, shuffle=False)
    tuner.search(
        train,
        validation_data=val,
        epochs=cfg.tuning.epochs,
        verbose=0,
        callbacks=callbacks,
    )


def _retrain(cfg: TuneConfig, tuner: Any, data: Any) -> tuple[Any, dict]:
    """The best hyperparameters trained afresh on the training split only, so the
    validation split still measures the saved model. Every process of a TF_CONFIG
    cluster runs it (the fit is collective); KerasTuner's chief alone runs it in a
    distributed search, whose workers have left."""
    from keras_transfer.data import from_arrays
    from keras_transfer.tuning import retrain_best

    train = from_arrays(
        data.x_train, data.y_train, batch_size=cfg.data.batch_size, seed=cfg.data.seed
    )
    model, _ = retrain_best(
        tuner, train, None, epochs=cfg.tuning.retrain_epochs, verbose=0
    )
    history = {k: [float(v) for v in vals] for k, vals in model.history.history.items()}
    return model, {"epochs": cfg.tuning.retrain_epochs, "history": history}


def _tune_worker(cfg: TuneConfig, names: list[str], role: Any, strategy: Any) -> RunDir:
    """A worker of a distributed search: runs the trials the chief's oracle hands it.

    It writes only the trials' files, into the shared `<runs_dir>/<name>/tuner/`;
    `make_tuner` waits for the chief's oracle first, so the chief has set the run
    folder up before anything is written there.
    """
    data = load_labelled(cfg.data)
    shape = data.x_train.shape[1:]
    load_backbone_from_config(cfg.model, shape)  # fail early on a bad backbone
    path = Path(cfg.runs_dir) / cfg.name
    tuner = _tuner(cfg, _hypermodel(cfg, names, shape), path, strategy)
    _search(cfg, tuner, data, [])
    print(
        f"tuner {role.tuner_id}: no trial left at the oracle {role.address}; the "
        f"chief writes the run {path}",
        flush=True,
    )
    return RunDir(path)


def _best_model(tuner: Any, chief: bool, shared: Path, strategy: Any) -> Any:
    """The best trial's model; a TF_CONFIG worker loads the chief's checkpoint.

    KerasTuner saves a non-chief worker's checkpoints to a folder it removes at
    once, so that worker builds the same model in step with the chief (creating
    variables is collective) and loads the chief's `checkpoint.weights.h5`,
    written before the chief's build could complete.
    """
    if chief:
        return tuner.get_best_models(1)[0]
    from keras_transfer._backend import keras
    from keras_transfer.distribute import maybe_distribute

    trial = tuner.oracle.get_best_trials(1)[0]
    keras.backend.clear_session()
    with maybe_distribute(strategy):
        model = tuner.hypermodel.build(trial.hyperparameters)
        checkpoint = shared / "tuner" / f"trial_{trial.trial_id}"
        model.load_weights(str(checkpoint / "checkpoint.weights.h5"))
    return model


def _run_tune(cfg, names, strategy, runs_dir, resume, overwrite, verbose) -> RunDir:
    chief = runs_dir is None
    runs_dir = cfg.runs_dir if chief else runs_dir
    from keras_transfer import reports
    from keras_transfer._backend import keras
    from keras_transfer.distribute import maybe_distribute
    from keras_transfer.tuning import search_summary

    data = load_labelled(cfg.data)
    shape = data.x_train.shape[1:]
    with maybe_distribute(strategy):
        load_backbone_from_config(cfg.model, shape)  # fail early on a bad backbone
    hypermodel = _hypermodel(cfg, names, shape)
    t = cfg.tuning
    run = create_run(
        cfg, runs_dir, len(names), resume=resume, overwrite=overwrite, chief=chief
    )
    try:
        run.write_json("classes.json", names)
        if not chief and resume:  # skip the trials the chief finished, in step
            _copy_trials(Path(cfg.runs_dir) / cfg.name, run.path)
        tuner = _tuner(cfg, hypermodel, run.path, strategy)
        _search(cfg, tuner, data, [keras.callbacks.TensorBoard(str(run.logs_dir))])
        rows = search_summary(tuner)
        retrained = None
        if t.retrain_epochs:
            best, retrained = _retrain(cfg, tuner, data)
        else:
            best = _best_model(tuner, chief, Path(cfg.runs_dir) / cfg.name, strategy)
        save_model(best, run.model_path)
        trials = [
            {
                "hyperparameters": {
                    k: v for k, v in r.items() if k not in ("trial", "score")
                },
                "score": r["score"],
            }
            for r in rows
        ]
        out = run.report_dir
        report = reports.Report(f"keras-transfer tune: {cfg.name}", out)
        report.add_text(
            f"{t.tuner} search, {len(rows)} finished trials, objective {t.objective}."
        )
        if retrained is not None:
            report.add_text(
                f"The saved model: the best hyperparameters trained afresh for "
                f"{t.retrain_epochs} epochs on the training split (the evaluation "
                "below is on the validation split it did not train on)."
            )
        fig = reports.plot_trials(trials, out / "trials.png", objective=t.objective)
        report.add_figure(fig, "Score of each trial vs its hyperparameters")
        report.add_table(rows)
        metrics = classification_section(report, best, data.x_val, data.y_val, names)
        report.save()
        summary = {"trials": rows, "best": rows[0] if rows else None}
        if retrained is not None:
            summary["retrained"] = retrained
        run.finish({**summary, "best_eval": metrics})
    except BaseException as err:
        run.fail(err)
        raise
    return run
