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
from keras_transfer.cli._train import classification_section, load_backbone_from_config
from keras_transfer.config import ConfigError, TuneConfig, to_dict
from keras_transfer.runs import RunDir


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

    Returns:
        The `RunDir` of the finished run.
    """
    names = _check(cfg)
    if not resume and not overwrite and (Path(cfg.runs_dir) / cfg.name).exists():
        RunDir.create(cfg.runs_dir, cfg.name)  # raises RunExistsError
    from keras_transfer import reports
    from keras_transfer._backend import keras
    from keras_transfer.data import from_arrays
    from keras_transfer.tuning import TransferHyperModel, make_tuner, search_summary

    data = load_labelled(cfg.data)
    shape = data.x_train.shape[1:]
    load_backbone_from_config(cfg.model, shape)  # fail early on a bad backbone
    t = cfg.tuning
    depths = t.unfreeze_depths[0] if t.unfreeze_depths == ["all"] else t.unfreeze_depths
    hypermodel = TransferHyperModel(
        lambda: load_backbone_from_config(cfg.model, shape),
        len(names),
        learning_rate=[float(v) for v in t.learning_rates],
        unfreeze_depth=list(depths) if isinstance(depths, list) else depths,
        dropout=cfg.model.dropout,
        head_units=cfg.model.head_units if cfg.model.head == "mlp" else None,
        input_shape=tuple(shape),
    )
    resolved = to_dict(cfg)
    resolved["model"]["num_classes"] = len(names)
    run = RunDir.create(
        cfg.runs_dir, cfg.name, config=resolved, resume=resume, overwrite=overwrite
    )
    try:
        run.write_json("classes.json", names)
        extra = {"max_epochs": t.epochs} if t.tuner == "hyperband" else {}
        tuner = make_tuner(
            t.tuner,
            hypermodel,
            t.objective,
            max_trials=t.max_trials,
            directory=str(run.path),
            project_name="tuner",
            seed=cfg.data.seed,
            on_trial_end=_trial_reporter(
                None if t.tuner == "hyperband" else t.max_trials, t.objective
            ),
            **extra,
        )
        batch = cfg.data.batch_size
        train = from_arrays(data.x_train, data.y_train, batch_size=batch)
        val = from_arrays(data.x_val, data.y_val, batch_size=batch, shuffle=False)
        tuner.search(
            train,
            validation_data=val,
            epochs=t.epochs,
            verbose=0,
            callbacks=[keras.callbacks.TensorBoard(str(run.logs_dir))],
        )
        rows = search_summary(tuner)
        best = tuner.get_best_models(1)[0]
        best.save(run.model_path)
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
        fig = reports.plot_trials(trials, out / "trials.png", objective=t.objective)
        report.add_figure(fig, "Score of each trial vs its hyperparameters")
        report.add_table(rows)
        metrics = classification_section(report, best, data.x_val, data.y_val, names)
        report.save()
        run.finish(
            {"trials": rows, "best": rows[0] if rows else None, "best_eval": metrics}
        )
    except BaseException as err:
        run.fail(err)
        raise
    return run
