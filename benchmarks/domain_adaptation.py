"""Domain adaptation over several offline pairs: one default recipe, every method.

For each pair (`keras_transfer.datasets.list_domain_pairs()`: four image pairs with
different kinds of shift and the restaurants -> electronics text pair) and each seed,
trains source-only, every method of ``--methods`` (default: every registered alignment
method and "auto") and a train-on-target oracle, all through
``keras_transfer.adapt`` with its defaults: the same recipe, the same encoder for
every image pair (the small CNN `make_encoder`) and no per-pair hyperparameter. The
text encoder is frozen MiniLM-L6 (mean-pooled, computed once per pair) under a
trainable ``Dense(128, relu)`` adapter. No target label is used except by the oracle
and the final test numbers.

Columns per pair and method: target-test accuracy (mean ± std over seeds), % of the
source-only -> oracle gap closed, held-out source accuracy (the pair's source test
split, never seen in training), epoch time and whole-run time vs source-only.

    python benchmarks/domain_adaptation.py                      # everything, 3 seeds
    python benchmarks/domain_adaptation.py --resume             # continue a stopped run
    python benchmarks/domain_adaptation.py --pairs digits_rotnoise --methods dann
    python benchmarks/domain_adaptation.py --quick              # 1 seed, 1 epoch, small
    python benchmarks/domain_adaptation.py --table              # table from the JSON
    python benchmarks/domain_adaptation.py --folder-pair mine photos/ phone_shots/ \
        --output mine.json                                      # a pair of your own

Results: benchmarks/results/domain_adaptation.json, rewritten after every run so that
a stopped run keeps its rows; ``--resume`` skips the (pair, method, seed) rows already
there for the same config.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import write_results  # noqa: E402
from _heldout_pairs import (  # noqa: E402
    BLIND_PAIRS,
    FRESH_PAIRS,
    HELDOUT_PAIRS,
    NOVEL_PAIRS,
    UNSEEN_PAIRS,
    heldout_pair,
)

NAME = "domain_adaptation"
RESULTS = Path(__file__).parent / "results" / f"{NAME}.json"
BASELINES = ("source_only", "oracle")
# rows built from auto's candidates (not single methods): compared with auto
AUTO_VARIANTS = ("ensemble", "distilled")
COMMAND = "python benchmarks/domain_adaptation.py"
# keys of the config that change a row's numbers: --resume refuses a mismatch
_EPS = 1e-6  # float noise must not flip a target at its exact bound
RESULT_KEYS = (
    "epochs",
    "batch_size",
    "size",
    "limit",
    "data_seed",
    "recipe",
    "source_augmentation",
    "variants",
    "mixed_precision",
    "encoder",
    "batchnorm_momentum",
    "target_batchnorm",
    "reverse_validation",
    "domain_batchnorm",
    "target_imbalance",
    "thin_evenly",
)


def make_encoder(input_shape=(32, 32, 3)):
    """The small CNN shared by every image pair (about 60k parameters)."""
    from keras_transfer._backend import keras

    return keras.Sequential(
        [
            keras.Input(input_shape),
            keras.layers.Rescaling(1 / 255.0),
            keras.layers.Conv2D(32, 5, activation="relu", padding="same"),
            keras.layers.MaxPooling2D(),
            keras.layers.Conv2D(48, 5, activation="relu", padding="same"),
            keras.layers.MaxPooling2D(),
            keras.layers.Flatten(),
            keras.layers.Dense(100, activation="relu"),
        ],
        name="encoder",
    )


def make_encoder_bn(input_shape=(32, 32, 3)):
    """The same CNN with BatchNormalization after every convolution and the fc layer.

    ``--encoder cnn_bn``: an encoder of the kind most pretrained image backbones are
    (ResNet, MobileNet, EfficientNet all normalise with BatchNorm), trained here
    from scratch like the plain CNN.
    """
    from keras_transfer._backend import keras

    layers = keras.layers
    return keras.Sequential(
        [
            keras.Input(input_shape),
            layers.Rescaling(1 / 255.0),
            layers.Conv2D(32, 5, padding="same", use_bias=False),
            layers.BatchNormalization(),
            layers.ReLU(),
            layers.MaxPooling2D(),
            layers.Conv2D(48, 5, padding="same", use_bias=False),
            layers.BatchNormalization(),
            layers.ReLU(),
            layers.MaxPooling2D(),
            layers.Flatten(),
            layers.Dense(100, use_bias=False),
            layers.BatchNormalization(),
            layers.ReLU(),
        ],
        name="encoder_bn",
    )


#: ``--encoder``: the image encoder of every image pair.
IMAGE_ENCODERS = {"cnn": make_encoder, "cnn_bn": make_encoder_bn}


def make_text_encoder(features: int):
    """The trainable adapter on frozen MiniLM features shared by every text pair."""
    from keras_transfer._backend import keras

    return keras.Sequential(
        [keras.Input((features,)), keras.layers.Dense(128, activation="relu")],
        name="text_adapter",
    )


# --------------------------------------------------------------------- data
def load_pair(name: str, *, size: int, seed: int, limit: int | None) -> dict:
    """Arrays of one pair: ``xs, ys, xs_test, ys_test, xt, yt, xt_test, yt_test``.

    ``yt`` (target train labels) is used only by the oracle. Text is turned into
    frozen MiniLM features once here.
    """
    from keras_transfer.datasets import domain_pair, domain_pair_info

    unregistered = (
        *HELDOUT_PAIRS,
        *FRESH_PAIRS,
        *UNSEEN_PAIRS,
        *NOVEL_PAIRS,
        *BLIND_PAIRS,
    )
    if name in unregistered:
        info = SimpleNamespace(modality="image", num_classes=10)
        source, target = heldout_pair(name, size=size, seed=seed)
    else:
        info = domain_pair_info(name)
        source, target = domain_pair(name, size=size, seed=seed)
    data = {
        "xs": source.x_train,
        "ys": source.y_train,
        "xs_test": source.x_test,
        "ys_test": source.y_test,
        "xt": target.x_train,
        "yt": target.y_train,
        "xt_test": target.x_test,
        "yt_test": target.y_test,
    }
    if limit:
        data = {k: v[:limit] for k, v in data.items()}
    if info.modality == "text":
        from keras_transfer.text.embeddings import embed

        for key in ("xs", "xs_test", "xt", "xt_test"):
            data[key] = np.asarray(
                embed([str(t) for t in data[key]], "minilm", sequence_length=32),
                "float32",
            )
    data["modality"] = info.modality
    data["num_classes"] = info.num_classes
    return data


def imbalance_target(
    data: dict, ratio: float, seed: int, *, evenly: bool = False
) -> dict:
    """Label shift: the target's classes thinned to fractions 1 ... 1/`ratio`.

    The class kept whole and the order of the rest are drawn from `seed`; the
    fractions fall geometrically (class of rank r keeps ``ratio ** (-r / (K - 1))``
    of its examples), in the unlabelled training target and the labelled target
    test alike, so the test measures the target as it is. The source is untouched.
    `evenly=True` is the control: every class keeps the mean of those fractions
    (about as many target examples, classes balanced).
    """
    rng = np.random.default_rng(7_919 + seed)
    k = int(data["num_classes"])
    order = rng.permutation(k)
    keep = {int(c): ratio ** (-rank / (k - 1)) for rank, c in enumerate(order)}
    if evenly:
        mean = float(np.mean(list(keep.values())))
        keep = dict.fromkeys(keep, mean)
    out = dict(data)
    for x_key, y_key in (("xt", "yt"), ("xt_test", "yt_test")):
        labels = np.asarray(data[y_key])
        chosen = []
        for c in range(k):
            members = np.flatnonzero(labels == c)
            n = max(1, int(round(len(members) * keep[c])))
            chosen.extend(rng.choice(members, n, replace=False).tolist())
        chosen = np.sort(np.asarray(chosen))
        out[x_key], out[y_key] = np.asarray(data[x_key])[chosen], labels[chosen]
    out["target_class_counts"] = np.bincount(out["yt"], minlength=k).tolist()
    return out


# --------------------------------------------------------------- training
def _epoch_timer():
    """A Keras callback recording every epoch's wall time across several fits."""
    from keras_transfer._backend import keras

    class EpochTimer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.times = []

        def on_epoch_begin(self, epoch, logs=None):
            self._start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.times.append(time.perf_counter() - self._start)

    return EpochTimer()


def _recipe():
    """``keras_transfer.adapt`` when present, else a plain fallback (see below)."""
    try:
        from keras_transfer.adaptation import adapt
    except ImportError:
        return _fallback_adapt, "fallback"
    return adapt, f"keras_transfer.adapt@{_code_fingerprint()}"


def _code_fingerprint() -> str:
    """A hash of the adaptation code and the pairs, so ``--resume`` never mixes rows
    trained by two versions of the recipe in one file."""
    import hashlib

    import keras_transfer

    root = Path(keras_transfer.__file__).parent
    files = sorted((root / "adaptation").glob("*.py")) + sorted(
        [*(root / "datasets").glob("*.py"), *(root / "data").glob("pairs.py")]
    )
    digest = hashlib.sha1()
    for f in files:
        digest.update(f.relative_to(root).as_posix().encode())
        digest.update(f.read_bytes())
    return digest.hexdigest()[:12]


def _fallback_adapt(
    encoder, source, target, *, num_classes, method, epochs, seed, callbacks, **_
):
    """Plain DomainAdaptationModel training, for a tree where `adapt` is missing."""
    from keras_transfer._backend import keras
    from keras_transfer.adaptation import DomainAdaptationModel, DomainLambdaScheduler
    from keras_transfer.data import domain_pairs

    if method == "auto":
        raise ValueError(
            "Expected keras_transfer.adapt for method='auto'. Received: the fallback "
            "recipe (keras_transfer.adaptation has no adapt)"
        )
    keras.utils.set_random_seed(seed)
    alignment = None if method == "source_only" else method
    model = DomainAdaptationModel(encoder, num_classes, method=alignment)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    pairs = domain_pairs(source, target, 32, seed=seed)
    callbacks = list(callbacks)
    if alignment is not None:
        callbacks.append(DomainLambdaScheduler())
    history = model.fit(pairs, epochs=epochs, verbose=0, callbacks=callbacks)
    return SimpleNamespace(
        model=model, history=history, method=method, selection={}, source_accuracy=None
    )


