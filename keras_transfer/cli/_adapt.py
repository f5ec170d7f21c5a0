"""`adapt`: domain adaptation runs through `keras_transfer.adapt`, with their report.

The report shows what adaptation is for: a 2-D PCA of source vs target features
before and after adaptation, the λ schedule and the domain-classifier accuracy, the
training curves, and the confusion matrix on the labelled target hold-out.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from keras_transfer.cli._data import (
    check_data_config,
    check_num_classes,
    class_ids,
    inspect_source,
    is_unlabelled,
    load_labelled,
    load_unlabelled,
)
from keras_transfer.cli._train import (
    classification_section,
    cluster_start,
    create_run,
    finish_in_cluster,
    load_backbone_from_config,
)
from keras_transfer.config import AdaptConfig, ConfigError
from keras_transfer.runs import RunDir
from keras_transfer.saving import save_model


def target_ids(target_names: list[str], names: list[str]) -> np.ndarray:
    """The source's id of each class of a labelled target (all or some of them)."""
    return class_ids(
        target_names,
        names,
        "target.source has classes {unknown} that source.source does not have "
        "(its classes: {known}): the report scores the target on the source's "
        "classes, so the target's must be all or some of them, named alike. (An "
        "unlabelled target is a folder of images without class sub-folders, or a "
        ".npz with an array x only.)",
    )


def _check(cfg: AdaptConfig) -> list[str]:
    check_data_config(cfg.source, "source")
    check_data_config(cfg.target, "target", unlabelled_ok=True)
    names = inspect_source(cfg.source.source, "source.source")
    if not is_unlabelled(cfg.target.source, "target.source"):
        # labelled target (class sub-folders, labels in a .npz, a built-in domain):
        # its labels are read for the report's evaluation only
        target_ids(inspect_source(cfg.target.source, "target.source"), names)
    check_num_classes(cfg.model.num_classes, names, "source.source")
    from keras_transfer.adaptation import list_alignment_methods

    accepted = [*list_alignment_methods(), "source_only", "adabn", "auto"]
    if cfg.adaptation.method not in accepted:
        raise ConfigError(
            f"Invalid value for adaptation.method: expected one of {accepted}. "
            f"Received: adaptation.method={cfg.adaptation.method!r}"
        )
    if cfg.adaptation.epochs < 1:
        raise ConfigError(
            f"Expected adaptation.epochs >= 1. Received: {cfg.adaptation.epochs}"
        )
    section = cfg.adaptation
    if section.source_augmentation == "choose" and section.method != "auto":
        raise ConfigError(
            "adaptation.source_augmentation: choose compares the agreement of auto's "
            "candidates, so it needs adaptation.method: auto. Received: "
            f"adaptation.method={cfg.adaptation.method!r}"
        )
    momentum = section.batchnorm_momentum
    if momentum is not None and not 0.0 <= momentum < 1.0:
        raise ConfigError(
            "Invalid value for adaptation.batchnorm_momentum: expected a float in "
            f"[0, 1) or null. Received: adaptation.batchnorm_momentum={momentum!r}"
        )
    return names


def _sample(x: np.ndarray, n: int = 300) -> np.ndarray:
    return x[:n]


def run_adapt(
    cfg: AdaptConfig, *, resume: bool = False, overwrite: bool = False, verbose: int = 1
) -> RunDir:
    """Adapts from `cfg.source` to `cfg.target` and writes `<runs_dir>/<name>/`.

    Target labels are used only for the hold-out evaluation and the report, never for
    training. The saved `model.keras` is the inference model (no discriminator).

    Under `TF_CONFIG` (several machines) every worker runs the same command: the
    strategy is chosen first (`get_strategy("auto")`) and every model is built and
    trained under it; only the chief writes `<runs_dir>/<name>/` (run files,
    report, model). The other workers train in step, write into a private
    temporary folder removed at the end, and share the chief's backup
    (`checkpoints/adapt`), so `--resume` restarts every worker from it.

    Returns:
        The `RunDir` of the finished run.

    Raises:
        ConfigError: an invalid config, data source, method or backbone.
        RunExistsError: the run exists and neither `resume` nor `overwrite` is set.
    """
    strategy, runs_dir = cluster_start()
    names = _check(cfg)
    return finish_in_cluster(
        cfg,
        runs_dir,
        resume,
        overwrite,
        lambda: _run_adapt(cfg, names, strategy, runs_dir, resume, overwrite, verbose),
    )


