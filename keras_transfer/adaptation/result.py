"""What `adapt` returns, and "auto"'s choice among candidates."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from keras_transfer._backend import keras
from keras_transfer.adaptation.model import compile_for_evaluation
from keras_transfer.adaptation.predict import predict_eagerly
from keras_transfer.adaptation.scores import (
    REVERSE_SELECTORS,
    RV_VETO_SHARE,
    SELECTORS,
    ensemble_agreement,
)

#: The unsupervised score "auto" ranks candidates by (higher is better): EnsV's
#: agreement with the candidates' mean prediction (Hu et al. 2024), among the
#: candidates that reverse validation does not veto (``"ensv_rv"``, since stop 34:
#: docs/domain_adaptation.md, "Reverse validation").
DEFAULT_SELECTOR = "ensv_rv"

#: `adapt` warns (and sets ``selection["low_agreement"]``) when the chosen candidate
#: predicts the pool's mean class on fewer than this share of the target examples.
#: Read off the committed benchmark files before stop 24: every (pair, seed) run
#: below it scored at most 0.78 target accuracy, most near chance, and so did every
#: run below it among 48 written later. Above it is no promise: 0.82 and up in the
#: first 83 runs, 0.672 once in the later 48 (docs/domain_adaptation.md, "When
#: auto's candidates disagree"; `benchmarks/results/agreement.json`).
LOW_AGREEMENT = 0.9
#: Fewest candidates whose agreement says something (the mean of two is mostly
#: the more confident one's prediction).
MIN_AGREEMENT_POOL = 3


def agreement_check(agreement: dict[str, float], chosen: str) -> dict[str, Any]:
    """The chosen candidate's agreement with the pool, and the warning it warrants.

    Args:
        agreement: dict. Each candidate's EnsV score (`ensemble_agreement`).
        chosen: str. The candidate `adapt` kept.

    Returns:
        dict with ``agreement`` (float, or None with fewer than
        `MIN_AGREEMENT_POOL` candidates), ``low_agreement`` (bool or None) and
        ``message`` (the warning's text, or None).

    Examples:
    ```python
    from keras_transfer.adaptation.result import agreement_check
    check = agreement_check({"bnm": 0.62, "mcc": 0.55, "dann": 0.6}, "bnm")
    assert check["low_agreement"] and "62%" in check["message"]
    assert agreement_check({"bnm": 0.97, "mcc": 0.9, "dann": 0.95}, "bnm")[
        "message"] is None
    assert agreement_check({"mcc": 1.0}, "mcc")["agreement"] is None
    ```
    """
    if len(agreement) < MIN_AGREEMENT_POOL:
        return {"agreement": None, "low_agreement": None, "message": None}
    value = float(agreement[chosen])
    low = value < LOW_AGREEMENT
    message = None
    if low:
        message = (
            f"the {len(agreement)} candidates agree with the chosen model "
            f"({chosen!r}) on only {value:.0%} of the target examples (below "
            f"{LOW_AGREEMENT:.0%}). On the benchmark pairs every run this low scored "
            "at most 0.78 target accuracy, most near chance: check the model on a "
            "few labelled target examples (model.evaluate), or fine-tune on them "
            "(keras_transfer.fine_tune, keras-transfer fewshot), before shipping it."
        )
    return {"agreement": value, "low_agreement": low, "message": message}


def source_check(
    source_accuracy: float,
    num_classes: int,
    trained_statistics: float | None = None,
) -> str | None:
    """The warning for a returned model that learnt nothing from the labelled source.

    Held-out source accuracy at or below 1.5 times chance (the warm-up's take-off
    test) means the network never fitted the source, so there was nothing to adapt:
    every candidate then predicts alike, and the agreement check stays silent.

    Args:
        source_accuracy: float. The returned model's held-out source accuracy.
        num_classes: int. Number of classes.
        trained_statistics: float or None. The same model's held-out source
            accuracy with the BatchNorm statistics of its training batches, when
            they were re-estimated on the target: the warning needs both at chance
            (target statistics alone can lower the source's accuracy of a network
            that learnt it). Defaults to None.

    Returns:
        str or None. The warning's text, or None when the source was learnt.

    Examples:
    ```python
    from keras_transfer.adaptation.result import source_check
    assert "chance" in source_check(0.1, 10)
    assert source_check(0.9, 10) is None
    assert source_check(0.1, 10, trained_statistics=0.8) is None
    ```
    """
    chance = 1.0 / max(int(num_classes), 2)
    best = max(source_accuracy, trained_statistics or 0.0)
    if best > 1.5 * chance:
        return None
    trained = (
        f" ({trained_statistics:.3f} with its training batches' BatchNorm statistics)"
        if trained_statistics is not None
        and abs(trained_statistics - source_accuracy) >= 5e-4
        else ""
    )
    return (
        f"the chosen model's held-out source accuracy is {source_accuracy:.3f}"
        f"{trained}, chance level for {num_classes} classes ({chance:.3f}): it "
        "learnt nothing "
        "from the labelled source, so nothing was adapted. Check that the backbone "
        "can train (a backbone without pretrained weights needs its BatchNorm "
        "layers trained too: train_batchnorm='auto' or True, CLI "
        "model.train_batchnorm: auto), the learning rate, the number of epochs, "
        "and that the labels match the inputs."
    )


def merge_histories(histories: list, model: Any) -> Any:
    merged = keras.callbacks.History()
    merged.set_model(model)
    merged.history = {}
    epoch = 0
    for hist in histories:
        n = len(hist.epoch)
        for key, values in hist.history.items():
            merged.history.setdefault(key, [None] * epoch).extend(values)
        for values in merged.history.values():
            values.extend([None] * (epoch + n - len(values)))
        epoch += n
    merged.epoch = list(range(epoch))
    return merged


def accuracy(model: Any, x: Any, y: np.ndarray) -> float:
    return float(np.mean(predict_eagerly(model, x).argmax(-1) == y))


def snapshot(layers: list) -> list:
    return [[np.array(w) for w in layer.get_weights()] for layer in layers]


def restore(layers: list, snapshot: list) -> None:
    for layer, weights in zip(layers, snapshot):
        layer.set_weights(weights)


def _seed_variables(obj: Any) -> list:
    if obj is None or not hasattr(obj, "variables"):
        return []
    return [v for v in obj.variables if v.name == "seed_generator_state"]


def seed_states(objects: list) -> list:
    """The seed-generator states of the random layers in ``objects`` (layers,
    models or None): `get_weights` leaves them out, so `restore` would leave them
    where the last fit left them (dropout masks, augmentation draws)."""
    return [[np.array(v) for v in _seed_variables(obj)] for obj in objects]


def restore_seed_states(objects: list, states: list) -> None:
    for obj, values in zip(objects, states):
        for variable, value in zip(_seed_variables(obj), values):
            variable.assign(value)


def optimizer_state(optimizer) -> dict:
    """The optimizer's slot variables (moments, step count) by name.

    Keras names a slot after the variable it belongs to
    (``"<variable path>_momentum"``), so the state of the weights two models share
    can be carried from one optimizer to another of the same kind. The learning
    rate is left out: each phase sets its own.
    """
    if optimizer is None or not getattr(optimizer, "built", False):
        return {}
    return {
        v.name: np.array(v) for v in optimizer.variables if v.name != "learning_rate"
    }


def carry_optimizer_state(model, state: dict) -> int:
    """Builds ``model``'s optimizer and loads the slots of ``state`` it shares.

    A candidate branched from the warm-up continues with the warm-up's Adam moments
    for the encoder, bottleneck and classifier (a fresh Adam takes steps of about
    the learning rate in every coordinate, which knocked held-out source accuracy
    down by 10-20 points at every phase switch); its new weights (a discriminator)
    start fresh. Returns the number of slots loaded.
    """
    if not state:
        return 0
    from keras_transfer.distribute.backup import build_optimizer

    build_optimizer(model)
    loaded = 0
    for variable in model.optimizer.variables:
        saved = state.get(variable.name)
        if saved is not None and tuple(variable.shape) == saved.shape:
            variable.assign(saved)
            loaded += 1
    return loaded


@dataclass
class AdaptResult:
    """What `adapt` returns.

    Attributes:
        model: keras.Model. Inference model (inputs → class probabilities), compiled
            with accuracy so ``model.evaluate(x, y)`` works.
        history: keras.callbacks.History. One merged history (warm-up, then the
            chosen method), with ``lambda`` and ``source_val_accuracy`` per epoch.
        method: str. The method that was trained (the winner for "auto").
        selection: dict. Candidates, their unsupervised scores, the selector, the
            warm-up length and the collapse-guard events; ``agreement`` (the chosen
            candidate's EnsV agreement with the pool, None with fewer than three
            candidates) and ``low_agreement`` (True below `LOW_AGREEMENT`: `adapt`
            then warns that the target accuracy is likely low).
        source_accuracy: float. Accuracy on the held-out source split.
        training_model: `DomainAdaptationModel`. The model that was trained.
        target_probabilities: dict. Each candidate's class probabilities on the
            target inputs given to `adapt` (what the selectors scored); pass it to
            `choose` to re-run the ``"ensv"`` selector on a subset of candidates.
    """

    model: Any
    history: Any
    method: str
    selection: dict
    source_accuracy: float
    training_model: Any = None
    target_probabilities: dict = field(default_factory=dict, repr=False)
    _candidates: dict = field(default_factory=dict, repr=False)
    _layers: list = field(default_factory=list, repr=False)
    # the candidates' inference model (``model`` may be an ensemble or a student)
    _inference: Any = field(default=None, repr=False)
    # the weights adapt started from (kept when it computed reverse validation)
    _initial: Any = field(default=None, repr=False)

    def candidate_model(self, name: str) -> Any:
        """A compiled inference model holding candidate ``name``'s final weights.

        With ``method="auto"`` every candidate was trained from the shared warm-up;
        this rebuilds any of them (for inspection or comparison) without touching
        ``model``.

        Raises:
            ValueError: ``name`` was not a candidate of this run.
        """
        if name == self.method and name not in self._candidates:
            self._candidates[name] = snapshot(self._layers)
        if name not in self._candidates:
            raise ValueError(
                f"Expected one of the run's candidates {sorted(self._candidates)}. "
                f"Received: name={name!r}"
            )
        current = snapshot(self._layers)
        try:
            restore(self._layers, self._candidates[name])
            inference = self.model if self._inference is None else self._inference
            clone = keras.models.clone_model(inference)
            clone.set_weights(inference.get_weights())
        finally:
            restore(self._layers, current)
        return compile_for_evaluation(clone)


def _choose(results: dict, selector: str) -> str:
    """The best-scoring candidate among those whose source accuracy held.

    ``ensv_rv``: the best EnsV among them whose reverse-validation score is at least
    `RV_VETO_SHARE` of the best one's.
    """
    pool = {n: r for n, r in results.items() if r["eligible"]} or results
    key = "ensv" if selector == "ensv_rv" else selector
    needed = "rv" if selector in REVERSE_SELECTORS else key
    missing = sorted(n for n, r in pool.items() if needed not in r["scores"])
    if missing:
        raise ValueError(
            f"The {selector!r} selector needs the {needed!r} score, which this run "
            f"did not compute for {missing} (adapt computes 'rv' only when the "
            f"selector is one of {REVERSE_SELECTORS})."
        )
    if selector == "ensv_rv":
        best = max(r["scores"]["rv"] for r in pool.values())
        pool = {
            n: r for n, r in pool.items() if r["scores"]["rv"] >= RV_VETO_SHARE * best
        }
    return max(pool, key=lambda n: pool[n]["scores"][key])


def choose(
    selection: dict,
    candidates: Any = None,
    selector: str = DEFAULT_SELECTOR,
    *,
    probabilities: dict | None = None,
) -> str:
    """Re-runs "auto"'s choice on a finished run's ``selection``.

    The rule of `adapt(method="auto")`: among the candidates whose held-out source
    accuracy stayed above the collapse-guard floor, the one with the highest
    ``selector`` score. Useful to compare selectors, or to see what a smaller
    candidate list would have chosen, without training again.

    Args:
        selection: dict. `AdaptResult.selection`.
        candidates: sequence of str or None. A subset of the run's candidates.
            Defaults to all of them.
        selector: str. One of `keras_transfer.adaptation.scores.SELECTORS`.
        probabilities: dict or None. `AdaptResult.target_probabilities`. Needed
            for ``"ensv"`` on a subset of the candidates, whose ensemble is not the
            run's: the agreement is recomputed over the subset.

    Returns:
        str. The chosen candidate.

    Raises:
        ValueError: An unknown selector or candidate, or ``"ensv"`` on a subset
            without ``probabilities``.
    """
    if selector not in SELECTORS:
        raise ValueError(
            f"Expected selector in {SELECTORS}. Received: selector={selector!r}"
        )
    ran = selection["candidates"]
    names = list(candidates or ran)
    missing = sorted(set(names) - set(ran))
    if missing:
        raise ValueError(
            f"Expected candidates from the run's {sorted(ran)}. Received: {missing}"
        )
    pool = {n: ran[n] for n in names}
    if selector in ("ensv", "ensv_rv") and set(names) != set(ran):
        if probabilities is None or not set(names) <= set(probabilities):
            raise ValueError(
                "The 'ensv' selector on a subset of the candidates needs their "
                "target predictions: pass probabilities=result.target_probabilities."
            )
        agreement = ensemble_agreement({n: probabilities[n] for n in names})
        pool = {
            n: {**r, "scores": {**r["scores"], "ensv": agreement[n]}}
            for n, r in pool.items()
        }
    return _choose(pool, selector)