def _augmentation_arg(args):
    """``--source-augmentation`` as ``adapt``'s argument ("none" is None)."""
    return None if args.source_augmentation == "none" else args.source_augmentation


def _momentum_arg(args):
    """``--batchnorm-momentum`` as ``adapt``'s argument ("keep" is None)."""
    value = args.batchnorm_momentum
    return None if value == "keep" else float(value)


def _jsonable(value):
    return json.loads(json.dumps(value, default=lambda o: repr(o)))


def _seeded_encoder(data: dict, seed: int, encoder: str = "cnn"):
    """The pair's encoder, its initial weights drawn from ``seed`` (``adapt`` seeds
    only what it builds itself: an encoder built unseeded started from whatever
    state the process was in, so a run's first seed was not reproducible)."""
    from keras_transfer._backend import keras

    keras.utils.set_random_seed(seed)
    if data["modality"] == "text":
        return make_text_encoder(data["xs"].shape[-1])
    return IMAGE_ENCODERS[encoder](data["xs"].shape[1:])


def run_one(data: dict, method: str, *, seed: int, args) -> dict:
    """Trains one (method, seed) on one pair; returns its row (no pair name)."""
    from keras_transfer.adaptation import per_domain_accuracy

    adapt, _ = _recipe()
    encoder = _seeded_encoder(data, seed, args.encoder)
    if method == "oracle":  # labelled target, the same recipe, no adaptation
        source, fit_method = (data["xt"], data["yt"]), "source_only"
    else:
        source, fit_method = (data["xs"], data["ys"]), method
    kwargs = {"num_classes": data["num_classes"], "method": fit_method, "seed": seed}
    if args.epochs is not None:
        kwargs["epochs"] = args.epochs
    if args.batch_size is not None:
        kwargs["batch_size"] = args.batch_size
    if args.source_augmentation is not None:
        kwargs["source_augmentation"] = _augmentation_arg(args)
    if args.mixed_precision is not None:
        kwargs["mixed_precision"] = args.mixed_precision
    if args.batchnorm_momentum is not None:
        kwargs["batchnorm_momentum"] = _momentum_arg(args)
    timer = _epoch_timer()
    kwargs["callbacks"] = [timer]
    if "verbose" in inspect.signature(adapt).parameters:
        kwargs["verbose"] = 0
    start = time.perf_counter()
    result = adapt(encoder, source, data["xt"], **kwargs)
    seconds = time.perf_counter() - start
    acc = per_domain_accuracy(
        result.model,
        {
            "source": (data["xs_test"], data["ys_test"]),
            "target": (data["xt_test"], data["yt_test"]),
        },
    )
    times = timer.times[1:] or timer.times  # the first epoch includes tracing
    return {
        "method": method,
        "seed": seed,
        "target_accuracy": acc["target"],
        "source_accuracy": acc["source"],
        "source_val_accuracy": result.source_accuracy,
        "trained_method": result.method,
        "epochs_run": len(timer.times),
        "seconds_per_epoch": float(np.median(times)) if times else None,
        "seconds": seconds,
        "selection": _jsonable(getattr(result, "selection", None)),
    }


def _reverse_validation(args) -> bool:
    """Whether the shared run scores every candidate by reverse validation."""
    from keras_transfer.adaptation.result import DEFAULT_SELECTOR
    from keras_transfer.adaptation.scores import REVERSE_SELECTORS

    return bool(getattr(args, "reverse_validation", False)) or (
        DEFAULT_SELECTOR in REVERSE_SELECTORS
    )


def _phase_timer():
    """Epoch wall times per model name (the warm-up and each candidate's branch)."""
    from keras_transfer._backend import keras

    class PhaseTimer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.times: dict[str, list] = {}

        def on_epoch_begin(self, epoch, logs=None):
            self._start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.times.setdefault(self.model.name, []).append(
                time.perf_counter() - self._start
            )

    return PhaseTimer()


def run_shared(
    data: dict,
    methods: list[str],
    *,
    seed: int,
    args,
    with_auto: bool = True,
    domain_batchnorm: bool = False,
) -> list[dict]:
    """One ``adapt(method="auto", candidates=methods)`` run: a row per method, plus
    ``auto`` (the default candidates and selector) and ``auto[<selector>]`` rows.

    Every candidate branches from the same warm-up, with its own reseeded data
    pipeline, exactly as ``adapt(method=<name>)`` trains it; ``auto``'s row applies
    ``keras_transfer.adaptation.choose`` (the rule ``adapt(method="auto")`` uses) to
    the default candidates, so no method is trained twice. Target labels are read
    only here, after training, for the test numbers.
    """
    from keras_transfer.adaptation import (
        AUTO_CANDIDATES,
        SELECTORS,
        adapt,
        choose,
        per_domain_accuracy,
    )
    from keras_transfer.adaptation.pipeline import DEFAULT_SELECTOR
    from keras_transfer.adaptation.scores import REVERSE_SELECTORS

    encoder = _seeded_encoder(data, seed, args.encoder)
    # Every candidate row keeps the statistics it trained with (as every results
    # file before stop 33): adapt's default re-estimates the chosen candidate's
    # bottleneck on the target, which --target-batchnorm measures for every
    # candidate side by side (its ``auto>[target_bn]`` row is that default for an
    # encoder without BatchNorm of its own).
    kwargs = {
        "num_classes": data["num_classes"],
        "seed": seed,
        "verbose": 0,
        "target_batchnorm": False,
        # the candidates are the rows; what adapt returns on low agreement (the
        # soup) is the row auto[soup_if_low], measured beside them
        "on_low_agreement": "keep",
    }
    if args.epochs is not None:
        kwargs["epochs"] = args.epochs
    if args.batch_size is not None:
        kwargs["batch_size"] = args.batch_size
    if args.source_augmentation is not None:
        kwargs["source_augmentation"] = _augmentation_arg(args)
    if args.mixed_precision is not None:
        kwargs["mixed_precision"] = args.mixed_precision
    if args.batchnorm_momentum is not None:
        kwargs["batchnorm_momentum"] = _momentum_arg(args)
    # the rv score of every candidate, whenever auto's default needs it (since
    # stop 34) or --reverse-validation asks; every auto row re-chooses below
    reverse = _reverse_validation(args)
    if reverse:
        kwargs["selector"] = "ensv_rv"
    if domain_batchnorm:  # every candidate re-estimated on the target by adapt
        kwargs.update(domain_batchnorm=True, target_batchnorm="auto")
    timer = _phase_timer()
    result = adapt(
        encoder,
        (data["xs"], data["ys"]),
        data["xt"],
        method="auto",
        candidates=methods,
        callbacks=[timer],
        **kwargs,
    )
    selection = result.selection
    reverse_seconds = (selection.get("reverse_validation") or {}).get("seconds") or 0
    warm_times = [
        t
        for name, ts in timer.times.items()
        for t in ts
        if not name.startswith("adapt_")
    ]
    rows, accuracy, models = [], {}, {}
    for name in methods:
        model = models[name] = result.candidate_model(name)
        acc = per_domain_accuracy(
            model,
            {
                "source": (data["xs_test"], data["ys_test"]),
                "target": (data["xt_test"], data["yt_test"]),
            },
        )
        accuracy[name] = acc
        times = timer.times.get(f"adapt_{name}", []) or warm_times
        times = times[1:] or times  # the first epoch includes tracing
        rows.append(
            {
                "method": name,
                "seed": seed,
                "target_accuracy": acc["target"],
                "source_accuracy": acc["source"],
                "source_val_accuracy": selection["candidates"][name]["source_accuracy"],
                "trained_method": name,
                "epochs_run": selection["warmup_epochs"]
                + len(timer.times.get(f"adapt_{name}", [])),
                "seconds_per_epoch": float(np.median(times)) if times else None,
                "seconds": float(
                    np.sum(warm_times) + np.sum(timer.times.get(f"adapt_{name}", []))
                ),
                "scores": selection["candidates"][name]["scores"],
                "guard_events": len(selection["candidates"][name]["guard_events"]),
                "warmup_epochs": selection["warmup_epochs"],
                **_class_weight_fields(data, selection["candidates"][name]),
            }
        )
    auto_sets = {"auto": (AUTO_CANDIDATES, DEFAULT_SELECTOR)} if with_auto else {}
    for sel in SELECTORS if with_auto and not domain_batchnorm else ():
        if sel in REVERSE_SELECTORS and not reverse:
            continue
        auto_sets[f"auto[{sel}]"] = (AUTO_CANDIDATES, sel)
        auto_sets[f"auto_all[{sel}]"] = (methods, sel)
    for label, (cands, sel) in auto_sets.items():
        cands = [c for c in cands if c in methods] or methods
        chosen = choose(
            selection, cands, sel, probabilities=result.target_probabilities
        )
        cost = sum(r["seconds"] for r in rows if r["method"] in cands) - (
            len(cands) - 1
        ) * float(np.sum(warm_times))
        if sel in REVERSE_SELECTORS:  # the reverse fits (of every candidate run)
            cost += reverse_seconds
        rows.append(
            {
                "method": label,
                "seed": seed,
                "target_accuracy": accuracy[chosen]["target"],
                "source_accuracy": accuracy[chosen]["source"],
                "source_val_accuracy": selection["candidates"][chosen][
                    "source_accuracy"
                ],
                "trained_method": chosen,
                "epochs_run": None,
                "seconds_per_epoch": None,
                "seconds": cost,
                "candidates": cands,
                "selector": sel,
                "eligible": {
                    c: selection["candidates"][c]["eligible"] for c in methods
                },
            }
        )
    if domain_batchnorm:
        for row in rows:
            row["method"] += DSBN
        return rows
    if with_auto:
        rows.append(_ensemble_row(data, models, selection, methods, seed, rows))
        rows.append(_distilled_row(data, result, models, methods, seed, rows, kwargs))
    if getattr(args, "target_batchnorm", False):
        rows.extend(_target_batchnorm_rows(data, result, models, methods, seed, rows))
    if getattr(args, "domain_batchnorm", False):
        # the same candidates trained again with domain-specific batch statistics,
        # from the same seeded encoder: rows '<method>[dsbn]' and 'auto[dsbn]'
        rows.extend(
            run_shared(
                data,
                methods,
                seed=seed,
                args=args,
                with_auto=with_auto,
                domain_batchnorm=True,
            )
        )
    return rows


