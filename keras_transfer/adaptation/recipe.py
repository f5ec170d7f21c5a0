"""The default adaptation recipe as a callback: source warm-up, λ ramp, collapse guard.

`AdaptationController` replaces a λ schedule that starts at step 0 of ``fit`` (which,
on an encoder that plateaus before it "takes off", lets the alignment term stop the
classifier from ever starting) with three phases decided by held-out SOURCE accuracy:

1. **warm-up**: alignment weight 0 until the held-out source accuracy stops improving
   (and is above chance), or a cap is reached;
2. **ramp**: λ follows ``λ_max (2 / (1 + exp(-γ p)) - 1)`` over the remaining steps;
3. **guard** (every epoch after warm-up): if held-out source accuracy falls more than
   ``tolerance`` below the warm-up's best, the last good weights are restored and
   ``λ_max`` is halved. The events are logged and kept in ``controller.events``.

No target label is read anywhere.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from keras_transfer._backend import keras
from keras_transfer.adaptation.predict import predict_eagerly
from keras_transfer.adaptation.schedules import _schedulable_layers, dann_lambda


def _source_accuracy(model: Any, x: Any, y: np.ndarray, batch_size: int) -> float:
    probs = predict_eagerly(model, x, batch_size)
    return float(np.mean(np.argmax(probs, axis=-1) == y))


class AdaptationController(keras.callbacks.Callback):
    """Source warm-up, then a λ ramp, with a collapse guard (see the module doc).

    Args:
        source_validation: tuple ``(x, y)``. Held-out labelled SOURCE data.
        lambda_max: float. λ reached at the end of the ramp. Defaults to 1.0.
        warmup: "auto" or int. "auto" ends the warm-up when held-out source accuracy
            has not improved by ``min_delta`` for ``patience`` epochs (once above
            chance), at most ``max_warmup_fraction`` of the epochs; an int is a fixed
            number of warm-up epochs (0: no warm-up). Defaults to "auto".
        patience: int. See ``warmup``. Defaults to 2.
        min_delta: float. See ``warmup``. Defaults to 0.005.
        max_warmup_fraction: float. Cap of the automatic warm-up. Defaults to 0.5.
        gamma: float. Ramp steepness (Ganin et al. use 10). Defaults to 10.0.
        tolerance: float. Allowed drop of held-out source accuracy below the warm-up
            best before the guard acts; None turns the guard off. Defaults to 0.03.
        num_classes: int or None. For the "above chance" test. Defaults to None
            (inferred from the labels).
        batch_size: int. Prediction batch size. Defaults to 256.
        verbose: int. 1 prints phase changes and guard events. Defaults to 1.
        stop_after_warmup: bool. Stop ``fit`` when the warm-up ends (`adapt` runs the
            warm-up once and branches every candidate method from it).
            Defaults to False.
        label: str or None. Named after ``[adapt]`` in every printed line (`adapt`
            passes the candidate's method name, so a guard event says whose it
            is). Defaults to None.

    Examples:
    ```python
    import numpy as np
    from keras_transfer._backend import keras
    from keras_transfer.adaptation import AdaptationController, DomainAdaptationModel
    from keras_transfer.data import domain_pairs
    rng = np.random.default_rng(0)
    xs, ys = rng.normal(size=(64, 4)).astype("float32"), rng.integers(0, 2, 64)
    xt = rng.normal(size=(64, 4)).astype("float32") + 0.5
    encoder = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, "relu")])
    model = DomainAdaptationModel(encoder, num_classes=2, method="mcc")
    model.compile(optimizer="adam")
    controller = AdaptationController((xs[:16], ys[:16]), warmup=1, verbose=0)
    model.fit(domain_pairs((xs, ys), xt, 16), epochs=3, callbacks=[controller],
              verbose=0)
    assert controller.warmup_epochs == 1
    ```
    """

    def __init__(
        self,
        source_validation: tuple[Any, Any],
        *,
        lambda_max: float = 1.0,
        warmup: Any = "auto",
        patience: int = 2,
        min_delta: float = 0.005,
        max_warmup_fraction: float = 0.5,
        gamma: float = 10.0,
        tolerance: float | None = 0.03,
        num_classes: int | None = None,
        batch_size: int = 256,
        verbose: int = 1,
        stop_after_warmup: bool = False,
        label: str | None = None,
    ) -> None:
        super().__init__()
        if not (warmup == "auto" or (isinstance(warmup, int) and warmup >= 0)):
            raise ValueError(
                f"Expected warmup to be 'auto' or an int >= 0. Received: warmup={warmup!r}"
            )
        if lambda_max < 0 or not 0 < max_warmup_fraction <= 1 or patience < 1:
            raise ValueError(
                "Expected lambda_max >= 0, 0 < max_warmup_fraction <= 1 and "
                f"patience >= 1. Received: lambda_max={lambda_max}, "
                f"max_warmup_fraction={max_warmup_fraction}, patience={patience}"
            )
        x, y = source_validation
        self.x_val, self.y_val = x, np.asarray(y).reshape(-1).astype(int)
        self.lambda_max = float(lambda_max)
        self.warmup = warmup
        self.patience = int(patience)
        self.min_delta = float(min_delta)
        self.max_warmup_fraction = float(max_warmup_fraction)
        self.gamma = float(gamma)
        self.tolerance = tolerance
        k = num_classes or int(self.y_val.max()) + 1
        self.chance = 1.0 / max(k, 2)
        self.batch_size = int(batch_size)
        self.verbose = int(verbose)
        self.stop_after_warmup = bool(stop_after_warmup)
        self.label = label
        self.events: list[dict] = []
        self.source_accuracies: list[float] = []
        self.warmup_epochs: int | None = None
        self.best_warmup_accuracy = 0.0
        self.value = 0.0
        self._last_ok = True
        self._good_weights = None
        self._good_epoch: int | None = None

    # ----------------------------------------------------------------- state
    def state(self) -> dict:
        """JSON-able state (for resuming an interrupted run)."""
        return {
            "warmup_epochs": self.warmup_epochs,
            "best_warmup_accuracy": self.best_warmup_accuracy,
            "lambda_max": self.lambda_max,
            "events": self.events,
            "source_accuracies": self.source_accuracies,
        }

    def load_state(self, state: dict) -> None:
        """Restores what `state` returned."""
        self.warmup_epochs = state.get("warmup_epochs")
        self.best_warmup_accuracy = float(state.get("best_warmup_accuracy", 0.0))
        self.lambda_max = float(state.get("lambda_max", self.lambda_max))
        self.events = list(state.get("events", []))
        self.source_accuracies = list(state.get("source_accuracies", []))

    def _say(self, text: str) -> None:
        if self.verbose:
            prefix = f"[adapt] {self.label}: " if self.label else "[adapt] "
            print(f"{prefix}{text}", flush=True)

    # ------------------------------------------------------------- callbacks
    def on_train_begin(self, logs=None):
        self._layers = _schedulable_layers(self.model)
        self._epochs = int(self.params.get("epochs") or 1)
        self._steps = int(self.params.get("steps") or 0)
        if not self._steps:
            raise ValueError(
                "AdaptationController needs datasets of known length: use "
                "keras_transfer.data.domain_pairs or pass steps_per_epoch."
            )
        if isinstance(self.warmup, int) and self.warmup_epochs is None:
            self.warmup_epochs = min(self.warmup, self._epochs)
        self._epoch = 0
        self._set_lambda(0.0)
        if self._good_weights is None:
            self._good_weights = [np.array(w) for w in self.model.get_weights()]
            self._good_epoch = 0

    def _set_lambda(self, value: float) -> None:
        self.value = float(value)
        for layer in self._layers:
            layer.lambda_ = self.value

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        self._batch = 0

    def on_train_batch_begin(self, batch, logs=None):
        if self.warmup_epochs is None or self._epoch < self.warmup_epochs:
            if self.value:
                self._set_lambda(0.0)
            return
        ramp_steps = max((self._epochs - self.warmup_epochs) * self._steps, 1)
        done = (self._epoch - self.warmup_epochs) * self._steps + batch
        self._set_lambda(dann_lambda(done / ramp_steps, self.gamma, self.lambda_max))

    def on_epoch_end(self, epoch, logs=None):
        acc = _source_accuracy(self.model, self.x_val, self.y_val, self.batch_size)
        self.source_accuracies.append(acc)
        if logs is not None:
            logs["lambda"] = self.value
            logs["source_val_accuracy"] = acc
        if self.warmup_epochs is None or epoch < self.warmup_epochs:
            self._warmup_epoch_end(epoch, acc)
        else:
            self._guard(epoch, acc)

    def _warmup_epoch_end(self, epoch: int, acc: float) -> None:
        recent = self.source_accuracies[-(self.patience + 1) :]
        self.best_warmup_accuracy = float(np.mean(recent))
        self._remember(epoch)
        if self.warmup_epochs is not None:  # a fixed warm-up
            if epoch + 1 >= self.warmup_epochs and self.stop_after_warmup:
                self.model.stop_training = True
            return
        cap = max(1, math.floor(self.max_warmup_fraction * self._epochs))
        history = self.source_accuracies
        plateau = (
            len(history) > self.patience
            and max(history[-self.patience :])
            <= max(history[: -self.patience]) + self.min_delta
            and acc > 1.5 * self.chance
        )
        if plateau or epoch + 1 >= cap:
            self.warmup_epochs = epoch + 1
            why = "source accuracy stopped improving" if plateau else "warm-up cap"
            self._say(
                f"warm-up ends after epoch {epoch + 1} ({why}; held-out source "
                f"accuracy {acc:.3f}); alignment ramps to λ={self.lambda_max:g}"
            )
            self.events.append(
                {"epoch": epoch + 1, "event": "warmup_end", "reason": why}
            )
            if self.stop_after_warmup:
                self.model.stop_training = True

    def _remember(self, epoch: int) -> None:
        self._good_weights = [np.array(w) for w in self.model.get_weights()]
        self._good_epoch = epoch + 1

    def floor(self) -> float:
        """The accuracy below which an epoch counts as a collapse (λ backs off).

        ``reference - max(tolerance, 2 * standard error)``: with a small held-out
        split one example is worth more than ``tolerance``, and sampling noise must
        not read as a collapse.
        """
        ref = self.best_warmup_accuracy
        n = max(len(self.y_val), 1)
        noise = 2.0 * math.sqrt(max(ref * (1.0 - ref), 1.0 / n) / n)
        return ref - max(float(self.tolerance or 0.0), noise)

    def strict_floor(self) -> float:
        """``reference - tolerance``: the accuracy a kept epoch must reach.

        Epochs between the two floors go on training (λ unchanged) but are not
        kept: if the last epoch is below this floor, the last epoch above it is
        restored when training ends.
        """
        return self.best_warmup_accuracy - float(self.tolerance or 0.0)

    def _guard(self, epoch: int, acc: float) -> None:
        if self.tolerance is None or not self._layers:
            return
        self._last_ok = acc >= self.strict_floor()
        if self._last_ok:
            self._remember(epoch)
            return
        floor = self.floor()
        if acc >= floor:
            return
        self.lambda_max /= 2.0
        restored = self._good_epoch
        if self._good_weights is not None:
            self.model.set_weights(self._good_weights)
            self._last_ok = True
        self.events.append(
            {
                "epoch": epoch + 1,
                "event": "collapse_guard",
                "source_accuracy": acc,
                "warmup_source_accuracy": self.best_warmup_accuracy,
                "restored_epoch": restored,
                "lambda_max": self.lambda_max,
            }
        )
        self._say(
            f"collapse guard at epoch {epoch + 1}: held-out source accuracy {acc:.3f} "
            f"< {floor:.3f} (warm-up {self.best_warmup_accuracy:.3f}); restored "
            f"the weights of epoch {restored} and halved λ_max to {self.lambda_max:g}"
        )

    def on_train_end(self, logs=None):
        if self.warmup_epochs is None:
            self.warmup_epochs = self._epochs
            return
        if not getattr(self, "_last_ok", True) and self._good_weights is not None:
            self.model.set_weights(self._good_weights)
            self.events.append(
                {
                    "epoch": self._epoch + 1,
                    "event": "final_restore",
                    "source_accuracy": self.source_accuracies[-1],
                    "restored_epoch": self._good_epoch,
                }
            )
            self._say(
                f"the last epoch's held-out source accuracy "
                f"{self.source_accuracies[-1]:.3f} is below {self.strict_floor():.3f}:"
                f" restored the weights of epoch {self._good_epoch}"
            )
