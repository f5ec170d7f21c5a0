"""`adapt`: the `fine_tune` of unsupervised domain adaptation.

One call takes a backbone (encoder), labelled source data and unlabelled target data and returns
a compiled inference model. The recipe is the same for every method and every pair:

1. hold out a stratified part of the SOURCE (never of the target: it has no labels);
2. warm up on the source alone (alignment weight 0) until held-out source accuracy
   stops improving (`AdaptationController`);
3. branch each candidate method from the warm-up weights and train it for the
   remaining epochs with a ramped λ and the collapse guard;
4. score every candidate without target labels (`selection_scores`, and
   `ensemble_agreement` over the pool) and keep the best (``method="auto"``), or the
   one asked for.

The encoder feeds a normalised bottleneck (``Dense → BN → ReLU``) and a linear head;
alignment acts on the bottleneck. The default optimizer is Adam.

(Over 400 lines on purpose: `adapt` is one public function whose docstring is the
recipe's reference; each step it runs lives in a sibling module.)
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
import warnings
from typing import Any

import numpy as np

from keras_transfer._backend import keras
from keras_transfer._deprecation import renamed_arguments
from keras_transfer.adaptation.backup import AdaptBackup
from keras_transfer.adaptation.batchnorm import (
    ADAPT_BATCHNORM_MOMENTUM,
    DEFAULT_DOMAIN_BATCHNORM,
    DEFAULT_TARGET_BATCHNORM,
    check_domain_batchnorm,
    check_target_batchnorm,
    target_batchnorm_statistics,
)
from keras_transfer.adaptation.batchnorm import (
    batchnorm_momentum as lowered_batchnorm_momentum,
)
from keras_transfer.adaptation.candidates import (
    APPEARANCE_AUGMENTATION,
    AUTO_AUGMENTATION,
    AUTO_CANDIDATES,
    CHOOSABLE_AUGMENTATIONS,
    DEFAULT_SOURCE_AUGMENTATION,
    SOURCE_AUGMENTATIONS,
    augment_source,
    is_image_batch,
    resolve_methods,
    source_augmentation_for,
    train_candidate,
)
from keras_transfer.adaptation.ensemble import ENSEMBLE, ensemble_model
from keras_transfer.adaptation.inputs import (
    check_finite,
    check_inputs,
    labelled_arrays,
    source_labels,
    split_source,
    unlabelled_array,
)
from keras_transfer.adaptation.methods import JointForward
from keras_transfer.adaptation.model import DomainAdaptationModel
from keras_transfer.adaptation.predict import predict_eagerly
from keras_transfer.adaptation.recipe import AdaptationController
from keras_transfer.adaptation.result import (
    DEFAULT_SELECTOR,
    LOW_AGREEMENT,
    AdaptResult,
    _choose,
    accuracy,
    agreement_check,
    choose,
    merge_histories,
    optimizer_state,
    restore,
    restore_seed_states,
    seed_states,
    snapshot,
    source_check,
)
from keras_transfer.adaptation.reverse import REVERSE_EPOCHS
from keras_transfer.adaptation.scores import (
    REVERSE_SELECTORS,
    ensemble_agreement,
    selection_scores,
)
from keras_transfer.adaptation.soup import (
    DEFAULT_ON_LOW_AGREEMENT,
    LOW_AGREEMENT_ACTIONS,
    SOUP,
    soup_model,
)
from keras_transfer.adaptation.weighted import class_weighted_parts
from keras_transfer.data.lazy import LazyArray
from keras_transfer.data.pairs import domain_pairs
from keras_transfer.precision import check_policy, set_layer_precision

#: How the warnings of `agreement_check` start (``warnings.filterwarnings``).
_AGREEMENT_WARNING = "adapt: the .* candidates agree"
#: How the warning of `source_check` starts.
_SOURCE_WARNING = "adapt: the chosen model's held-out source accuracy"


@renamed_arguments(encoder="backbone", lambda_="lambda_max")
def adapt(
    backbone: Any,
    source: Any,
    target: Any,
    *,
    num_classes: int | None = None,
    method: str = "auto",
    epochs: int = 20,
    batch_size: int = 32,
    learning_rate: float = 1e-3,
    adaptation_learning_rate: float | None = None,
    optimizer: Any = None,
    lambda_max: float | None = None,
    method_kwargs: dict | None = None,
    candidates: Any = None,
    selector: str = DEFAULT_SELECTOR,
    bottleneck_units: int | None = 256,
    pooling: str = "auto",
    warmup: Any = "auto",
    tolerance: float | None = 0.03,
    validation_split: float = 0.15,
    source_augmentation: Any = "default",
    input_shape: Any = None,
    unfreeze_depth: Any = None,
    seed: int = 0,
    callbacks: list | None = None,
    backup_dir: str | None = None,
    strategy: Any = None,
    jit_compile: bool | str = "auto",
    mixed_precision: str | None = None,
    batchnorm_momentum: float | None = ADAPT_BATCHNORM_MOMENTUM,
    target_batchnorm: bool | str = DEFAULT_TARGET_BATCHNORM,
    domain_batchnorm: bool = DEFAULT_DOMAIN_BATCHNORM,
    on_low_agreement: str = DEFAULT_ON_LOW_AGREEMENT,
    verbose: int = 1,
) -> AdaptResult:
    """Adapts ``backbone`` from labelled ``source`` to unlabelled ``target`` data.

    The recipe (see the module doc) is the same whatever the backbone, method or data:
    stratified held-out source split, source warm-up until its accuracy plateaus, λ
    ramp, collapse guard that restores the last good weights and halves λ when
    held-out source accuracy drops more than ``tolerance``, normalised bottleneck,
    Adam. No target label is taken anywhere.

    Args:
        backbone: keras Model/Layer, `LoadedBackbone` or backbone spec string
            (anything `DomainAdaptationModel` accepts). Its weights are trained in
            place. ``encoder=`` is its deprecated alias (docs/vocabulary.md).
        source: tuple ``(x, y)`` of arrays, or a labelled `tf.data.Dataset`
            (read once: into memory up to 512 MiB of inputs, past that into a
            temporary file streamed one batch at a time, see
            `keras_transfer.data.SpilledArray`). ``x`` may be image files read lazily
            (`keras_transfer.data.image_files`): they stream from disk and are
            decoded one batch at a time, never whole. ``y``: integer class ids,
            shape ``(n,)`` or ``(n, 1)``, or one-hot rows ``(n, classes)``.
            Float inputs holding NaN or infinity are refused before training.
        target: array ``x``, image files (`keras_transfer.data.image_files(...,
            labels=None)`, streamed the same way) or an unlabelled
            `tf.data.Dataset` (inputs only; read once like a source dataset).
        num_classes: int or None. Defaults to ``max(y) + 1`` (the width of
            one-hot labels); a class id the labels skip is logged.
        method: str. A registered alignment method (``"dann"``, ``"cdan"``,
            ``"coral"``, ``"mmd"``, ``"mcc"``, ``"entropy"``, ``"bnm"``,
            ``"self_training"``; ``"iwdan"`` and ``"iwcdan"``, DANN and CDAN
            with source examples weighted by the target's class prior, estimated
            each epoch without labels, for a target whose classes are
            imbalanced: `keras_transfer.adaptation.weighted`), ``"adabn"``
            (source training, then target BatchNorm statistics),
            ``"source_only"`` or ``"auto"`` (train the ``candidates`` from one
            warm-up and keep the best by ``selector``).
            Defaults to "auto".
        epochs: int. Total epochs (warm-up included); one epoch is one pass over the
            larger domain. Defaults to 20.
        batch_size: int. Examples per domain per step. Defaults to 32.
        learning_rate: float. Adam learning rate when ``optimizer`` is None.
            Defaults to 1e-3.
        adaptation_learning_rate: float or None. Adam learning rate after the
            warm-up (when ``optimizer`` is None); None keeps ``learning_rate``.
        optimizer: keras optimizer, a callable returning one, or None (Adam).
            An instance is used for the warm-up and cloned (``from_config``) for each
            candidate. Defaults to None.
        lambda_max: float or None. Alignment weight at the end of the λ ramp; None
            uses 1.0. ``lambda_=`` is its deprecated alias.
        method_kwargs: dict or None. Constructor arguments of the method (overrides
            `METHOD_DEFAULTS`). Defaults to None.
        candidates: sequence of str or None. Methods tried by "auto". Defaults to
            `AUTO_CANDIDATES`.
        selector: str. Unsupervised score ranking "auto"'s candidates, one of
            `keras_transfer.adaptation.scores.SELECTORS`; ``"ensv"`` compares each
            candidate with the mean prediction of all of them, so it needs several
            candidates (the default five); ``"ensv_rv"`` (the default) is EnsV
            among the candidates whose reverse-validation score (``"rv"``: a short
            fit of a fresh model on the candidate's target pseudo-labels, scored on
            the source; `keras_transfer.adaptation.reverse`) is at least half the
            best one's, which costs about a quarter of the run more; ``"ensv"``
            skips that. ``"ensemble"`` (opt-in) returns that
            mean itself, over the candidates whose held-out source accuracy held,
            as one model (`ensemble_model`): ``.method`` is ``"ensemble"``,
            ``selection["members"]`` names them and ``selection["ensv_choice"]``
            the candidate EnsV would have returned (``training_model`` and the
            history are its). It costs no extra training, but one forward pass per
            member at inference and export. ``"soup"`` (opt-in) returns one
            model holding the mean of those candidates' weights, its trainable
            BatchNorm statistics re-estimated (`soup_model`): ``.method`` is
            ``"soup"``, ``training_model`` holds the soup too, and if its held-out
            source accuracy falls below the collapse guard's floor EnsV's choice
            is kept (``selection["soup_fallback"]``). It costs one statistics pass
            and no reverse fit. Defaults to "ensv_rv".
        bottleneck_units: int or None. Width of the normalised bottleneck.
            Defaults to 256.
        pooling: str. How a backbone's feature maps become features: ``"avg"``,
            ``"max"``, ``"flatten"`` (every position kept, for maps of a known
            size) or ``"auto"``: flatten maps of at most 16 positions (4x4),
            average-pool larger ones (`keras_transfer.heads.pool_features`; see
            docs/domain_adaptation.md, "Pooling of the encoder"). Ignored for a
            backbone whose output is already 2-D. Defaults to "auto".
        warmup: "auto" or int. Warm-up epochs (see `AdaptationController`).
        tolerance: float or None. Collapse-guard tolerance (None: off).
            Defaults to 0.03.
        validation_split: float. Share of the source held out. Defaults to 0.15.
        source_augmentation: ``"default"``, ``"appearance"``, ``"auto"``,
            ``"auto+appearance"``, None or a callable. Applied to every source
            training batch (never to the target, the held-out split or the test
            data). ``"appearance"`` is random polarity inversion, contrast,
            brightness and hue; ``"auto"`` random translation (±10%) and rotation
            (±0.1 turn, keras.io's `RandomRotation(0.1)`); both for image inputs
            only (`keras_transfer.adaptation.source_augmentation_for`).
            ``"default"`` is ``"appearance"`` for images with values in [0, 1] or
            [0, 255] and nothing otherwise: it lifted most methods on 7 of the 8
            image pairs of `benchmarks/results/domain_adaptation_appearance.json`
            and lowered them on the slanted pair. None turns it off; a callable
            (e.g. a `keras.Sequential` of random layers) is used as it is. What ran
            is in ``.selection["source_augmentation"]``. ``"choose"`` (with
            ``method="auto"``) runs `adapt` with ``"default"`` and with
            ``"auto+appearance"`` from the same initial weights and keeps the run
            whose chosen candidate agrees more with its pool (twice the cost; both
            agreements in ``.selection["source_augmentation_choice"]``; measured in
            `benchmarks/results/agreement.json`); on inputs no jitter applies to it
            runs once. Resuming it redoes a finished first run (its backup is
            removed when it completes). Defaults to "default".
        input_shape: tuple or None. Needed when the encoder has no input.
        unfreeze_depth: int, "all", 0 or None. Encoder trainable policy.
        seed: int. Seeds weights, split and shuffling. Defaults to 0.
        callbacks: list or None. Extra Keras callbacks for every ``fit``.
        backup_dir: str or None. Where an interrupted run keeps its state: the
            warm-up and every finished candidate are saved there, the running phase
            resumes from its last finished epoch (`keras.callbacks.BackupAndRestore`).
            Call `adapt` again with the same arguments to resume. When the run
            completes the files it wrote there are removed, and the folder too
            if nothing else is left in it (other files in it are never touched).
            Defaults to None (no backup).
        strategy: None, a strategy name ("auto", "mirrored", "multi_worker"...) or a
            `tf.distribute.Strategy`: every model is built, compiled and trained in
            its scope (`keras_transfer.distribute.maybe_distribute`). Defaults to
            None (one device).
        jit_compile: bool or ``"auto"``. XLA for the training steps; ``"auto"`` is
            Keras's choice (on a GPU, off on a CPU: slower there in every row of
            `benchmarks/results/compiled_steps.json`). Defaults to "auto".
        mixed_precision: str or None. ``"mixed_bfloat16"`` or ``"mixed_float16"``
            computes the backbone in that precision (`precision.set_layer_precision`);
            the bottleneck, heads, discriminator, losses and the returned model's
            outputs stay float32, and ``"mixed_float16"`` adds loss scaling
            (`keras.optimizers.LossScaleOptimizer`). None or ``"float32"``
            leaves the backbone as it is. Defaults to None.
        batchnorm_momentum: float in [0, 1) or None. While `adapt` trains, the
            backbone's trainable BatchNormalization layers with a higher momentum
            use this one (`batchnorm.batchnorm_momentum`); each gets its own back
            at the end. Keras' default 0.99 lags a network's weights by epochs on
            small data, and the warm-up, guard and candidate floor read
            inference-mode accuracy (docs/domain_adaptation.md, "An encoder with
            BatchNormalization"). None keeps the layers' own. Defaults to 0.9.
        target_batchnorm: ``"auto"``, True or False. Once the candidate is
            chosen, re-estimate the moving statistics of the returned model's
            trained BatchNormalization layers on the target inputs (AdaBN after
            adaptation: one pass, no label; `batchnorm.target_batchnorm_statistics`).
            ``"auto"`` does it when the recipe's bottleneck is the only
            BatchNormalization that trained (a backbone without BatchNorm, or
            with frozen pretrained BatchNorm): +1.7 and +0.7 points for "auto"
            on eight pairs; True also re-estimates a backbone's own trainable
            BatchNorm (+1.4 and +0.8 on eight pairs, below the bar set before
            the runs, so not by default); False keeps the moving averages of the
            training batches. ``"auto"`` leaves ``method="source_only"`` alone (a
            baseline that uses no target input; True makes it AdaBN), and
            ``"iwdan"`` / ``"iwcdan"``, alone or in a combination such as
            ``"dann+iwcdan"`` (methods for an imbalanced target, whose
            statistics lowered them 1.2 and 2.4 points on the mean of five
            thinned pairs, `domain_adaptation_label_shift_iw.json`). Frozen (pretrained)
            BatchNorm is never touched; skipped, with a line, under a
            distribution strategy. ``.selection["target_batchnorm"]`` says what
            ran and the held-out source accuracy before it; ``.source_accuracy``
            is the returned model's. With ``method="auto"`` every candidate is
            re-estimated after it trains and before it is scored, so EnsV and
            the reverse-validation veto read the predictions the returned model
            makes (since stop 35: +1.2 points on eight pairs, claim T1), and
            `candidate_model` returns each with the target's statistics. Measured
            in docs/domain_adaptation.md ("BatchNorm statistics re-estimated on
            the target", "Choosing among the candidates as they will predict").
            Defaults to `DEFAULT_TARGET_BATCHNORM`.
        domain_batchnorm: bool. Domain-specific batch statistics while training
            (DSBN, Chang et al. 2019): the source and the target batch go through
            the network separately, so every BatchNormalization layer that trains
            (the bottleneck's, a backbone's trainable ones) normalises each domain
            by its own statistics, from the warm-up on, and keeps moving
            statistics of the source (the warm-up, guard and held-out source
            accuracy read those). After training, each candidate's statistics are
            re-estimated on the target inputs before its target predictions are
            scored, so the candidates are chosen, and the model returned, as they
            will predict (``target_batchnorm`` must not be False; ``"auto"`` and
            True mean the same here; ``method="source_only"`` is left alone).
            Not under a distribution strategy. Defaults to
            `DEFAULT_DOMAIN_BATCHNORM`.
        on_low_agreement: str. What ``method="auto"`` returns when its
            low-agreement warning fires (the chosen candidate agrees with the pool
            on less than `LOW_AGREEMENT` of the target, so no single candidate is
            trustworthy): ``"soup"`` (the default) returns the soup of the
            eligible candidates, as ``selector="soup"`` does, unless its held-out
            source accuracy is below the collapse guard's floor; ``"keep"``
            returns the selector's choice. The warning fires either way, and
            ``selection["on_low_agreement"]`` says what was done. No effect with
            ``selector="ensemble"`` or ``"soup"``, or without a pool of at least
            three candidates. Defaults to "soup".
        verbose: int. 0 silent, 1 phase lines, 2 also Keras progress. Defaults to 1.

    Returns:
        An `AdaptResult`. With three or more candidates, ``.selection["agreement"]``
        is the share of target examples on which the chosen model predicts the
        candidates' mean class; below `LOW_AGREEMENT` (0.9) `adapt` warns
        (``UserWarning``) that its target accuracy is likely low, and
        ``.selection["low_agreement"]`` is True.

    Raises:
        ValueError: A labelled target, an unlabelled source, mismatched shapes, fewer
            than two classes, a source too small to hold out a split, an unknown
            method, or a non-positive ``epochs``.

    Examples:
    ```python
    import numpy as np
    import keras_transfer as kt
    from keras_transfer._backend import keras
    rng = np.random.default_rng(0)
    xs = rng.normal(size=(120, 4)).astype("float32"); ys = (xs[:, 0] > 0).astype(int)
    xt = rng.normal(size=(120, 4)).astype("float32") + 0.5
    encoder = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, "relu")])
    result = kt.adapt(encoder, (xs, ys), xt, method="mcc", epochs=3, verbose=0)
    assert result.method == "mcc" and 0.0 <= result.source_accuracy <= 1.0
    assert result.model.output_shape == (None, 2)
    ```

    References:
        Ganin et al. 2016 (DANN); Jin et al. 2020 (MCC); Sohn et al. 2020 (FixMatch);
        Li et al. 2016 (AdaBN); Saito et al. 2021 (SND).
    """
    if isinstance(source_augmentation, str) and source_augmentation == "choose":
        arguments = dict(locals())
        return _adapt_choosing_augmentation(arguments)
    from keras_transfer.adaptation.scores import SELECTORS

    if on_low_agreement not in LOW_AGREEMENT_ACTIONS:
        raise ValueError(
            f"Expected on_low_agreement in {LOW_AGREEMENT_ACTIONS}. "
            f"Received: on_low_agreement={on_low_agreement!r}"
        )
    if selector not in (*SELECTORS, ENSEMBLE, SOUP):
        raise ValueError(
            f"Expected selector in {(*SELECTORS, ENSEMBLE, SOUP)}. "
            f"Received: selector={selector!r}"
        )
    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(
            f"Expected epochs to be an int >= 1. Received: epochs={epochs}"
        )
    names = resolve_methods(method, candidates)
    xs, ys = labelled_arrays(source)
    xt = unlabelled_array(target)
    ys, one_hot_classes = source_labels(ys, len(xs))
    k = check_inputs(xs, ys, xt, num_classes or one_hot_classes)
    check_finite(xs, "source")
    check_finite(xt, "target")
    if jit_compile not in (True, False, "auto"):
        raise ValueError(
            "Expected jit_compile to be True, False or 'auto'. Received: "
            f"jit_compile={jit_compile!r}"
        )
    if mixed_precision is not None:
        check_policy(mixed_precision)
    check_target_batchnorm(target_batchnorm)
    check_domain_batchnorm(domain_batchnorm, target_batchnorm, strategy)
    xs_tr, ys_tr, xs_val, ys_val = split_source(xs, ys, validation_split, seed)
    say = (lambda text: print(f"[adapt] {text}", flush=True)) if verbose else None
    augmentation = source_augmentation_for(source_augmentation, xs, seed)
    augmentation_name = _augmentation_name(source_augmentation, augmentation)
    if say and augmentation is not None and source_augmentation in SOURCE_AUGMENTATIONS:
        say(
            f"source augmentation: {augmentation_name} "
            "(source_augmentation=None turns it off)"
        )
    elif say and source_augmentation == "default" and is_image_batch(xs):
        say(
            "source augmentation: none (the default appearance jitter needs image "
            f"values in [0, 1] or [0, 255]; these span [{float(np.min(xs)):g}, "
            f"{float(np.max(xs)):g}]; pass a callable to jitter them)"
        )
    keras.utils.set_random_seed(seed)

    from keras_transfer.distribute import maybe_distribute

    with maybe_distribute(strategy), contextlib.ExitStack() as stack:
        shared = DomainAdaptationModel(
            backbone,
            k,
            method=JointForward(name="warmup"),
            input_shape=input_shape,
            unfreeze_depth=unfreeze_depth,
            bottleneck_units=bottleneck_units,
            pooling=pooling,
            domain_batchnorm=domain_batchnorm,
        )
        lowered = stack.enter_context(
            lowered_batchnorm_momentum(shared.encoder, batchnorm_momentum)
        )
        if say and lowered:
            was = ", ".join(sorted({f"{m:g}" for _, m in lowered}))
            say(
                f"encoder: {len(lowered)} trainable BatchNormalization layer(s) use "
                f"momentum {batchnorm_momentum:g} while adapting (their own: {was}, "
                "given back at the end; batchnorm_momentum=None keeps theirs)"
            )
        if mixed_precision not in (None, "float32"):
            set_layer_precision(shared.encoder, mixed_precision, stacklevel=4)
        pairs = augment_source(
            domain_pairs((xs_tr, ys_tr), xt, batch_size, seed=seed),
            augmentation,
        )
        fit_verbose = 2 if verbose >= 2 else 0
        extra_callbacks = list(callbacks or [])

        def make_optimizer(phase="adapt"):
            if optimizer is None:
                lr = learning_rate
                if phase == "adapt" and adaptation_learning_rate is not None:
                    lr = adaptation_learning_rate
                made = keras.optimizers.Adam(lr)
            elif callable(optimizer) and not isinstance(
                optimizer, keras.optimizers.Optimizer
            ):
                made = optimizer()
            else:
                made = optimizer.__class__.from_config(optimizer.get_config())
            if mixed_precision == "mixed_float16" and not isinstance(
                made, keras.optimizers.LossScaleOptimizer
            ):
                made = keras.optimizers.LossScaleOptimizer(made)
            return made

        layers = [shared.encoder, shared.classifier]
        if shared.bottleneck is not None:
            layers.append(shared.bottleneck)
        reverse = method == "auto" and selector in REVERSE_SELECTORS
        reverse_seconds = None
        store = AdaptBackup(backup_dir)
        # the weights adapt starts from: every reverse model of "rv" starts there
        # (kept in the backup, so that a resumed run starts them there too)
        initial_weights = (
            store.starting_weights(lambda: snapshot(layers)) if reverse else None
        )
        # 1. warm-up on the source (shared by every candidate)
        warm = AdaptationController(
            (xs_val, ys_val),
            warmup=warmup,
            num_classes=k,
            verbose=verbose,
            stop_after_warmup=True,
            tolerance=tolerance,
        )
        shared.compile(optimizer=make_optimizer("warmup"), jit_compile=jit_compile)
        if store.done("warmup"):
            warm_history = store.load_phase("warmup", shared, warm)
            if say:
                say("warm-up restored from the backup")
        elif warmup == 0:
            warm_history = keras.callbacks.History()
            warm_history.history, warm_history.epoch = {}, []
            warm.warmup_epochs = 0
            warm.best_warmup_accuracy = accuracy(shared, xs_val, ys_val)
        else:
            if say:
                say(
                    f"warm-up on the source ({len(xs_tr)} train / {len(xs_val)} held out)"
                )
            warm_history = shared.fit(
                pairs,
                epochs=epochs,
                callbacks=[warm, *store.callbacks("warmup", warm), *extra_callbacks],
                verbose=fit_verbose,
                shuffle=False,
            )
            store.save_phase("warmup", shared, warm, warm_history)
        warmup_epochs = len(warm_history.epoch)
        remaining = max(epochs - warmup_epochs, 0)
        warm_weights = snapshot(layers)
        # the random layers' states too: every candidate draws the dropout masks
        # and source jitter a standalone run of it would, whatever ran before it
        warm_seeds = seed_states([*layers, augmentation])
        warm_optimizer = optimizer_state(shared.optimizer)
        warm_accuracy = warm.best_warmup_accuracy

        results: dict[str, dict] = {}
        each_candidate = domain_batchnorm or method == "auto"
        for position, name in enumerate(names, 1):
            if say and remaining:
                of = (
                    f" (candidate {position} of {len(names)})" if len(names) > 1 else ""
                )
                say(f"{name}: {remaining} epochs from the warm-up's weights{of}")
            restore(layers, warm_weights)
            restore_seed_states([*layers, augmentation], warm_seeds)
            keras.utils.set_random_seed(seed + 1)
            # a fresh pipeline per candidate: the same batches as a standalone run
            branch_pairs = augment_source(
                domain_pairs((xs_tr, ys_tr), xt, batch_size, seed=seed + 1),
                augmentation,
            )
            model, history, controller = train_candidate(
                name,
                shared,
                branch_pairs,
                remaining=remaining,
                warm_accuracy=warm_accuracy,
                lambda_max=lambda_max,
                method_kwargs=method_kwargs,
                make_optimizer=make_optimizer,
                jit_compile=jit_compile,
                warm_optimizer=warm_optimizer,
                source_validation=(xs_val, ys_val),
                target=xt,
                tolerance=tolerance,
                callbacks=extra_callbacks,
                num_classes=k,
                verbose=verbose,
                fit_verbose=fit_verbose,
                store=store,
            )
            inference = model.inference_model()
            src_acc = accuracy(inference, xs_val, ys_val)
            # "auto" scores every candidate as it would be returned: with the
            # target's statistics where target_batchnorm applies (always with
            # domain_batchnorm); its held-out source accuracy read its own
            layers_re_estimated, re_estimation_skipped = 0, None
            if each_candidate and method != "source_only":
                layers_re_estimated, re_estimation_skipped = (
                    target_batchnorm_statistics(
                        inference,
                        xt,
                        True if domain_batchnorm else target_batchnorm,
                        backbone=shared.encoder,
                    )
                )
            probabilities = np.asarray(predict_eagerly(inference, xt))
            scores = selection_scores(
                inference,
                model.feature_model(),
                (xs_val, ys_val),
                xt,
                seed=seed,
                target_probabilities=probabilities,
            )
            results[name] = {
                "model": model,
                "inference": inference,
                "history": history,
                "weights": snapshot(layers) if method == "auto" else None,
                "source_accuracy": src_acc,
                "layers_re_estimated": layers_re_estimated,
                "re_estimation_skipped": re_estimation_skipped,
                "scores": scores,
                "probabilities": probabilities,
                "events": [] if controller is None else controller.events,
                "class_weights": next(
                    (
                        part.get_class_weights()
                        for part in class_weighted_parts(model.method)
                    ),
                    None,
                ),
                "class_weight_reliability": next(
                    (
                        getattr(part, "weight_reliability", None)
                        for part in class_weighted_parts(model.method)
                    ),
                    None,
                ),
            }
            if say:
                shown = ", ".join(f"{key} {val:.4f}" for key, val in scores.items())
                say(f"{name}: held-out source accuracy {src_acc:.3f}; {shown}")

        agreement = ensemble_agreement(
            {n: r["probabilities"] for n, r in results.items()}
        )
        for n, r in results.items():
            r["scores"]["ensv"] = agreement[n]
        if reverse:
            if say:
                say(
                    f"reverse validation: {len(results)} fits of {REVERSE_EPOCHS} "
                    f"epochs on the target's pseudo-labels (selector={selector!r})"
                )
            started = time.perf_counter()
            rv = _reverse_scores(
                results,
                layers,
                initial_weights,
                shared,
                xt,
                (
                    LazyArray.join([xs_tr, xs_val]),
                    np.concatenate([ys_tr, ys_val]),
                ),
                make_optimizer,
                seed,
            )
            for n, r in results.items():
                r["scores"]["rv"] = rv[n]
            reverse_seconds = time.perf_counter() - started
        floor = warm.strict_floor() if tolerance is not None else None
        for r in results.values():
            r["eligible"] = floor is None or r["source_accuracy"] >= floor
        # "ensemble" and "soup" return a mean; their ensv_choice labels the history
        ranking = "ensv" if selector in (ENSEMBLE, SOUP) else selector
        chosen = _choose(results, ranking) if method == "auto" else names[0]
        best = results[chosen]
        if best["weights"] is not None:
            restore(layers, best["weights"])
        if say and method == "auto":
            say(_choice_line(results, chosen, ranking))
        trained_source_accuracy = best["source_accuracy"]
        # method="source_only" asked for a baseline that uses no target input, and
        # a class-weighted method (iwdan/iwcdan, alone or in a combination such as
        # "dann+iwcdan") for a target whose classes are imbalanced, whose
        # statistics would re-centre the features on its majority classes: "auto"
        # leaves their statistics alone (True still re-estimates them)
        when = target_batchnorm
        keep_statistics = method == "source_only" or bool(
            class_weighted_parts(getattr(best["model"], "method", None))
        )
        if (keep_statistics and when == "auto") or each_candidate:
            when = False  # every candidate was re-estimated before it was scored
        updated, skipped = target_batchnorm_statistics(
            best["inference"], xt, when, backbone=shared.encoder
        )
        updated = updated or best["layers_re_estimated"]
        skipped = skipped or best["re_estimation_skipped"]
        if updated:
            best["source_accuracy"] = accuracy(best["inference"], xs_val, ys_val)
            if best["weights"] is not None:  # candidate_model(chosen) is this model
                best["weights"] = snapshot(layers)
        if say and (updated or skipped):
            say(
                f"re-estimated the statistics of {updated} trained BatchNormalization "
                f"layer(s) on the {len(xt)} target inputs (held-out source accuracy "
                f"{trained_source_accuracy:.3f} -> {best['source_accuracy']:.3f}; "
                "target_batchnorm=False keeps the training batches' averages)"
                if updated
                else f"target BatchNorm statistics not re-estimated: {skipped}"
            )
        check = agreement_check(agreement, chosen)
        soup_instead = (
            method == "auto"
            and selector not in (ENSEMBLE, SOUP)
            and bool(check["low_agreement"])
            and on_low_agreement == SOUP
        )
        if soup_instead:
            check["message"] += (
                " adapt returns the soup of the candidates (their mean weights: "
                "on_low_agreement='soup') instead of one of them, unless the soup "
                "scores below the collapse guard's floor on the held-out source "
                "(selection['soup_fallback'])."
            )
        if check["message"]:  # stacklevel 3: the user's line, past the decorator
            warnings.warn(f"adapt: {check['message']}", UserWarning, stacklevel=3)
        selection = {
            "requested": method,
            "chosen": chosen,
            "selector": selector if method == "auto" else None,
            "candidates": {
                n: {
                    "scores": r["scores"],
                    "source_accuracy": r["source_accuracy"],
                    "eligible": r["eligible"],
                    "guard_events": r["events"],
                    # IWDAN / IWCDAN: the estimated p_target(y) / p_source(y),
                    # and the share of the last estimate's shift that was kept
                    "class_weights": r["class_weights"],
                    "class_weight_reliability": r["class_weight_reliability"],
                }
                for n, r in results.items()
            },
            "source_augmentation": augmentation_name,
            "encoder_batchnorm": {
                "momentum": batchnorm_momentum if lowered else None,
                "layers": len(lowered),
            },
            "domain_batchnorm": domain_batchnorm,
            "target_batchnorm": {
                "requested": target_batchnorm,
                "layers": updated,
                "skipped": skipped,
                "source_accuracy_trained_statistics": trained_source_accuracy,
            },
            "reverse_validation": (
                {"epochs": REVERSE_EPOCHS, "seconds": reverse_seconds}
                if reverse
                else None
            ),
            "warmup_epochs": warmup_epochs,
            "warmup_source_accuracy": warm_accuracy,
            "source_floor": floor,
            "on_low_agreement": on_low_agreement if soup_instead else None,
            "warmup_events": warm.events,
            "guard_events": best["events"],
            "agreement": check["agreement"],
            "low_agreement": check["low_agreement"],
            "agreement_warning": check["message"],
            "source_warning": None,  # set below, from the model returned
        }
        history = merge_histories([warm_history, best["history"]], best["inference"])
        result = AdaptResult(
            model=best["inference"],
            history=history,
            method=chosen,
            selection=selection,
            source_accuracy=best["source_accuracy"],
            training_model=best["model"],
            target_probabilities={n: r["probabilities"] for n, r in results.items()},
            _candidates={n: r["weights"] for n, r in results.items() if r["weights"]},
            _layers=layers,
            _inference=best["inference"],
            _initial=initial_weights,
        )
        if method == "auto" and selector == ENSEMBLE:
            target_inputs = xt if updated and not each_candidate else None
            result = _as_ensemble(result, results, (xs_val, ys_val), say, target_inputs)
        if method == "auto" and (selector == SOUP or soup_instead):
            # the inputs the candidates' statistics were estimated on: the target
            # where each was re-estimated on it, else the joint training batches'
            if any(r["layers_re_estimated"] for r in results.values()):
                statistics_inputs = xt
            else:
                n = min(len(xs_tr), len(xt))
                joint = LazyArray.join([xs_tr[:n], xt[:n]])
                statistics_inputs = joint[
                    np.random.default_rng(seed).permutation(2 * n)
                ]
            result = _as_soup(
                result,
                results,
                (xs_val, ys_val),
                say,
                statistics_inputs,
                floor,
                selector=selector,
            )
        # on the model returned (an ensemble or a soup is not the chosen candidate);
        # with target statistics its held-out source accuracy can sit low although
        # the network learnt the source (docs: stop 41), so the training batches'
        # statistics count too
        not_learnt = source_check(
            result.source_accuracy, k, trained_statistics=trained_source_accuracy
        )
        result.selection["source_warning"] = not_learnt
        if not_learnt:
            warnings.warn(f"adapt: {not_learnt}", UserWarning, stacklevel=3)
        store.clear()
        return result


def _adapt_choosing_augmentation(arguments: dict) -> AdaptResult:
    """``source_augmentation="choose"``: `adapt` once per setting of
    `CHOOSABLE_AUGMENTATIONS`, from the same initial weights, keeping the run whose
    chosen candidate agrees most with its pool (rule J, docs/domain_adaptation.md)."""
    if arguments["method"] != "auto":
        raise ValueError(
            'source_augmentation="choose" compares the agreement of auto\'s '
            'candidates, so it needs method="auto". Received: '
            f"method={arguments['method']!r}"
        )
    backbone = arguments["backbone"]
    initial = backbone.get_weights() if hasattr(backbone, "get_weights") else None
    say = print if arguments["verbose"] else None
    runs, weights = {}, {}
    for setting in CHOOSABLE_AUGMENTATIONS:
        if initial is not None:  # adapt trains a model or layer in place
            backbone.set_weights(initial)
        call = dict(arguments, source_augmentation=setting)
        if arguments["backup_dir"]:
            call["backup_dir"] = os.path.join(
                arguments["backup_dir"], setting.replace("+", "_")
            )
        if say:
            say(f"[adapt] choose: running auto with source_augmentation={setting!r}")
        with warnings.catch_warnings():  # only the kept run's check is the user's
            warnings.filterwarnings("ignore", message=_AGREEMENT_WARNING)
            warnings.filterwarnings("ignore", message=_SOURCE_WARNING)
            runs[setting] = adapt(**call)
        weights[setting] = runs[setting].training_model.get_weights()
        ran = runs[setting].selection
        if ran["agreement"] is None or ran["source_augmentation"] is None:
            # no pool (fewer than three candidates), or inputs no jitter applies to
            # (features, token ids, images in another range): nothing to compare
            break
    agreement = {s: r.selection["agreement"] for s, r in runs.items()}
    if len(runs) == 1:
        chosen = CHOOSABLE_AUGMENTATIONS[0]
    else:  # ties keep the default
        chosen = max(CHOOSABLE_AUGMENTATIONS, key=lambda s: agreement[s])
    result = runs[chosen]
    # the backbone's layers are shared by both runs: put the kept run's weights back
    result.training_model.set_weights(weights[chosen])
    result.selection["source_augmentation_choice"] = {
        "chosen": chosen,
        "agreement": agreement,
        "rule": "the setting whose chosen candidate agrees most with its pool",
    }
    if say:
        shown = ", ".join(
            f"{s} {'-' if a is None else f'{a:.3f}'}" for s, a in agreement.items()
        )
        say(f"[adapt] choose: kept source_augmentation={chosen!r} ({shown})")
    for key in ("agreement_warning", "source_warning"):
        if result.selection.get(key):  # stacklevel 4: the user's line
            warnings.warn(f"adapt: {result.selection[key]}", UserWarning, stacklevel=4)
    return result


def _as_ensemble(
    result: AdaptResult,
    results: dict,
    source_validation: tuple,
    say: Any,
    target_inputs: Any = None,
) -> AdaptResult:
    """``selector="ensemble"``: the mean of the eligible candidates' probabilities.

    The members are the candidates whose held-out source accuracy stayed above the
    collapse guard's floor (all of them if none did). ``training_model`` and the
    history stay those of EnsV's choice, recorded as ``selection["ensv_choice"]``.
    With ``target_inputs`` (``target_batchnorm`` ran on the chosen candidate),
    every member's BatchNorm statistics are re-estimated on them too.
    """
    members = [n for n, r in results.items() if r["eligible"]] or list(results)
    models = {n: result.candidate_model(n) for n in members}
    if target_inputs is not None:  # target_batchnorm ran: every member gets it
        for member in models.values():
            target_batchnorm_statistics(member, target_inputs, True)
    model = ensemble_model(models)
    src_acc = accuracy(model, *source_validation)
    if say:
        say(
            f"auto returns the ensemble of {', '.join(members)}: held-out source "
            f"accuracy {src_acc:.3f}"
        )
    selection = {
        **result.selection,
        "chosen": ENSEMBLE,
        "selector": ENSEMBLE,
        "members": members,
        "ensv_choice": result.method,
        "ensemble_source_accuracy": src_acc,
    }
    result.history.set_model(model)
    return dataclasses.replace(
        result,
        model=model,
        method=ENSEMBLE,
        selection=selection,
        source_accuracy=src_acc,
    )


def _as_soup(
    result: AdaptResult,
    results: dict,
    source_validation: tuple,
    say: Any,
    statistics_inputs: Any,
    floor: float | None,
    selector: str = SOUP,
) -> AdaptResult:
    """``selector="soup"``: the mean of the eligible candidates' weights.

    The members are the candidates whose held-out source accuracy stayed above the
    collapse guard's floor (all of them if none did), as for ``"ensemble"``; their
    averaged network's trainable BatchNorm statistics are re-estimated on
    ``statistics_inputs`` (`soup_model`). The soup goes into the shared layers, so
    ``model`` and ``training_model`` hold it; the history stays EnsV's choice's. If
    its held-out source accuracy falls below the floor, EnsV's choice is kept and
    ``selection["soup_fallback"]`` says so.
    """
    members = [n for n, r in results.items() if r["eligible"]] or list(results)
    soup = soup_model(
        {n: result.candidate_model(n) for n in members}, statistics_inputs
    )
    src_acc = accuracy(soup, *source_validation)
    fallback = floor is not None and src_acc < floor
    soup_info = {
        "members": members,
        "ensv_choice": result.method,
        "soup_source_accuracy": src_acc,
        "soup_fallback": fallback,
    }
    if fallback:
        if say:
            say(
                f"the soup of {', '.join(members)} scored {src_acc:.3f} on the "
                f"held-out source, below the floor {floor:.3f}: auto keeps "
                f"{result.method!r}"
            )
        return dataclasses.replace(result, selection={**result.selection, **soup_info})
    if say:
        say(
            f"auto returns the soup (mean weights) of {', '.join(members)}: held-out "
            f"source accuracy {src_acc:.3f}"
        )
    inference = result.model
    inference.set_weights(soup.get_weights())  # the layers training_model shares
    return dataclasses.replace(
        result,
        method=SOUP,
        selection={
            **result.selection,
            **soup_info,
            "chosen": SOUP,
            "selector": selector,
        },
        source_accuracy=src_acc,
    )


def _choice_line(results: dict, chosen: str, selector: str) -> str:
    """What ``verbose`` prints for auto's choice: every candidate's score, and the
    ones the collapse guard's floor left out."""
    keys = ("ensv", "rv") if selector == "ensv_rv" else (selector,)
    shown = ", ".join(
        f"{n} "
        + "/".join(f"{r['scores'][key]:.4f}" for key in keys)
        + ("" if r["eligible"] else " (source accuracy below the floor)")
        for n, r in results.items()
    )
    if len(keys) == 1:
        return f"auto chose {chosen!r} by {selector} (higher is better): {shown}"
    return (
        f"auto chose {chosen!r} by ensv among the candidates whose rv held "
        f"(ensv/rv, higher is better): {shown}"
    )


def _reverse_scores(results, layers, initial, shared, xt, source, make_optimizer, seed):
    """``rv`` of every candidate (`reverse_validation_scores`): each reverse model
    is the adapted network at the weights ``adapt`` started from, trained on the
    candidate's target pseudo-labels and scored on the source."""
    return _reverse_of(
        {n: r["probabilities"] for n, r in results.items()},
        layers,
        initial,
        shared,
        xt,
        source,
        make_optimizer,
        seed,
    )


def reverse_scores_again(
    result: AdaptResult,
    probabilities: dict,
    x_target: Any,
    source: tuple,
    *,
    learning_rate: float = 1e-3,
    seed: int = 0,
) -> dict:
    """``rv`` of other target predictions with the reverse models of ``result``.

    For measuring (benchmarks/domain_adaptation.py): the reverse models start from
    the weights the `adapt` call started from, as its own did, and train with Adam
    at ``learning_rate`` (the default recipe's optimizer). ``source`` is the
    labelled source as `adapt` scored it (train split then held-out split).

    Raises:
        ValueError: If ``result`` did not compute reverse validation.
    """
    if result._initial is None:
        raise ValueError(
            "Expected the result of an adapt call that computed reverse validation "
            "(a selector in REVERSE_SELECTORS). Received: one without it"
        )
    shared = result.training_model
    return _reverse_of(
        probabilities,
        result._layers,
        result._initial,
        shared,
        x_target,
        source,
        lambda phase="warmup": keras.optimizers.Adam(learning_rate),
        seed,
    )


def _reverse_of(
    probabilities, layers, initial, shared, xt, source, make_optimizer, seed
):
    from keras_transfer.adaptation.reverse import reverse_validation_scores

    def build():
        restore(layers, initial)
        return shared.inference_model()

    current = snapshot(layers)
    try:
        return reverse_validation_scores(
            probabilities,
            build,
            xt,
            source,
            make_optimizer=lambda: make_optimizer("warmup"),
            seed=seed,
        )
    finally:
        restore(layers, current)


def _augmentation_name(requested: Any, augmentation: Any) -> str | None:
    """How ``.selection`` names the source augmentation that ran."""
    if augmentation is None:
        return None
    if requested in SOURCE_AUGMENTATIONS:
        ran = DEFAULT_SOURCE_AUGMENTATION if requested == "default" else requested
        settings = {}
        if ran != "appearance":
            settings.update(AUTO_AUGMENTATION)
        if ran != "auto":
            settings.update(APPEARANCE_AUGMENTATION)
        label = f"default ({ran})" if requested == "default" else ran
        return f"{label}: " + ", ".join(f"{k} {v}" for k, v in settings.items())
    return getattr(augmentation, "name", None) or type(augmentation).__name__


__all__ = ["AUTO_CANDIDATES", "LOW_AGREEMENT", "AdaptResult", "adapt", "choose"]