#: The suffixes of ``--target-batchnorm``'s rows: the same trained weights, every
#: BatchNormalization layer's statistics re-estimated in one pass over the target
#: training inputs (``[target_bn]``), or over as many source training inputs mixed
#: with as many target ones (``[mixed_bn]``: the domains the training batches held,
#: so that the change of data can be told apart from the change of estimator).
TARGET_BN, MIXED_BN = "[target_bn]", "[mixed_bn]"
#: The suffix of ``--domain-batchnorm``'s rows: the candidates trained again with
#: ``adapt(domain_batchnorm=True)`` (each domain normalised by its own batch
#: statistics while training; every candidate re-estimated on the target after).
DSBN = "[dsbn]"


def _class_weight_fields(data: dict, candidate: dict) -> dict:
    """IWDAN / IWCDAN rows: the final class weights and how far the target prior
    they imply is from the true one (total variation; read here, never in
    training)."""
    weights = candidate.get("class_weights")
    if weights is None:
        return {}
    k = int(data["num_classes"])
    source = np.bincount(np.asarray(data["ys"]), minlength=k) / len(data["ys"])
    true = np.bincount(np.asarray(data["yt"]), minlength=k) / len(data["yt"])
    implied = np.asarray(weights) * source
    implied = implied / implied.sum()
    return {
        "class_weights": [round(float(w), 4) for w in weights],
        "class_prior_tv": float(0.5 * np.abs(implied - true).sum()),
    }


def _target_batchnorm_rows(data, result, models, methods, seed, rows) -> list[dict]:
    """``--target-batchnorm``: every candidate again with its BatchNormalization
    statistics re-estimated on the unlabelled target training inputs (AdaBN, Li et
    al. 2016, applied after adaptation), and on mixed source and target inputs, side
    by side with the statistics it trained with (the moving averages of mixed source
    and target batches, or of source batches for source-only). No training: a copy
    of each candidate, one pass over the inputs in training mode
    (`keras_transfer.adaptation.adapt_batchnorm`).

    Rows: ``<method>[target_bn]`` and ``<method>[mixed_bn]`` for every candidate;
    ``auto>[target_bn]`` / ``auto>[mixed_bn]``, auto's choice (the ``auto`` row's)
    with those statistics; ``auto[target_bn]``, EnsV re-run on the candidates'
    target-statistics probabilities (the guard's floor as before) with target
    statistics. No target label is read before the test numbers.
    """
    from keras_transfer._backend import keras
    from keras_transfer.adaptation import (
        AUTO_CANDIDATES,
        adapt_batchnorm,
        choose,
        per_domain_accuracy,
    )
    from keras_transfer.adaptation.predict import predict_eagerly

    selection = result.selection
    n = min(len(data["xs"]), len(data["xt"]))
    mixed = np.concatenate([np.asarray(data["xs"][:n]), np.asarray(data["xt"][:n])])
    mixed = mixed[np.random.default_rng(seed).permutation(len(mixed))]
    inputs = {TARGET_BN: np.asarray(data["xt"]), MIXED_BN: mixed}
    out, accuracy, probabilities = [], {}, {}
    base = {r["method"]: r for r in rows}
    for suffix, x in inputs.items():
        for name in methods:
            model = keras.models.clone_model(models[name])
            model.set_weights(models[name].get_weights())
            updated = adapt_batchnorm(model, x)
            if suffix == TARGET_BN:
                probabilities[name] = np.asarray(predict_eagerly(model, data["xt"]))
            acc = accuracy[name + suffix] = per_domain_accuracy(
                model,
                {
                    "source": (data["xs_test"], data["ys_test"]),
                    "target": (data["xt_test"], data["yt_test"]),
                },
            )
            out.append(
                {
                    **base[name],
                    "method": name + suffix,
                    "target_accuracy": acc["target"],
                    "source_accuracy": acc["source"],
                    "trained_statistics_target_accuracy": base[name]["target_accuracy"],
                    "trained_statistics_source_accuracy": base[name]["source_accuracy"],
                    "batchnorm_layers_updated": updated,
                }
            )
    cands = [c for c in AUTO_CANDIDATES if c in methods] or list(methods)
    auto = base.get("auto")
    picks = [
        ("auto" + TARGET_BN, TARGET_BN, "ensv on target statistics"),
    ]
    if auto is not None:
        picks += [
            ("auto>" + TARGET_BN, TARGET_BN, auto["trained_method"]),
            ("auto>" + MIXED_BN, MIXED_BN, auto["trained_method"]),
        ]
    for label, suffix, chosen in picks:
        if suffix == TARGET_BN and label == "auto" + TARGET_BN:
            chosen = choose(selection, cands, "ensv", probabilities=probabilities)
        acc = accuracy[chosen + suffix]
        out.append(
            {
                "method": label,
                "seed": seed,
                "target_accuracy": acc["target"],
                "source_accuracy": acc["source"],
                "source_val_accuracy": selection["candidates"][chosen][
                    "source_accuracy"
                ],
                "trained_method": chosen,
                "epochs_run": None,
                "seconds_per_epoch": None,
                "seconds": (auto or base[chosen])["seconds"],
                "candidates": cands,
                "selector": "ensv",
            }
        )
    if auto is not None and getattr(result, "_initial", None) is not None:
        out.append(
            _ensv_rv_on_target_statistics(
                data, result, cands, probabilities, accuracy, auto, seed
            )
        )
    if auto is not None:
        ensv_pick = next(r for r in out if r["method"] == "auto" + TARGET_BN)
        soup = _soup_row(data, models, selection, methods, seed, auto, ensv_pick)
        out.append(soup)
        default = next((r for r in out if r["method"] == AUTO_ENSV_RV_TARGET_BN), None)
        if default is not None:
            out.append(_soup_if_low_row(default, soup))
    return out


#: ``--target-batchnorm``'s row of the rule "the default's choice, or the soup
#: when adapt's low-agreement warning fires" (the chosen candidate's EnsV
#: agreement below `keras_transfer.adaptation.LOW_AGREEMENT`).
SOUP_IF_LOW_ROW = "auto[soup_if_low]"


def _soup_if_low_row(default: dict, soup: dict) -> dict:
    """``auto[soup_if_low]``: the ``auto[ensv_rv@target_bn]`` row (today's
    default) when its chosen candidate agrees with the pool on at least
    `LOW_AGREEMENT` of the target, else the ``soup[target_bn]`` row. No target
    label is read to choose; the seconds are the default's plus the soup's pass."""
    from keras_transfer.adaptation import LOW_AGREEMENT

    low = default["agreement"] < LOW_AGREEMENT
    # a soup below the guard's floor is not returned: adapt keeps its choice
    picked = soup if low and not soup["soup_fallback"] else default
    extra = max(soup["seconds"] - soup.get("seconds_without_soup", soup["seconds"]), 0)
    return {
        **picked,
        "method": SOUP_IF_LOW_ROW,
        "agreement": default["agreement"],
        "low_agreement": low,
        "trained_method": picked["trained_method"]
        if low
        else default["trained_method"],
        "seconds": default["seconds"] + (extra if low else 0.0),
        "selector": "ensv_rv, soup below LOW_AGREEMENT",
    }


#: ``--target-batchnorm``'s row of ``adapt(selector="soup")``: the mean of the
#: weights of `auto`'s eligible candidates (the ensemble row's members), its
#: BatchNorm statistics re-estimated on the target (`soup_model`, as ``adapt``
#: does when it re-estimated each candidate on the target).
SOUP_ROW = "soup" + TARGET_BN


def _soup_row(data, models, selection, methods, seed, auto, ensv_pick) -> dict:
    """The ``soup[target_bn]`` row: `keras_transfer.adaptation.soup_model` over
    the ensemble row's members, re-estimated on the target training inputs; if its
    held-out source accuracy (the split ``adapt`` scored) is below the collapse
    guard's floor, ``adapt`` keeps EnsV's choice on target statistics, and so
    does the row (``soup_fallback``). Costs no training: the auto row's seconds
    without its reverse fits, plus the averaging and the statistics pass."""
    from keras_transfer.adaptation import per_domain_accuracy, soup_model, split_source
    from keras_transfer.adaptation.result import accuracy

    _, eligible = _ensemble_members(selection, methods)
    started = time.perf_counter()
    soup = soup_model({c: models[c] for c in eligible}, np.asarray(data["xt"]))
    seconds = time.perf_counter() - started
    ys = np.asarray(data["ys"]).reshape(-1).astype("int64")
    _, _, xs_val, ys_val = split_source(data["xs"], ys, 0.15, seed)
    val = accuracy(soup, xs_val, ys_val)  # as adapt's _as_soup reads it
    floor = selection.get("source_floor")
    fallback = floor is not None and val < floor
    if fallback:
        return {
            **ensv_pick,
            "method": SOUP_ROW,
            "soup_fallback": True,
            "members": eligible,
            "soup_source_val_accuracy": val,
        }
    acc = per_domain_accuracy(
        soup,
        {
            "source": (data["xs_test"], data["ys_test"]),
            "target": (data["xt_test"], data["yt_test"]),
        },
    )
    return {
        **auto,
        "method": SOUP_ROW,
        "target_accuracy": acc["target"],
        "source_accuracy": acc["source"],
        "source_val_accuracy": val,
        "trained_method": "+".join(eligible),
        # the auto row's training, without its reverse fits (soup needs none)
        "seconds": auto["seconds"]
        - ((selection.get("reverse_validation") or {}).get("seconds") or 0)
        + seconds,
        "seconds_without_soup": auto["seconds"]
        - ((selection.get("reverse_validation") or {}).get("seconds") or 0),
        "selector": "soup",
        "members": eligible,
        "soup_fallback": False,
    }


#: ``--target-batchnorm``'s row that chooses as ``adapt``'s default selector does
#: (EnsV among the candidates whose reverse-validation score is at least half the
#: best), but on every candidate's predictions with target statistics, the ones
#: the returned model makes: EnsV recomputed on them and ``rv`` refitted on them.
AUTO_ENSV_RV_TARGET_BN = "auto[ensv_rv@target_bn]"


