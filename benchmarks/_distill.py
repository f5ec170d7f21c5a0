"""The ``distilled`` row of `benchmarks/domain_adaptation.py` (benchmark only).

`auto`'s (EnsV's) choice trained further on the candidates' ensemble's soft target
predictions: the rule of docs/domain_adaptation.md, "Distilling the ensemble into
one model (stop 27)". Its claims D1/D2 failed on the blind pairs, so it is not an
`adapt` selector; it stays here so that the results file can be reproduced.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from keras_transfer._backend import keras
from keras_transfer.adaptation.model import compile_for_evaluation

#: The student's learning rate as a fraction of the run's (a fresh Adam takes steps
#: of about its learning rate in every coordinate; a tenth keeps the student near
#: the candidate it starts from).
DISTILL_LEARNING_RATE_FACTOR = 0.1


def distill_epochs(epochs: int) -> int:
    """Epochs of the distillation phase for an `adapt` run of ``epochs``: a quarter
    of them, at least one (5 for the default 20)."""
    return max(1, round(epochs / 4))


def distill_ensemble(
    student: Any,
    source: tuple,
    target: Any,
    teacher_probabilities: Any,
    *,
    epochs: int = 5,
    batch_size: int = 32,
    learning_rate: float = 1e-4,
    seed: int = 0,
    verbose: int = 0,
) -> Any:
    """Trains ``student`` on the labelled source and the teacher's soft target labels.

    One cross-entropy over the union of the two sets, shuffled together: the source
    examples with their one-hot labels, the target examples with the teacher's
    class probabilities (offline knowledge distillation, Hinton et al. 2015, at
    temperature 1). No target label is read. The student is trained in place.

    Args:
        student: keras Model mapping inputs to class probabilities (softmax), e.g.
            ``result.candidate_model(name)`` of an `adapt` run.
        source: tuple ``(x, y)`` of labelled source arrays (integer labels).
        target: array of unlabelled target inputs.
        teacher_probabilities: array ``(len(target), num_classes)``, e.g. the mean
            of `adapt`'s candidates' ``target_probabilities``.
        epochs: int. Passes over the union. Defaults to 5.
        batch_size: int. Defaults to 32.
        learning_rate: float. Adam's learning rate. Defaults to 1e-4.
        seed: int. Shuffling seed. Defaults to 0.
        verbose: int. ``fit``'s verbosity. Defaults to 0.

    Returns:
        The student, compiled with accuracy (as `adapt`'s inference models are).

    Raises:
        ValueError: teacher probabilities whose shape does not match the target and
            the student's output, or ``epochs`` below 1.
    """
    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(
            f"Expected epochs to be an int >= 1. Received: epochs={epochs}"
        )
    xs, ys = source
    teacher = np.asarray(teacher_probabilities, "float32")
    k = int(student.outputs[0].shape[-1])
    if teacher.shape != (len(target), k):
        raise ValueError(
            "Expected teacher_probabilities of shape (len(target), num_classes) = "
            f"{(len(target), k)}. Received: shape {teacher.shape}"
        )
    labels = keras.utils.to_categorical(np.asarray(ys).reshape(-1), k).astype("float32")
    x = np.concatenate([np.asarray(xs), np.asarray(target)])
    y = np.concatenate([labels, teacher])
    keras.utils.set_random_seed(seed)
    student.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=keras.losses.CategoricalCrossentropy(),
    )
    student.fit(
        x, y, batch_size=batch_size, epochs=epochs, shuffle=True, verbose=verbose
    )
    return compile_for_evaluation(student)
