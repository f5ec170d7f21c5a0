"""`pretrain`: train a backbone on labelled images offline and save a KerasHub preset.

The preset lands in `<runs_dir>/<name>/preset` and is then a backbone like any other:

```
keras-transfer pretrain --set data.source=photos/ --name base
keras-transfer train --set model.backbone=keras_hub:runs/base/preset --set data.source=few/
```
"""

from __future__ import annotations

from pathlib import Path

from keras_transfer.cli._data import check_data_config, load_labelled
from keras_transfer.config import PretrainConfig, check_pretrain_config, to_dict
from keras_transfer.runs import RunDir


def preset_path(run: RunDir) -> Path:
    """The preset directory of a pretrain run."""
    return run.path / "preset"


def run_pretrain(
    cfg: PretrainConfig,
    *,
    resume: bool = False,
    overwrite: bool = False,
    verbose: int = 1,
) -> RunDir:
    """Pretrains as `cfg` says; writes the run directory with the preset and a report.

    `resume` starts the training again in the existing run directory (pretraining is
    short; nothing partial is kept).

    Returns:
        The `RunDir` of the finished run; the preset is `preset_path(run)`.

    Raises:
        ConfigError: an invalid config or data source.
        RunExistsError: the run exists and neither `resume` nor `overwrite` is set.
    """
    check_data_config(cfg.data)
    check_pretrain_config(cfg)
    if not resume and not overwrite and (Path(cfg.runs_dir) / cfg.name).exists():
        RunDir.create(cfg.runs_dir, cfg.name)  # raises RunExistsError, writes nothing
    from keras_transfer import reports
    from keras_transfer._backend import keras
    from keras_transfer.cli._train import classification_section
    from keras_transfer.pretrain import pretrain_preset

    data = load_labelled(cfg.data)
    run = RunDir.create(
        cfg.runs_dir,
        cfg.name,
        config=to_dict(cfg),
        resume=resume,
        overwrite=overwrite,
    )
    try:
        run.write_json("classes.json", data.class_names)
        p = cfg.pretrain
        result = pretrain_preset(
            data.x_train,
            data.y_train,
            str(preset_path(run)),
            x_val=data.x_val,
            y_val=data.y_val,
            num_classes=len(data.class_names),
            filters=p.filters,
            repeats=p.repeats,
            epochs=p.epochs,
            learning_rate=p.learning_rate,
            batch_size=cfg.data.batch_size,
            augment=p.augment,
            augment_warmup=p.augment_warmup,
            seed=p.seed,
            overwrite=True,
            callbacks=[keras.callbacks.TensorBoard(str(run.logs_dir))],
            verbose=verbose,
        )
        report = reports.Report(f"keras-transfer pretrain: {cfg.name}", run.report_dir)
        report.add_text(
            f"A KerasHub VGGBackbone (filters {p.filters}) trained from scratch on "
            f"{cfg.data.source} ({len(data.x_train)} training images, "
            f"{len(data.class_names)} classes). Preset: {preset_path(run)}; use it "
            f"with --set model.backbone=keras_hub:{preset_path(run)}."
        )
        report.add_heading("Training curves")
        curves = reports.plot_history(
            result.history, run.report_dir / "training_curves.png"
        )
        report.add_figure(curves, "Loss and metrics per epoch")
        metrics = {"train_accuracy": result.train_accuracy}
        if len(data.x_val):
            metrics["evaluation"] = classification_section(
                report, result.model, data.x_val, data.y_val, data.class_names
            )
        report.save()
        run.finish(
            {
                **metrics,
                "preset": str(preset_path(run)),
                "history": result.history,
            }
        )
    except BaseException as err:
        run.fail(err)
        raise
    return run