def _ensv_rv_on_target_statistics(
    data, result, cands, probabilities, accuracy, auto, seed
) -> dict:
    """The ``auto[ensv_rv@target_bn]`` row: `choose` with ``"ensv_rv"`` on the
    candidates' target-statistics predictions (EnsV over them; ``rv`` from
    reverse models trained on their argmax, started where ``adapt``'s were, on
    the source ``adapt`` scored), the chosen candidate returned with target
    statistics. The extra reverse fits are added to the row's seconds."""
    from keras_transfer.adaptation import choose, ensemble_agreement, split_source
    from keras_transfer.adaptation.pipeline import reverse_scores_again

    ys = np.asarray(data["ys"]).reshape(-1).astype("int64")
    xs_tr, ys_tr, xs_val, ys_val = split_source(data["xs"], ys, 0.15, seed)
    source = (np.concatenate([xs_tr, xs_val]), np.concatenate([ys_tr, ys_val]))
    mine = {n: probabilities[n] for n in cands}
    started = time.perf_counter()
    rv = reverse_scores_again(result, mine, data["xt"], source, seed=seed)
    seconds = time.perf_counter() - started
    agreement = ensemble_agreement(mine)
    selection = dict(result.selection)
    selection["candidates"] = {
        n: {
            **c,
            "scores": {
                **c["scores"],
                **({"rv": rv[n], "ensv": agreement[n]} if n in mine else {}),
            },
        }
        for n, c in result.selection["candidates"].items()
    }
    chosen = choose(selection, cands, "ensv_rv", probabilities=mine)
    acc = accuracy[chosen + TARGET_BN]
    return {
        **auto,
        "method": AUTO_ENSV_RV_TARGET_BN,
        "target_accuracy": acc["target"],
        "source_accuracy": acc["source"],
        "source_val_accuracy": result.selection["candidates"][chosen][
            "source_accuracy"
        ],
        "trained_method": chosen,
        "seconds": auto["seconds"] + seconds,
        "candidates": cands,
        "selector": "ensv_rv@target_bn",
        "rv_target_bn": {n: float(v) for n, v in rv.items()},
        # the chosen candidate's EnsV agreement with the pool: what adapt's
        # low-agreement warning reads (selection["agreement"])
        "agreement": float(agreement[chosen]),
    }


def _ensemble_members(selection: dict, methods: list) -> tuple[list, list]:
    """`auto`'s default candidates among ``methods`` (all of them if none is), and
    those whose held-out source accuracy held (all members if none did)."""
    from keras_transfer.adaptation import AUTO_CANDIDATES

    members = [c for c in AUTO_CANDIDATES if c in methods] or list(methods)
    eligible = [c for c in members if selection["candidates"][c]["eligible"]] or members
    return members, eligible


def _ensemble_row(data, models, selection, methods, seed, rows) -> dict:
    """``ensemble``: the mean of the class probabilities of `auto`'s default
    candidates whose held-out source accuracy held (all of them if none did): the
    ensemble that the EnsV selector scores each candidate against, returned itself
    instead of the candidate closest to it. Costs no training; its inference costs
    one forward pass per member."""
    from keras_transfer.adaptation.predict import predict_eagerly

    members, eligible = _ensemble_members(selection, methods)
    accuracy = {}
    for domain, x, y in (
        ("source", data["xs_test"], data["ys_test"]),
        ("target", data["xt_test"], data["yt_test"]),
    ):
        mean = np.mean([np.asarray(predict_eagerly(models[c], x)) for c in eligible], 0)
        accuracy[domain] = float(np.mean(mean.argmax(-1) == np.asarray(y).reshape(-1)))
    return {
        "method": "ensemble",
        "seed": seed,
        "target_accuracy": accuracy["target"],
        "source_accuracy": accuracy["source"],
        "source_val_accuracy": None,
        "trained_method": "+".join(eligible),
        "epochs_run": None,
        "seconds_per_epoch": None,
        # the auto row's cost: every member trained from one warm-up
        "seconds": next(r["seconds"] for r in rows if r["method"] == "auto"),
        "candidates": members,
        "members": eligible,
    }


def _distilled_row(data, result, models, methods, seed, rows, kwargs) -> dict:
    """``distilled`` (stop 27's rule, `benchmarks/_distill.py`): `auto`'s (EnsV's)
    choice trained further with `distill_ensemble` on the source training split (the
    one `adapt` split off) and the ensemble row's mean probabilities on the target
    training inputs, with `adapt`'s epochs, batch size and learning rate rule; EnsV's
    choice itself when the student's held-out source accuracy falls below the
    collapse guard's floor. Its claims failed, so it is a benchmark row, not an
    `adapt` selector (docs/domain_adaptation.md)."""
    from _distill import (
        DISTILL_LEARNING_RATE_FACTOR,
        distill_ensemble,
        distill_epochs,
    )

    from keras_transfer.adaptation import adapt, per_domain_accuracy, split_source
    from keras_transfer.adaptation.result import accuracy

    defaults = {k: p.default for k, p in inspect.signature(adapt).parameters.items()}
    setting = {**defaults, **kwargs}
    selection = result.selection
    _, eligible = _ensemble_members(selection, methods)
    auto = next(r for r in rows if r["method"] == "auto")
    teacher = np.mean([result.target_probabilities[c] for c in eligible], axis=0)
    ys = np.asarray(data["ys"]).reshape(-1).astype("int64")
    xs_tr, ys_tr, xs_val, ys_val = split_source(
        data["xs"], ys, setting["validation_split"], seed
    )
    start = time.perf_counter()
    student = distill_ensemble(
        result.candidate_model(auto["trained_method"]),
        (xs_tr, ys_tr),
        data["xt"],
        teacher,
        epochs=distill_epochs(setting["epochs"]),
        batch_size=setting["batch_size"],
        learning_rate=setting["learning_rate"] * DISTILL_LEARNING_RATE_FACTOR,
        seed=seed,
    )
    seconds = time.perf_counter() - start
    source_val = accuracy(student, xs_val, ys_val)
    floor = selection["warmup_source_accuracy"] - setting["tolerance"]
    fallback = bool(source_val < floor)
    model = models[auto["trained_method"]] if fallback else student
    acc = per_domain_accuracy(
        model,
        {
            "source": (data["xs_test"], data["ys_test"]),
            "target": (data["xt_test"], data["yt_test"]),
        },
    )
    return {
        "method": "distilled",
        "seed": seed,
        "target_accuracy": acc["target"],
        "source_accuracy": acc["source"],
        "source_val_accuracy": source_val,
        "trained_method": auto["trained_method"] + "+distilled",
        "epochs_run": distill_epochs(setting["epochs"]),
        "seconds_per_epoch": None,
        "seconds": auto["seconds"] + seconds,
        "distill_seconds": seconds,
        "distill_fallback": fallback,
        "members": eligible,
    }


# ---------------------------------------------------------------- summary
def summarize(runs: list[dict]) -> dict:
    """Per pair and method: means, std, gap closed and time ratios (from the rows)."""
    out: dict[str, dict] = {}
    for row in runs:
        out.setdefault(row["pair"], {}).setdefault(row["method"], []).append(row)
    summary = {}
    for pair, methods in out.items():
        stats = {}
        for method, rows in methods.items():
            t = [r["target_accuracy"] for r in rows]
            per_epoch = [r["seconds_per_epoch"] for r in rows if r["seconds_per_epoch"]]
            stats[method] = {
                "seeds": sorted(r["seed"] for r in rows),
                "target_accuracy_mean": float(np.mean(t)),
                "target_accuracy_std": float(np.std(t)),
                "source_accuracy_mean": float(
                    np.mean([r["source_accuracy"] for r in rows])
                ),
                "seconds_per_epoch": float(np.mean(per_epoch)) if per_epoch else None,
                "seconds": float(np.mean([r["seconds"] for r in rows])),
                "trained_methods": sorted({str(r["trained_method"]) for r in rows}),
            }
        base, oracle = stats.get("source_only"), stats.get("oracle")
        for row in stats.values():
            row["gap_closed_percent"] = None
            row["epoch_time_ratio"] = row["run_time_ratio"] = None
            if base and oracle:
                gap = oracle["target_accuracy_mean"] - base["target_accuracy_mean"]
                if gap > 1e-9:  # an oracle no better than source-only: no gap
                    gain = row["target_accuracy_mean"] - base["target_accuracy_mean"]
                    row["gap_closed_percent"] = 100.0 * gain / gap
            if base and base["seconds_per_epoch"] and row["seconds_per_epoch"]:
                row["epoch_time_ratio"] = (
                    row["seconds_per_epoch"] / base["seconds_per_epoch"]
                )
            if base:
                row["run_time_ratio"] = row["seconds"] / base["seconds"]
        summary[pair] = stats
    return summary


def _fmt(value, spec, suffix=""):
    return "–" if value is None else f"{value:{spec}}{suffix}"


def _display(path: str | Path) -> str:
    """``path`` relative to the repository root when it lies inside it."""
    root = Path(__file__).resolve().parent.parent
    try:
        return str(Path(path).resolve().relative_to(root))
    except ValueError:
        return str(path)


def markdown_table(results: dict, path: str | Path = RESULTS) -> str:
    """The markdown table of a results payload, with the command and file named."""
    cfg = results.get("config", {})
    lines = [
        "| pair | method | target acc (mean ± std) | gap closed | held-out source acc "
        "| epoch time × | run time × |",
        "|---|---|---|---|---|---|---|",
    ]
    for pair, stats in results.get("summary", {}).items():
        order = (
            ["source_only"]
            + [m for m in stats if m not in BASELINES and "[" not in m]
            + ["oracle"]
        )
        for method in [m for m in order if m in stats]:
            s = stats[method]
            label = method
            if method == "auto" and s["trained_methods"]:
                label = f"auto (→ {', '.join(s['trained_methods'])})"
            gap = s["gap_closed_percent"] if method not in BASELINES else None
            lines.append(
                f"| {pair} | {label} | {s['target_accuracy_mean']:.3f} ± "
                f"{s['target_accuracy_std']:.3f} | {_fmt(gap, '.0f', '%')} | "
                f"{s['source_accuracy_mean']:.3f} | "
                f"{_fmt(s['epoch_time_ratio'], '.2f')} | "
                f"{_fmt(s['run_time_ratio'], '.2f')} |"
            )
    seeds = cfg.get("seeds")
    epochs = cfg.get("epochs") or "recipe default"
    lines.append("")
    lines.append(
        f"Recipe: `{cfg.get('recipe', '?')}` defaults, {seeds} seed(s), epochs: "
        f"{epochs}. File: `{_display(path)}`. Command: "
        f"`{results.get('command', COMMAND)}`."
    )
    return "\n".join(lines)


