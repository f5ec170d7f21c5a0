"""Knowledge distillation: train a small student on a frozen teacher's soft targets.

``Distiller`` is a ``keras.Model`` that wraps a teacher and a student. It trains with
plain ``model.fit``: the loss is computed in ``compute_loss`` (so Keras' own loss
tracker logs it, which a hand-written ``train_step`` returning ``{"loss": ...}`` does
not in Keras 3), and the two parts of the loss are logged by their own metric
trackers as ``hard_loss`` and ``distillation_loss``. After training,
``distiller.student`` is an ordinary model that can be saved and exported on its own.

The loss (Hinton et al. 2015) is::

    loss = alpha * CE(y, softmax(s))
           + (1 - alpha) * T**2 * KL(softmax(t / T) || softmax(s / T))

where ``s`` and ``t`` are student and teacher logits. Models that end in a softmax
(like the ones ``build_classifier`` makes) are handled too: their log-probabilities are
logits up to a constant, which softmax ignores.

Examples:
```python
import numpy as np
from keras_transfer._backend import keras
from keras_transfer.distillation import Distiller

teacher = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
student = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
distiller = Distiller(teacher, student, temperature=4.0, alpha=0.1)
distiller.compile(optimizer="adam", metrics=["accuracy"])
x, y = np.random.rand(8, 4).astype("float32"), np.arange(8) % 3
history = distiller.fit(x, y, epochs=1, verbose=0)
assert history.history["loss"][0] > 0
small = distiller.student  # export this one
```

References:
    Hinton, Vinyals and Dean 2015, "Distilling the Knowledge in a Neural Network",
    arXiv:1503.02531.
"""

from __future__ import annotations

from typing import Any

from keras_transfer._backend import keras
from keras_transfer.config.library import DistillationConfig
from keras_transfer.heads import ends_in_softmax

__all__ = ["DistillationConfig", "Distiller", "distillation_loss", "ends_in_softmax"]

_EPS = 1e-7


def _to_logits(outputs: Any, probabilities: bool) -> Any:
    if probabilities:
        return keras.ops.log(keras.ops.clip(outputs, _EPS, 1.0))
    return outputs


def distillation_loss(
    teacher_logits: Any, student_logits: Any, temperature: float
) -> Any:
    """Soft-target loss ``T**2 * KL(softmax(t/T) || softmax(s/T))``, mean over batch.

    Args:
        teacher_logits: tensor of shape ``(batch, classes)``.
        student_logits: tensor of shape ``(batch, classes)``.
        temperature: float. Softmax temperature ``T > 0``.

    Returns:
        A scalar tensor.
    """
    ops = keras.ops
    t = ops.softmax(teacher_logits / temperature, axis=-1)
    log_t = ops.log_softmax(teacher_logits / temperature, axis=-1)
    log_s = ops.log_softmax(student_logits / temperature, axis=-1)
    kl = ops.sum(t * (log_t - log_s), axis=-1)
    return ops.mean(kl) * (temperature**2)


def _symbolic_shape(model: Any, kind: str) -> tuple | None:
    """The per-example shape of a functional model's single input or output."""
    try:
        tensors = model.inputs if kind == "input" else model.outputs
    except (AttributeError, ValueError):
        return None
    if not tensors or len(tensors) != 1:
        return None
    return tuple(tensors[0].shape[1:])


def _check_pair(teacher: Any, student: Any) -> None:
    """Refuses a student that cannot learn from the teacher: another number of
    classes, or inputs of another shape (Keras would fail inside the loss)."""
    t_out, s_out = (
        _symbolic_shape(teacher, "output"),
        _symbolic_shape(student, "output"),
    )
    if (
        t_out
        and s_out
        and None not in (t_out[-1], s_out[-1])
        and t_out[-1] != s_out[-1]
    ):
        raise ValueError(
            "Expected a student with as many outputs (classes) as the teacher. "
            f"Received: teacher outputs {t_out[-1]}, student outputs {s_out[-1]}."
        )
    t_in, s_in = _symbolic_shape(teacher, "input"), _symbolic_shape(student, "input")

    def fits(a: Any, b: Any) -> bool:
        return a is None or b is None or a == b

    if t_in and s_in and (len(t_in) != len(s_in) or not all(map(fits, t_in, s_in))):
        raise ValueError(
            "Expected the student to take the teacher's inputs. Received: teacher "
            f"inputs of shape {t_in} per example, student inputs of shape {s_in}."
        )