def _run_adapt(cfg, names, strategy, runs_dir, resume, overwrite, verbose) -> RunDir:
    chief = runs_dir is None
    runs_dir = cfg.runs_dir if chief else runs_dir
    from keras_transfer import reports
    from keras_transfer._backend import keras
    from keras_transfer.adaptation import adapt, make_encoder
    from keras_transfer.adaptation.predict import predict_eagerly
    from keras_transfer.distribute import maybe_distribute

    src = load_labelled(cfg.source)
    labelled = not is_unlabelled(cfg.target.source, "target.source")
    if labelled:
        tgt = load_labelled(cfg.target)
        if tgt.class_names != src.class_names:  # some of the source's classes
            ids = target_ids(tgt.class_names, src.class_names)
            tgt = dataclasses.replace(
                tgt,
                y_train=ids[tgt.y_train].astype("int32"),
                y_val=ids[tgt.y_val].astype("int32"),
                class_names=list(src.class_names),
            )
        x_target, x_target_held = tgt.x_train, tgt.x_val
    else:
        x_target, x_target_held = load_unlabelled(cfg.target, "target.source")
    if src.x_train.shape[1:] != x_target.shape[1:]:
        raise ConfigError(
            f"Source inputs have shape {src.x_train.shape[1:]} but target inputs "
            f"{x_target.shape[1:]}; set the same image_size for both."
        )
    keras.utils.set_random_seed(cfg.source.seed)
    with maybe_distribute(strategy):  # the backbone's variables too
        backbone = load_backbone_from_config(cfg.model, src.x_train.shape[1:])
        encoder = make_encoder(
            backbone,
            input_shape=src.x_train.shape[1:],
            unfreeze_depth=cfg.adaptation.unfreeze_depth,
            train_batchnorm=cfg.model.train_batchnorm,
            pooling=cfg.model.pooling or "auto",
            batchnorm_momentum=None,  # adaptation.batchnorm_momentum governs it
        )
    features = (
        f"{encoder.output_shape[-1]} features per example "
        f"(model.pooling={cfg.model.pooling or 'auto'})"
    )
    if verbose:
        print(f"[adapt] encoder: {features}", flush=True)
    run = create_run(
        cfg, runs_dir, len(names), resume=resume, overwrite=overwrite, chief=chief
    )
    try:
        run.write_json("classes.json", names)
        before = (
            predict_eagerly(encoder, _sample(src.x_val)),
            predict_eagerly(encoder, _sample(x_target_held)),
        )
        section = cfg.adaptation
        result = adapt(
            encoder,
            (src.x_train, src.y_train),
            x_target,
            num_classes=len(names),
            method=section.method,
            epochs=section.epochs,
            batch_size=cfg.source.batch_size,
            learning_rate=section.learning_rate,
            lambda_max=section.lambda_max,
            method_kwargs=dict(section.options) or None,
            candidates=section.candidates,
            selector=section.selector,
            warmup=section.warmup,
            bottleneck_units=section.bottleneck_units,
            source_augmentation=section.source_augmentation,
            seed=cfg.source.seed,
            callbacks=[keras.callbacks.TensorBoard(str(run.logs_dir))],
            # Shared by every worker of a cluster; only the chief writes it.
            backup_dir=str(Path(cfg.runs_dir) / cfg.name / "checkpoints" / "adapt"),
            strategy=strategy,
            jit_compile=section.jit_compile,
            mixed_precision=section.mixed_precision,
            batchnorm_momentum=section.batchnorm_momentum,
            target_batchnorm=section.target_batchnorm,
            domain_batchnorm=section.domain_batchnorm,
            on_low_agreement=section.on_low_agreement,
            verbose=verbose,
        )
        model, inference = result.training_model, result.model
        after = (
            model.features(_sample(src.x_val)),
            model.features(_sample(x_target_held)),
        )
        save_model(inference, run.model_path)
        hist = {
            k: [None if v is None else float(v) for v in vals]
            for k, vals in result.history.history.items()
        }
        out = run.report_dir
        report = reports.Report(f"keras-transfer adapt: {cfg.name}", out)
        report.add_text(
            f"Method {result.method} (asked: {cfg.adaptation.method}); backbone "
            f"{cfg.model.backbone}, {features}; warm-up "
            f"{result.selection['warmup_epochs']} "
            "epochs; "
            f"{cfg.source.source} -> {cfg.target.source}. "
            + (
                "Target labels are used only for this evaluation."
                if labelled
                else "The target is unlabelled: no target accuracy can be measured."
            )
        )
        if result.selection.get("agreement_warning"):
            report.add_text(f"Warning: {result.selection['agreement_warning']}")
        if result.selection.get("source_warning"):
            report.add_text(f"Warning: {result.selection['source_warning']}")
        report.add_heading("Source vs target features")
        pca = reports.plot_feature_projection(before, after, out / "features_pca.png")
        report.add_figure(pca, "2-D PCA of encoder features before / after")
        report.add_heading("λ and domain accuracy")
        curves = reports.plot_adaptation_curves(hist, out / "adaptation_curves.png")
        report.add_figure(curves, "Domain-loss weight λ and domain accuracy per epoch")
        report.add_heading("Training curves")
        report.add_figure(
            reports.plot_history(hist, out / "training_curves.png"),
            "Losses and held-out source accuracy per epoch",
        )
        source_acc = float(
            np.mean(predict_eagerly(inference, src.x_val).argmax(-1) == src.y_val)
        )
        run.write_json("selection.json", result.selection)
        report.add_text(f"Source hold-out accuracy: {source_acc:.4f}.")
        metrics = None
        if labelled:
            metrics = classification_section(
                report, inference, tgt.x_val, tgt.y_val, names
            )
        else:
            report.add_text(
                "No target labels (target.source is a folder of images without "
                "class sub-folders, or a .npz without y): the measures of this run "
                "are the source hold-out accuracy above and selection.json (what "
                "auto chose and how much its candidates agree on the target)."
            )
        report.save()
        run.finish(
            {
                "target": metrics,
                "source_accuracy": source_acc,
                "method": result.method,
                "selection": result.selection,
                "history": hist,
            }
        )
    except BaseException as err:
        run.fail(err)
        raise
    return run