def _change_row(pair: str, label: str, a: dict, b: dict) -> str:
    """``| pair | label | target a → b | change | held-out source a → b |``."""
    ta, tb = a["target_accuracy_mean"], b["target_accuracy_mean"]
    return (
        f"| {pair} | {label} | {ta:.3f} → {tb:.3f} | {100 * (tb - ta):+.1f} | "
        f"{a['source_accuracy_mean']:.3f} → {b['source_accuracy_mean']:.3f} |"
    )


def _mean_rows(pairs_of: dict) -> list[str]:
    """`_change_row`'s columns averaged over the pairs, one line per method."""
    lines = []
    for name, both in pairs_of.items():
        mean = {
            side: {
                key: float(np.mean([pair[i][key] for pair in both]))
                for key in ("target_accuracy_mean", "source_accuracy_mean")
            }
            for i, side in enumerate(("a", "b"))
        }
        lines.append(
            _change_row(f"mean of {len(both)} pairs", name, mean["a"], mean["b"])
        )
    return lines


def target_batchnorm_table(results: dict) -> str:
    """``--target-batchnorm``'s rows next to the ones they were copied from: target
    and held-out source accuracy with the trained statistics → with target
    statistics (mean over seeds), per pair and over the pairs. Empty without them."""
    summary = results.get("summary", {})
    suffixes = (TARGET_BN, MIXED_BN)
    if not any(m.endswith(suffixes) for s in summary.values() for m in s):
        return ""
    lines = [
        "| pair | method | target acc: trained → re-estimated statistics | change "
        "| held-out source acc: trained → re-estimated statistics |",
        "|---|---|---|---|---|",
    ]
    pairs_of: dict[str, list] = {}
    for pair, stats in summary.items():
        for method in stats:
            if not method.endswith(suffixes):
                continue
            before = method[: method.index("[")]
            before = "auto" if before in ("auto>", "auto") else before
            if before not in stats:
                continue
            a, b = stats[before], stats[method]
            pairs_of.setdefault(method, []).append((a, b))
            label = method
            if method.startswith("auto"):
                label = f"{method} (→ {', '.join(b['trained_methods'])})"
            lines.append(_change_row(pair, label, a, b))
    lines.extend(_mean_rows(pairs_of))
    return "\n".join(lines)


def ensv_rv_target_table(results: dict) -> str:
    """``auto[ensv_rv@target_bn]`` next to ``auto>[target_bn]`` (the default's
    model: chosen on trained-statistics predictions, returned with target
    statistics) and the best single method with target statistics, mean over
    seeds, per pair and over the pairs. Empty without the rows."""
    summary = results.get("summary", {})
    label = AUTO_ENSV_RV_TARGET_BN
    if not any(label in s for s in summary.values()):
        return ""
    lines = [
        "| pair | best single method (target statistics) | `auto>[target_bn]`, chosen on "
        "trained statistics "
        f"(picks) | `{label}` (picks) | change |",
        "|---|---|---|---|---|",
    ]
    both = []
    for pair, stats in summary.items():
        if label not in stats or "auto>" + TARGET_BN not in stats:
            continue
        a, b = stats["auto>" + TARGET_BN], stats[label]
        singles = {
            m[: -len(TARGET_BN)]: r["target_accuracy_mean"]
            for m, r in stats.items()
            if m.endswith(TARGET_BN)
            and not m.startswith("auto")
            and m[: -len(TARGET_BN)] not in BASELINES
        }
        best = max(singles, key=singles.get) if singles else None
        both.append((a["target_accuracy_mean"], b["target_accuracy_mean"]))
        lines.append(
            f"| {pair} | {best} {singles.get(best, float('nan')):.3f} | "
            f"{a['target_accuracy_mean']:.3f} ({', '.join(a['trained_methods'])}) | "
            f"{b['target_accuracy_mean']:.3f} ({', '.join(b['trained_methods'])}) | "
            f"{100 * (b['target_accuracy_mean'] - a['target_accuracy_mean']):+.1f} |"
        )
    if both:
        a = float(np.mean([x for x, _ in both]))
        b = float(np.mean([y for _, y in both]))
        lines.append(
            f"| mean of {len(both)} pairs | | {a:.3f} | {b:.3f} | {100 * (b - a):+.1f} |"
        )
    return "\n".join(lines)