@keras.saving.register_keras_serializable(package="keras_transfer")
class Distiller(keras.Model):
    """Trains ``student`` to match a frozen ``teacher`` (Hinton et al. 2015).

    ``call`` returns the student's output, so compiled metrics (``accuracy``) and
    ``evaluate`` measure the student. ``compile`` takes an optimizer and metrics;
    the loss is fixed by ``temperature`` and ``alpha`` (do not pass ``loss``).

    Args:
        teacher: keras.Model. A trained classifier; frozen (``trainable=False``).
        student: keras.Model. The classifier to train, same number of classes.
        temperature: float. Softmax temperature ``T > 0``. Defaults to 4.0.
        alpha: float in ``[0, 1]``. Weight of the hard-label cross-entropy; the
            soft-target loss gets ``1 - alpha``. Defaults to 0.1.
        teacher_outputs: ``"auto"``, ``"logits"`` or ``"probabilities"``. What the
            teacher returns; ``"auto"`` looks for a final softmax. Defaults to "auto".
        student_outputs: same for the student. Defaults to "auto".
        **kwargs: passed to ``keras.Model``.

    Raises:
        ValueError: for a temperature <= 0, alpha outside [0, 1] or an unknown
            outputs kind.

    Examples:
    ```python
    import numpy as np
    import keras
    from keras_transfer.distillation import Distiller
    teacher = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, "softmax")])
    student = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    distiller = Distiller(teacher, student, temperature=4.0, alpha=0.1)
    distiller.compile(optimizer="adam", metrics=["accuracy"])
    x, y = np.random.rand(8, 4).astype("float32"), np.arange(8) % 3
    distiller.fit(x, y, epochs=1, verbose=0)
    distiller.student.save("student.keras")  # an ordinary model
    ```
    """

    def __init__(
        self,
        teacher: Any,
        student: Any,
        *,
        temperature: float = 4.0,
        alpha: float = 0.1,
        teacher_outputs: str = "auto",
        student_outputs: str = "auto",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not temperature > 0:
            raise ValueError(
                f"Expected temperature to be > 0. Received: temperature={temperature}"
            )
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"Expected alpha in [0, 1]. Received: alpha={alpha}")
        for name, value in (
            ("teacher_outputs", teacher_outputs),
            ("student_outputs", student_outputs),
        ):
            if value not in ("auto", "logits", "probabilities"):
                raise ValueError(
                    f"Expected {name} to be 'auto', 'logits' or 'probabilities'. "
                    f"Received: {name}={value!r}"
                )
        _check_pair(teacher, student)
        self.teacher = teacher
        self.student = student
        self.teacher.trainable = False
        self.temperature = float(temperature)
        self.alpha = float(alpha)
        self.teacher_outputs = teacher_outputs
        self.student_outputs = student_outputs
        self._teacher_probs = self._resolve(teacher_outputs, teacher)
        self._student_probs = self._resolve(student_outputs, student)
        self.hard_loss_tracker = keras.metrics.Mean(name="hard_loss")
        self.distillation_loss_tracker = keras.metrics.Mean(name="distillation_loss")

    @staticmethod
    def _resolve(kind: str, model: Any) -> bool:
        if kind == "auto":
            return ends_in_softmax(model)
        return kind == "probabilities"

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        return self.student(inputs, training=training)

    def compile(self, optimizer: Any = "adam", metrics: Any = None, **kwargs) -> None:
        """Configures training; the loss is set by the distiller itself.

        Args:
            optimizer: a Keras optimizer or its name. Defaults to "adam".
            metrics: metrics of the student's output (e.g. ``["accuracy"]``).
            **kwargs: other ``keras.Model.compile`` arguments, except ``loss``.

        Raises:
            ValueError: when ``loss`` is passed.
        """
        if kwargs.get("loss") is not None:
            raise ValueError(
                "Distiller computes its own loss from temperature and alpha; do not "
                f"pass loss. Received: loss={kwargs['loss']!r}"
            )
        kwargs.pop("loss", None)
        super().compile(optimizer=optimizer, metrics=metrics, **kwargs)

    def compute_loss(
        self, x=None, y=None, y_pred=None, sample_weight=None, training=True
    ):
        ops = keras.ops
        teacher_out = self.teacher(x, training=False)
        t_logits = ops.stop_gradient(_to_logits(teacher_out, self._teacher_probs))
        s_logits = _to_logits(y_pred, self._student_probs)
        y = ops.convert_to_tensor(y)
        if len(y.shape) == len(s_logits.shape) and y.shape[-1] == s_logits.shape[-1]:
            hard = keras.losses.categorical_crossentropy(y, s_logits, from_logits=True)
        else:
            hard = keras.losses.sparse_categorical_crossentropy(
                y, s_logits, from_logits=True
            )
        hard = ops.mean(hard)
        soft = distillation_loss(t_logits, s_logits, self.temperature)
        self.hard_loss_tracker.update_state(hard)
        self.distillation_loss_tracker.update_state(soft)
        loss = self.alpha * hard + (1.0 - self.alpha) * soft
        if self.losses:
            loss = loss + ops.sum(self.losses)
        return loss

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {
                "teacher": keras.saving.serialize_keras_object(self.teacher),
                "student": keras.saving.serialize_keras_object(self.student),
                "temperature": self.temperature,
                "alpha": self.alpha,
                "teacher_outputs": self.teacher_outputs,
                "student_outputs": self.student_outputs,
            }
        )
        return config

    @classmethod
    def from_config(cls, config: dict) -> Distiller:
        config = dict(config)
        config["teacher"] = keras.saving.deserialize_keras_object(config["teacher"])
        config["student"] = keras.saving.deserialize_keras_object(config["student"])
        return cls(**config)