def soup_table(results: dict) -> str:
    """``soup[target_bn]`` (``adapt(selector="soup")``) and ``auto[soup_if_low]``
    (the soup only where the low-agreement warning fires) next to today's default
    (``auto[ensv_rv@target_bn]``, with its chosen candidate's agreement), the
    ensemble of the soup's members and the best single method with target
    statistics: target accuracy, mean over seeds, per pair and over the pairs,
    and the soup's held-out source accuracy against source-only's. Empty without
    the rows."""
    summary = results.get("summary", {})
    if not any(SOUP_ROW in s for s in summary.values()):
        return ""
    lines = [
        "| pair | best single method (target statistics) | default `auto` (picks) | "
        "agreement | ensemble | soup | soup − default | soup if low | "
        "soup if low − default | soup's held-out source (source-only's) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    cols = []
    for pair, stats in summary.items():
        if SOUP_ROW not in stats or AUTO_ENSV_RV_TARGET_BN not in stats:
            continue
        a, b = stats[AUTO_ENSV_RV_TARGET_BN], stats[SOUP_ROW]
        c = stats.get(SOUP_IF_LOW_ROW, a)
        singles = {
            m[: -len(TARGET_BN)]: r["target_accuracy_mean"]
            for m, r in stats.items()
            if m.endswith(TARGET_BN)
            and not m.startswith(("auto", "soup"))
            and m[: -len(TARGET_BN)] not in BASELINES
        }
        best = max(singles, key=singles.get) if singles else None
        ens = stats.get("ensemble", {}).get("target_accuracy_mean")
        src = stats.get("source_only", {}).get("source_accuracy_mean")
        agree = [
            r["agreement"]
            for r in results.get("runs", [])
            if r.get("pair") == pair and r["method"] == AUTO_ENSV_RV_TARGET_BN
        ]
        ta, tb, tc = (x["target_accuracy_mean"] for x in (a, b, c))
        cols.append((ta, tb, tc, ens))
        lines.append(
            f"| {pair} | {best} {singles.get(best, float('nan')):.3f} | "
            f"{ta:.3f} ({', '.join(a['trained_methods'])}) | "
            f"{' / '.join(f'{x:.2f}' for x in agree) or '–'} | {_fmt(ens, '.3f')} | "
            f"{tb:.3f} | {100 * (tb - ta):+.1f} | {tc:.3f} | {100 * (tc - ta):+.1f} | "
            f"{b['source_accuracy_mean']:.3f} ({_fmt(src, '.3f')}) |"
        )
    if cols:
        ta, tb, tc = (float(np.mean([x[i] for x in cols])) for i in range(3))
        ens = [x[3] for x in cols if x[3] is not None]
        mean_ens = float(np.mean(ens)) if len(ens) == len(cols) else None
        lines.append(
            f"| mean of {len(cols)} pairs | | {ta:.3f} | | {_fmt(mean_ens, '.3f')} | "
            f"{tb:.3f} | {100 * (tb - ta):+.1f} | {tc:.3f} | {100 * (tc - ta):+.1f} | |"
        )
    return "\n".join(lines)


def domain_batchnorm_table(results: dict) -> str:
    """``--domain-batchnorm``'s rows next to the default's: each candidate's target
    accuracy with the statistics re-estimated on the target after training on joint
    batches (``[target_bn]``; for ``auto`` the ``auto>[target_bn]`` row, what
    ``adapt``'s default returns for an encoder without BatchNorm of its own) →
    trained with domain-specific batch statistics (``[dsbn]``), mean over seeds,
    per pair and over the pairs, with the held-out source accuracy. Empty without
    them."""
    summary = results.get("summary", {})
    if not any(m.endswith(DSBN) for s in summary.values() for m in s):
        return ""
    lines = [
        "| pair | method | target acc: default → domain-specific BN | change "
        "| held-out source acc: default → domain-specific BN |",
        "|---|---|---|---|---|",
    ]
    pairs_of: dict[str, list] = {}
    for pair, stats in summary.items():
        for method in stats:
            if not method.endswith(DSBN):
                continue
            name = method[: -len(DSBN)]
            before = "auto>" + TARGET_BN if name == "auto" else name + TARGET_BN
            if before not in stats:
                continue
            a, b = stats[before], stats[method]
            pairs_of.setdefault(name, []).append((a, b))
            label = name
            if name == "auto":
                label = (
                    f"auto (→ {', '.join(a['trained_methods'])} / "
                    f"{', '.join(b['trained_methods'])})"
                )
            lines.append(_change_row(pair, label, a, b))
    lines.extend(_mean_rows(pairs_of))
    return "\n".join(lines)


def selector_table(results: dict) -> str:
    """How well each unsupervised selector picks, per pair: the target accuracy of
    its choice among auto's default candidates (``auto[sel]``) and among every
    method (``auto_all[sel]``), vs the best single method (mean over seeds)."""
    from keras_transfer.adaptation import SELECTORS

    lines = [
        "| pair | best single method | "
        + " | ".join(f"{s}: default / all candidates" for s in SELECTORS)
        + " |",
        "|---|---|" + "---|" * len(SELECTORS),
    ]
    for pair, stats in results.get("summary", {}).items():
        singles = {
            m: r
            for m, r in stats.items()
            if m not in BASELINES
            and not m.startswith("auto")
            and m not in AUTO_VARIANTS
        }
        if not singles:
            continue
        best = max(singles, key=lambda m: singles[m]["target_accuracy_mean"])
        cells = []
        for sel in SELECTORS:
            a = stats.get(f"auto[{sel}]", {}).get("target_accuracy_mean")
            b = stats.get(f"auto_all[{sel}]", {}).get("target_accuracy_mean")
            cells.append(f"{_fmt(a, '.3f')} / {_fmt(b, '.3f')}")
        lines.append(
            f"| {pair} | {best} {singles[best]['target_accuracy_mean']:.3f} | "
            + " | ".join(cells)
            + " |"
        )
    return "\n".join(lines)


def _rank(values: list[float]) -> np.ndarray:
    order = np.argsort(values, kind="stable")
    ranks = np.empty(len(values))
    ranks[order] = np.arange(len(values))
    for v in set(values):  # ties share their mean rank
        tied = [i for i, x in enumerate(values) if x == v]
        ranks[tied] = ranks[tied].mean()
    return ranks


def spearman(a: list[float], b: list[float]) -> float | None:
    """Spearman rank correlation (None when either side is constant)."""
    ra, rb = _rank(list(a)), _rank(list(b))
    if len(a) < 3 or ra.std() == 0 or rb.std() == 0:
        return None
    return float(np.corrcoef(ra, rb)[0, 1])


def agreement_table(results: dict) -> str:
    """How well each selector's score ranks the trained models like the target
    accuracy does: Spearman correlation over every model of one (pair, seed) run
    (source-only and each method; 1 = same order, 0 = unrelated, -1 = reversed),
    averaged over seeds. Target labels are read here only, after training."""
    from keras_transfer.adaptation import SELECTORS

    rows: dict = {}
    for r in results.get("runs", []):
        if r.get("scores") and not r["method"].startswith("auto"):
            if r["method"] != "oracle":
                rows.setdefault((r["pair"], r["seed"]), []).append(r)
    per_pair: dict = {}
    for (pair, _), runs in rows.items():
        for sel in SELECTORS:
            if not all(sel in r["scores"] for r in runs):
                continue  # a file from before the selector existed
            rho = spearman(
                [r["target_accuracy"] for r in runs],
                [r["scores"][sel] for r in runs],
            )
            if rho is not None:
                per_pair.setdefault(pair, {}).setdefault(sel, []).append(rho)
    lines = [
        "| pair | " + " | ".join(SELECTORS) + " |",
        "|---|" + "---|" * len(SELECTORS),
    ]
    means: dict = {s: [] for s in SELECTORS}
    for pair, by_sel in per_pair.items():
        cells = []
        for sel in SELECTORS:
            vals = by_sel.get(sel)
            value = float(np.mean(vals)) if vals else None
            if value is not None:
                means[sel].append(value)
            cells.append(_fmt(value, "+.2f"))
        lines.append(f"| {pair} | " + " | ".join(cells) + " |")
    lines.append(
        "| mean over pairs | "
        + " | ".join(
            _fmt(float(np.mean(v)) if v else None, "+.2f") for v in means.values()
        )
        + " |"
    )
    return "\n".join(lines)


def _auto_configs(methods: list[str]) -> list[tuple[tuple[str, ...], str]]:
    """Every candidate list of 2 or 3 methods, and all of them, with every per-model
    selector (``ensv``'s stored score belongs to the run's whole pool, not to a
    subset, so it cannot be replayed here; its own rows are ``auto[ensv]`` and
    ``auto_all[ensv]``)."""
    from itertools import combinations

    from keras_transfer.adaptation.scores import MODEL_SELECTORS

    sets = [c for k in (2, 3) for c in combinations(sorted(methods), k)]
    sets.append(tuple(sorted(methods)))
    return [(c, sel) for c in sets for sel in MODEL_SELECTORS]


def lopo_table(results: dict) -> str:
    """Would tuning "auto" on these pairs generalise? Leave-one-pair-out: for each
    pair, pick the (candidates, selector) whose worst shortfall from the best single
    method is smallest on the OTHER pairs, then measure it on the held-out pair,
    next to the file's own ``auto`` run (the defaults it was run with, named under
    the table). Replays `choose()` on the stored scores and eligibility; trains
    nothing."""
    rows: dict = {}
    eligible: dict = {}
    stored_auto: dict = {}  # (pair, seed) -> the file's own "auto" run
    for r in results.get("runs", []):
        if r["method"] == "auto" and "eligible" in r:
            eligible[(r["pair"], r["seed"])] = r["eligible"]
            stored_auto[(r["pair"], r["seed"])] = r
        # source_only is one of auto's candidates (it has scores when it was one)
        elif r.get("scores") and r["method"] != "oracle":
            rows[(r["pair"], r["method"], r["seed"])] = r
    pairs = sorted({p for p, _ in eligible})
    methods = sorted({m for _, m, _ in rows})
    seeds = {p: sorted(s for q, s in eligible if q == p) for p in pairs}
    if len(pairs) < 3 or len(methods) < 2:
        return "(leave-one-pair-out needs 3 pairs and 2 methods with scores)"

    def acc(cands, sel, pair):
        picks = []
        for seed in seeds[pair]:
            ok = eligible[(pair, seed)]
            pool = [c for c in cands if ok.get(c, True)] or list(cands)
            best = max(pool, key=lambda c: rows[(pair, c, seed)]["scores"][sel])
            picks.append(rows[(pair, best, seed)]["target_accuracy"])
        return float(np.mean(picks))

    best = {
        p: max(acc((m,), "dev", p) for m in methods) for p in pairs
    }  # one candidate: the selector does not matter
    configs = _auto_configs(methods)
    table = {c: {p: best[p] - acc(*c, p) for p in pairs} for c in configs}
    # the stored run, not a replay: EnsV scores the run's whole pool, which cannot
    # be replayed on a subset, and the run is what `adapt(method="auto")` returned
    ran = {
        (tuple(r.get("candidates") or ()), r.get("selector"))
        for r in stored_auto.values()
    }
    lines = [
        "| held-out pair | config tuned on the other pairs | its shortfall there | "
        "shortfall in-sample (other pairs, worst) | this file's auto's shortfall |",
        "|---|---|---|---|---|",
    ]
    for held in pairs:
        others = [p for p in pairs if p != held]
        tuned = min(
            configs,
            key=lambda c: (
                max(table[c][p] for p in others),
                float(np.mean([table[c][p] for p in others])),
            ),
        )
        stored = np.mean(
            [stored_auto[(held, s)]["target_accuracy"] for s in seeds[held]]
        )
        lines.append(
            f"| {held} | {', '.join(tuned[0])} by {tuned[1]} | "
            f"{100 * table[tuned][held]:.1f} | "
            f"{100 * max(table[tuned][p] for p in others):.1f} | "
            f"{100 * (best[held] - stored):.1f} |"
        )
    lines.append("")
    lines.append(
        "This file's auto: "
        + "; ".join(f"{', '.join(c)} by {sel}" for c, sel in sorted(ran, key=str))
        + "."
    )
    return "\n".join(lines)


def compare_table(
    base: dict, other: dict, other_path: str | Path, base_path: str | Path = RESULTS
) -> str:
    """Row by row: ``base`` (e.g. the default recipe) vs ``other`` (another setting
    of the same benchmark, e.g. ``--source-augmentation auto``), every method and pair
    in both. "gap closed" is measured against ``base``'s source-only and oracle, so
    the two columns share one yardstick; "own gap" against ``other``'s."""
    b, o = base.get("summary", {}), other.get("summary", {})
    label = other.get("config", {}).get("source_augmentation") or "other"
    lines = [
        f"| pair | method | target acc, {_display(base_path)} | target acc, "
        f"{label} | change (points) | gap closed, {label} | own gap closed, {label} "
        "| held-out source, " + label + " |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for pair in o:
        if pair not in b:
            continue
        so, oracle = b[pair].get("source_only"), b[pair].get("oracle")
        for method, row in o[pair].items():
            ref = b[pair].get(method)
            if ref is None or "[" in method:  # selector replays: candidate sets differ
                continue
            acc, old = row["target_accuracy_mean"], ref["target_accuracy_mean"]
            gap = None
            if (
                so
                and oracle
                and oracle["target_accuracy_mean"] > so["target_accuracy_mean"] + 1e-9
            ):
                gap = (
                    100.0
                    * (acc - so["target_accuracy_mean"])
                    / (oracle["target_accuracy_mean"] - so["target_accuracy_mean"])
                )
            lines.append(
                f"| {pair} | {method} | {old:.3f} | {acc:.3f} | "
                f"{100 * (acc - old):+.1f} | {_fmt(gap, '.0f', '%')} | "
                f"{_fmt(row.get('gap_closed_percent'), '.0f', '%')} | "
                f"{_fmt(row.get('source_accuracy_mean'), '.3f')} |"
            )
    lines.append("")
    lines.append(
        f"Files: `{_display(base_path)}` (recipe `{base.get('config', {}).get('recipe')}`"
        f") and `{_display(other_path)}` (recipe "
        f"`{other.get('config', {}).get('recipe')}`). Commands: `{base.get('command')}`"
        f"; `{other.get('command')}`."
    )
    return "\n".join(lines)


def check_targets(summary: dict) -> list[str]:
    """The issue's targets, one line each: met or missed, with the numbers."""
    lines = []
    for pair, s in summary.items():
        base, oracle = s.get("source_only"), s.get("oracle")
        if not base or not oracle:
            continue
        methods = {
            m: r
            for m, r in s.items()
            if m not in BASELINES and not m.endswith((TARGET_BN, MIXED_BN, DSBN))
        }
        singles = {
            m: r
            for m, r in methods.items()
            if not m.startswith("auto") and m not in AUTO_VARIANTS
        }
        if not singles:
            continue
        best = max(singles, key=lambda m: singles[m]["target_accuracy_mean"])
        gap = methods[best]["gap_closed_percent"]
        lines.append(
            f"{pair}: best {best} closes {_fmt(gap, '.0f', '%')} of the gap "
            f"({'met' if gap is not None and gap >= 50 - _EPS else 'missed'} ≥ 50%)"
        )
        if "dann" in methods:
            gain = 100 * (
                methods["dann"]["target_accuracy_mean"] - base["target_accuracy_mean"]
            )
            lines.append(
                f"{pair}: DANN {gain:+.1f} points over source-only "
                f"({'met' if gain >= 5 - _EPS else 'missed'} ≥ +5)"
            )
            ratio = methods["dann"]["epoch_time_ratio"]
            if ratio is not None:
                ok = "met" if ratio <= 1.8 + _EPS else "missed"
                lines.append(f"{pair}: DANN epoch time {ratio:.2f}× ({ok} ≤ 1.8×)")
        drop = {
            m: 100 * (base["source_accuracy_mean"] - r["source_accuracy_mean"])
            for m, r in methods.items()
        }
        worst = max(drop, key=drop.get)
        lines.append(
            f"{pair}: largest held-out source drop {drop[worst]:.1f} points ({worst}; "
            f"{'met' if drop[worst] <= 3 + _EPS else 'missed'} ≤ 3)"
        )
        if "auto" in methods:
            behind = 100 * (
                methods[best]["target_accuracy_mean"]
                - methods["auto"]["target_accuracy_mean"]
            )
            lines.append(
                f"{pair}: auto {behind:.1f} points behind the best "
                f"({'met' if behind <= 2 + _EPS else 'missed'} ≤ 2)"
            )
    return lines


def default_view(summary: dict) -> dict:
    """The summary as ``adapt``'s defaults return the models, from
    ``--target-batchnorm``'s rows: each method's ``<method>[target_bn]`` row (the
    chosen model's trained BatchNorm statistics re-estimated on the target, what
    ``target_batchnorm="auto"`` does for an encoder without BatchNorm of its own)
    and ``auto>[target_bn]`` as ``auto`` (``auto[ensv_rv@target_bn]`` where the
    file has it: since stop 35 ``adapt`` scores the candidates with target
    statistics before choosing; ``auto[soup_if_low]`` where the file has it: since
    stop 36 it returns the soup when its low-agreement warning fires);
    source-only and the oracle as trained (``"auto"`` leaves an explicit
    source-only run alone). Gap and time ratios are recomputed against them.
    Empty when the rows are missing."""
    view = {}
    for pair, stats in summary.items():
        if "auto>" + TARGET_BN not in stats:
            continue
        rows = {}
        for method, row in stats.items():
            if method in BASELINES:
                rows[method] = dict(row)
            elif method == "auto>" + TARGET_BN and AUTO_ENSV_RV_TARGET_BN not in stats:
                rows["auto"] = dict(row)
            elif method == AUTO_ENSV_RV_TARGET_BN and SOUP_IF_LOW_ROW not in stats:
                rows["auto"] = dict(row)  # the default of stops 35-36
            elif method == SOUP_IF_LOW_ROW:  # the default since stop 36
                rows["auto"] = dict(row)
            elif (
                method.endswith(TARGET_BN)
                and not method.startswith(("auto", "soup"))
                and method[: -len(TARGET_BN)] not in BASELINES
            ):
                rows[method[: -len(TARGET_BN)]] = dict(row)
        base, oracle = rows.get("source_only"), rows.get("oracle")
        for row in rows.values():
            row["gap_closed_percent"] = None
            if base and oracle:
                gap = oracle["target_accuracy_mean"] - base["target_accuracy_mean"]
                if gap > 1e-9:
                    gain = row["target_accuracy_mean"] - base["target_accuracy_mean"]
                    row["gap_closed_percent"] = 100.0 * gain / gap
        view[pair] = rows
    return view


def default_targets(summary: dict) -> list[str]:
    """`check_targets` on `default_view`: the issue's targets for the models
    ``adapt``'s defaults return. Empty without ``--target-batchnorm``'s rows."""
    view = default_view(summary)
    if not view:
        return []
    return [
        "Targets for the models adapt's defaults return (rows '<method>[target_bn]' "
        "and, as auto, the newest default the file has: 'auto[soup_if_low]', "
        "'auto[ensv_rv@target_bn]' or 'auto>[target_bn]'):",
        *check_targets(view),
    ]


# -------------------------------------------------------------------- I/O
def save(results: dict, output: Path) -> str:
    """Writes the results atomically (``write_results`` for the default place)."""
    results["summary"] = summarize(results["runs"])
    if output.resolve() == RESULTS.resolve():
        return write_results(NAME, results)
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_suffix(output.suffix + ".tmp")
    tmp.write_text(json.dumps(results, indent=2, default=float))
    os.replace(tmp, output)
    return str(output)


def _start(args, config: dict, output: Path) -> dict:
    """A fresh payload, or the existing one when resuming the same config."""
    if args.resume and output.exists():
        old = json.loads(output.read_text())
        old_cfg = old.get("config", {})
        mismatch = {
            k: old_cfg.get(k) for k in RESULT_KEYS if old_cfg.get(k) != config[k]
        }
        if mismatch:
            raise SystemExit(
                f"Expected --resume to continue a run of the same config as {output}. "
                f"Received: {', '.join(f'{k}={config[k]!r}' for k in mismatch)} "
                f"where the file has {mismatch}. Drop --resume to start over, or pass "
                "another --output."
            )
        old["config"] = config
        return old
    return {"config": config, "runs": []}


def parse_args(argv=None):
    from keras_transfer.datasets import list_domain_pairs

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--pairs",
        nargs="+",
        default=None,
        help="default: every registered pair; 'heldout', 'fresh', 'unseen', 'novel' or "
        "'blind' (or a name "
        "from benchmarks/_heldout_pairs.py) runs the pairs no recipe choice was made on",
    )
    parser.add_argument(
        "--methods",
        nargs="+",
        default=None,
        help="default: every registered alignment method and auto; source_only and "
        "oracle always run",
    )
    parser.add_argument(
        "--folder-pair",
        nargs=3,
        action="append",
        metavar=("NAME", "SOURCE_DIR", "TARGET_DIR"),
        help="a pair of your own: two image folders with the same class subfolders "
        "(<dir>/<class>/<images>), registered as NAME (the target's labels score the "
        "runs and train the oracle only); repeatable; without --pairs only these run",
    )
    parser.add_argument(
        "--pairs-file",
        action="append",
        metavar="FILE.py",
        help="a Python file that registers pairs of your own "
        "(keras_transfer.datasets.register_domain_pair / register_folder_pair); "
        "without --pairs only the pairs it registers run",
    )
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=None, help="recipe default")
    parser.add_argument("--batch-size", type=int, default=None, help="recipe default")
    parser.add_argument("--size", type=int, default=32, help="image height and width")
    parser.add_argument("--data-seed", type=int, default=0, help="seed of the pairs")
    parser.add_argument("--limit", type=int, default=None, help="cap on every split")
    parser.add_argument(
        "--target-imbalance",
        type=float,
        default=None,
        metavar="RATIO",
        help="label shift: thin the target's classes (training and test) to fractions "
        "falling geometrically from 1 to 1/RATIO, in a class order drawn from "
        "--data-seed (imbalance_target); the source stays balanced",
    )
    parser.add_argument(
        "--thin-evenly",
        action="store_true",
        help="with --target-imbalance: the control, every target class thinned to "
        "the mean of those fractions (as many target examples, balanced classes)",
    )
    parser.add_argument(
        "--source-augmentation",
        choices=("none", "default", "auto", "appearance", "auto+appearance"),
        default=None,
        help="adapt's source_augmentation for every row (default: the recipe's)",
    )
    parser.add_argument(
        "--mixed-precision",
        choices=("mixed_bfloat16", "mixed_float16"),
        default=None,
        help="adapt's mixed_precision for every row (default: float32)",
    )
    parser.add_argument(
        "--encoder",
        choices=tuple(IMAGE_ENCODERS),
        default="cnn",
        help="the image pairs' encoder: the small CNN without normalisation layers "
        "(default) or the same CNN with BatchNormalization ('cnn_bn')",
    )
    parser.add_argument(
        "--batchnorm-momentum",
        default=None,
        help="adapt's batchnorm_momentum for every row: a float, or 'keep' (the "
        "encoder's own; default: the recipe's)",
    )
    parser.add_argument(
        "--target-batchnorm",
        action="store_true",
        help="also evaluate every candidate with its BatchNormalization statistics "
        "re-estimated on the target inputs (rows '<method>[target_bn]', "
        "'auto>[target_bn]', 'auto[target_bn]'; no training)",
    )
    parser.add_argument(
        "--compare",
        default=None,
        help="with --table: a second results file (e.g. --source-augmentation auto) "
        "compared row by row with --output",
    )
    parser.add_argument(
        "--variant",
        action="append",
        default=None,
        metavar="NAME=METHOD:KEY=VALUE[;KEY=VALUE]",
        help="another setting of a method, run as one more candidate from the same "
        "warm-up, e.g. dann_256=dann:hidden_units=256,256 (then --methods dann "
        "dann_256 runs both side by side)",
    )
    parser.add_argument(
        "--reverse-validation",
        action="store_true",
        help="score every candidate by reverse validation too (adapt's "
        "selector='ensv_rv' for the shared run: one short fit per candidate), and "
        "add the rows auto[rv], auto[ensv_rv] (and auto_all[...]); since stop 34 "
        "the default selector needs it, so it is on either way (the flag keeps "
        "the stop's commands valid)",
    )
    parser.add_argument(
        "--domain-batchnorm",
        action="store_true",
        help="train every candidate a second time with adapt(domain_batchnorm=True) "
        "from the same seeded encoder (rows '<method>[dsbn]', 'auto[dsbn]'), next "
        "to the default's rows; implies --target-batchnorm (the baseline rows "
        "'<method>[target_bn]' and 'auto>[target_bn]', adapt's default for an "
        "encoder without BatchNorm of its own)",
    )
    parser.add_argument("--output", default=str(RESULTS))
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--quick", action="store_true", help="1 seed, 1 epoch, small")
    parser.add_argument("--table", action="store_true", help="print the table only")
    parser.add_argument(
        "--separate",
        action="store_true",
        help="one adapt() call per method (default: every method branches from one "
        "shared warm-up per seed, auto's choice read off the same run)",
    )
    args = parser.parse_args(argv)
    if args.target_imbalance is not None and not args.target_imbalance >= 1.0:
        parser.error(
            "--target-imbalance takes a ratio >= 1 (largest class / smallest). "
            f"Received: {args.target_imbalance}"
        )
    if args.thin_evenly and not args.target_imbalance:
        parser.error(
            "--thin-evenly needs --target-imbalance RATIO (whose mean it keeps)"
        )
    if args.batchnorm_momentum not in (None, "keep"):
        try:
            valid = 0.0 <= float(args.batchnorm_momentum) < 1.0
        except ValueError:
            valid = False
        if not valid:
            parser.error(
                "--batchnorm-momentum takes a float in [0, 1) or 'keep'. "
                f"Received: {args.batchnorm_momentum!r}"
            )
    if args.domain_batchnorm:
        args.target_batchnorm = True
    if args.quick:
        args.seeds = 1
        args.epochs = args.epochs or 1
        args.limit = args.limit or 300
    try:
        own = register_own_pairs(args.folder_pair, args.pairs_file)
    except (ValueError, OSError) as err:
        parser.error(str(err))
    pairs = args.pairs or own or list_domain_pairs()
    groups = (
        ("heldout", HELDOUT_PAIRS),
        ("fresh", FRESH_PAIRS),
        ("unseen", UNSEEN_PAIRS),
        ("novel", NOVEL_PAIRS),
        ("blind", BLIND_PAIRS),
    )
    for group, members in groups:
        if group in pairs:
            at = pairs.index(group)
            pairs = [*pairs[:at], *members, *pairs[at + 1 :]]
    known = [
        *list_domain_pairs(),
        *HELDOUT_PAIRS,
        *FRESH_PAIRS,
        *UNSEEN_PAIRS,
        *NOVEL_PAIRS,
        *BLIND_PAIRS,
    ]
    unknown = sorted(set(pairs) - set(known))
    if unknown:
        parser.error(f"Expected --pairs from {known}. Received: {unknown}")
    args.pairs = pairs
    try:
        args.variants = dict(parse_variant(v) for v in args.variant or ())
    except ValueError as err:
        parser.error(str(err))
    return args


def register_own_pairs(
    folder_pairs: list[list[str]] | None, pairs_files: list[str] | None
) -> list[str]:
    """Registers ``--folder-pair`` and ``--pairs-file`` pairs; returns their names."""
    import runpy

    from keras_transfer.datasets import list_domain_pairs, register_folder_pair

    names = []
    for name, source_dir, target_dir in folder_pairs or ():
        register_folder_pair(name, source_dir, target_dir, overwrite=True)
        names.append(name)
    for file in pairs_files or ():
        if not os.path.isfile(file):
            raise ValueError(f"--pairs-file {file!r} does not exist.")
        before = set(list_domain_pairs())
        runpy.run_path(file, run_name="pairs_file")
        new = sorted(set(list_domain_pairs()) - before)
        if not new:
            raise ValueError(
                f"--pairs-file {file!r} registered no new pair. Expected it to call "
                "keras_transfer.datasets.register_domain_pair or register_folder_pair "
                "with a name not registered before."
            )
        names += new
    return names


def _value(text: str):
    """``"256,256"`` -> (256, 256); ``"0.5"`` -> 0.5; ``"false"`` -> False; ``"x"``
    -> "x"."""
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    parts = []
    for item in text.split(","):
        for kind in (int, float):
            try:
                parts.append(kind(item))
                break
            except ValueError:
                continue
        else:
            parts.append(item)
    return tuple(parts) if "," in text else parts[0]


def parse_variant(spec: str) -> tuple[str, dict]:
    """``"dann_256=dann:hidden_units=256,256"`` -> ("dann_256", {"method": "dann",
    "kwargs": {"hidden_units": (256, 256)}}); the method's other defaults stay."""
    name, sep, rest = spec.partition("=")
    base, _, options = rest.partition(":")
    if not sep or not name or not base or "+" in name:
        raise ValueError(
            "Expected --variant NAME=METHOD:KEY=VALUE[;KEY=VALUE], e.g. "
            f"dann_256=dann:hidden_units=256,256. Received: {spec!r}"
        )
    kwargs = {}
    for option in filter(None, options.split(";")):
        key, eq, value = option.partition("=")
        if not eq or not key:
            raise ValueError(
                f"Expected KEY=VALUE after the method in --variant. Received: {option!r}"
            )
        kwargs[key] = _value(value)
    return name.lower(), {"method": base.lower(), "kwargs": kwargs}


def register_variants(variants: dict) -> None:
    """Registers each variant in this process as a method name `adapt` accepts:
    the base method's class, its `METHOD_DEFAULTS` updated by the variant's."""
    from keras_transfer.adaptation import list_alignment_methods
    from keras_transfer.adaptation.candidates import METHOD_DEFAULTS
    from keras_transfer.adaptation.methods import (
        get_alignment_method,
        register_alignment_method,
    )

    for name, spec in variants.items():
        known = list_alignment_methods()
        if spec["method"] not in known:
            raise SystemExit(
                "Expected a --variant of a registered alignment method "
                f"{sorted(known)}. Received: {spec['method']!r}"
            )
        if name in (*known, *BASELINES, "auto", "adabn"):
            raise SystemExit(
                "Expected a --variant name that is not already a method (it would "
                f"replace that method in this run). Received: {name!r}"
            )
        register_alignment_method(name, type(get_alignment_method(spec["method"])))
        METHOD_DEFAULTS[name] = {
            **METHOD_DEFAULTS.get(spec["method"], {}),
            **spec["kwargs"],
        }


def default_methods() -> list[str]:
    from keras_transfer.adaptation import list_alignment_methods

    return [*list_alignment_methods(), "auto"]


def main(argv=None) -> int:
    args = parse_args(argv)
    output = Path(args.output)
    if args.table:
        if not output.exists():
            raise SystemExit(
                f"Expected a results file at {output}. Received: none; run "
                f"`{COMMAND}` first or pass --output."
            )
        payload = json.loads(output.read_text())
        if args.compare:
            other = Path(args.compare)
            print(compare_table(payload, json.loads(other.read_text()), other, output))
            return 0
        print(markdown_table(payload, output))
        print()
        if target_batchnorm_table(payload):
            print(target_batchnorm_table(payload))
            print()
        if domain_batchnorm_table(payload):
            print(domain_batchnorm_table(payload))
            print()
        if ensv_rv_target_table(payload):
            print(ensv_rv_target_table(payload))
            print()
        if soup_table(payload):
            print(soup_table(payload))
            print()
        print(selector_table(payload))
        print()
        print(agreement_table(payload))
        print()
        print(lopo_table(payload))
        print()
        print("\n".join(check_targets(payload.get("summary", {}))))
        if default_targets(payload.get("summary", {})):
            print()
            print("\n".join(default_targets(payload.get("summary", {}))))
        return 0
    from keras_transfer._backend import tf

    tf.get_logger().setLevel("ERROR")
    register_variants(args.variants)
    methods = args.methods or default_methods()
    order = ["source_only", *[m for m in methods if m not in BASELINES], "oracle"]
    config = {
        "pairs": args.pairs,
        "folder_pairs": {n: [src, tgt] for n, src, tgt in args.folder_pair or ()}
        or None,
        "pairs_files": args.pairs_file,
        "methods": order,
        "seeds": args.seeds,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "size": args.size,
        "limit": args.limit,
        "data_seed": args.data_seed,
        "recipe": _recipe()[1],
        "source_augmentation": args.source_augmentation,
        "variants": json.loads(json.dumps(args.variants)) or None,  # as stored
        "mixed_precision": args.mixed_precision,
        "encoder": None if args.encoder == "cnn" else args.encoder,
        "batchnorm_momentum": args.batchnorm_momentum,
        "target_batchnorm": args.target_batchnorm or None,
        "reverse_validation": _reverse_validation(args) or None,
        "domain_batchnorm": args.domain_batchnorm or None,
        "target_imbalance": args.target_imbalance,
        "thin_evenly": args.thin_evenly or None,
        "image_encoder": "benchmarks/domain_adaptation.py "
        + {
            "cnn": "make_encoder (small CNN)",
            "cnn_bn": "make_encoder_bn (small CNN with BatchNormalization)",
        }[args.encoder],
        "text_encoder": "frozen MiniLM-L6 mean-pooled features + Dense(128, relu)",
    }
    results = _start(args, config, output)
    results["command"] = " ".join([COMMAND, *(argv or sys.argv[1:])]).strip()
    done = {(r["pair"], r["method"], r["seed"]) for r in results["runs"]}
    for pair in args.pairs:
        todo = [
            (m, s) for m in order for s in range(args.seeds) if (pair, m, s) not in done
        ]
        if not todo:
            continue
        data = load_pair(pair, size=args.size, seed=args.data_seed, limit=args.limit)
        if args.target_imbalance:
            data = imbalance_target(
                data, args.target_imbalance, args.data_seed, evenly=args.thin_evenly
            )
            print(f"{pair}: target class counts {data['target_class_counts']}")
        shared = [m for m in order if m not in ("oracle", "auto")]
        for method, seed in todo:
            if args.separate or method == "oracle" or (method == "auto" and not shared):
                new_rows = [run_one(data, method, seed=seed, args=args)]
            elif (pair, "source_only", seed) in done:
                continue  # rows of this seed came from one shared run
            else:
                new_rows = run_shared(
                    data, shared, seed=seed, args=args, with_auto="auto" in order
                )
            for row in new_rows:
                row = {"pair": pair, **row}
                results["runs"].append(row)
                done.add((pair, row["method"], seed))
                print(
                    f"{pair:16s} {row['method']:22s} seed {seed}: target "
                    f"{row['target_accuracy']:.3f}  source {row['source_accuracy']:.3f}  "
                    f"{_fmt(row['seconds_per_epoch'], '.2f')} s/epoch "
                    f"({row['trained_method']})",
                    flush=True,
                )
            path = save(results, output)
    path = save(results, output)
    print()
    print(markdown_table(results, path))
    print()
    if target_batchnorm_table(results):
        print(target_batchnorm_table(results))
        print()
    if domain_batchnorm_table(results):
        print(domain_batchnorm_table(results))
        print()
    if ensv_rv_target_table(results):
        print(ensv_rv_target_table(results))
        print()
    if soup_table(results):
        print(soup_table(results))
        print()
    print("\n".join(check_targets(results["summary"])))
    if default_targets(results["summary"]):
        print()
        print("\n".join(default_targets(results["summary"])))
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
