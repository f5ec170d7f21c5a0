"""Sections the library takes as well: augmentation, distillation, few-shot.

Each schema is defined once, here, and imported by both the CLI configs and the
library (`keras_transfer.augment.AugmentationConfig`,
`keras_transfer.distillation.DistillationConfig`, `keras_transfer.fewshot.FewShotConfig`
are these classes), so reading a config file imports no TensorFlow.

Where the CLI exposes a subset, the CLI section is the base class and the library
config extends it with its own fields:

* `AugmentationConfig(AugmentationSection)` adds `value_range` and `seed` (CLI images
  are raw [0, 255] and the CLI's seed is `training.seed`) and checks its values.
* `FewShotConfig(FewShotSection)` adds episodic training (`method`, `episodes`,
  `learning_rate`, Reptile's `inner_steps`, ...); the CLI only evaluates.
* `DistillationSection` is `DistillationConfig`: the same fields in both.

Examples:
```python
from keras_transfer.config.library import AugmentationConfig, AugmentationSection
cfg = AugmentationConfig(flip="horizontal", mixup_alpha=0.2)
assert isinstance(cfg, AugmentationSection) and cfg.mixes_labels
```
"""

from __future__ import annotations

from dataclasses import dataclass

from keras_transfer.config._fields import option

__all__ = [
    "FLIPS",
    "AugmentationConfig",
    "AugmentationSection",
    "DistillationConfig",
    "DistillationSection",
    "FewShotConfig",
    "FewShotSection",
]

FLIPS = ("none", "horizontal", "vertical", "horizontal_and_vertical")


@dataclass
class AugmentationSection:
    """Training-only augmentation and regularisation (off by default).

    The `augmentation` section of `keras-transfer train`. Image layers go inside
    the model and are stripped from the saved model.keras; MixUp/CutMix mix the
    training batches. `AugmentationConfig` adds the library-only fields.
    """

    flip: str = option("none", "Random flips.", choices=FLIPS)
    rotation: float = option(
        0.0, "Random rotation, as a fraction of a full turn (0 = off)."
    )
    zoom: float = option(0.0, "Random zoom factor in [0, 1) (0 = off).")
    translation: float = option(
        0.0, "Random shift, as a fraction of height/width (0 = off)."
    )
    contrast: float = option(0.0, "Random contrast factor in [0, 1] (0 = off).")
    randaugment: bool = option(False, "Apply keras.layers.RandAugment.")
    randaugment_ops: int = option(2, "RandAugment: operations per image.")
    randaugment_factor: float = option(0.5, "RandAugment: magnitude in [0, 1].")
    mixup_alpha: float = option(
        0.0, "MixUp Beta(alpha, alpha) in the data pipeline (0 = off)."
    )
    cutmix: float = option(0.0, "CutMix Beta factor in the data pipeline (0 = off).")
    label_smoothing: float = option(0.0, "Label smoothing in [0, 1) (0 = off).")
    weight_decay: float = option(0.0, "Decoupled weight decay, AdamW (0 = off).")

    def range_checks(self) -> list[tuple[str, bool, str]]:
        """The value ranges of the fields: `(field, ok, accepted)` per field.

        One list for both callers: the train command reports a failure with
        `config.check_fields("augmentation", ...)`, `AugmentationConfig` raises on
        construction.

        Returns:
            A list of `(field name, whether its value is accepted, what is)`.

        Examples:
        ```python
        from keras_transfer.config import AugmentationSection
        bad = [c for c in AugmentationSection(zoom=1.5).range_checks() if not c[1]]
        assert bad == [("zoom", False, "in [0, 1)")]
        ```
        """
        unit = ("in [0, 1)", lambda v: 0 <= v < 1)
        closed = ("in [0, 1]", lambda v: 0 <= v <= 1)
        positive = (">= 0", lambda v: v >= 0)
        rules = {
            "rotation": positive,
            "zoom": unit,
            "translation": unit,
            "contrast": closed,
            "randaugment_ops": (">= 1", lambda v: v >= 1),
            "randaugment_factor": closed,
            "mixup_alpha": positive,
            "cutmix": positive,
            "label_smoothing": unit,
            "weight_decay": positive,
        }
        return [(k, ok(getattr(self, k)), text) for k, (text, ok) in rules.items()]


@dataclass
class AugmentationConfig(AugmentationSection):
    """Training-only augmentation and regularisation options of the library.

    The fields of `AugmentationSection` (the CLI's `augmentation` section) plus
    `value_range` and `seed`; values are checked on construction.

    Args:
        value_range: tuple. Pixel value range of the model's raw inputs. Defaults to
            (0, 255).
        seed: int or None. Seed of the random layers. Defaults to None.

    Raises:
        ValueError: an unknown flip mode or a value outside its range (see
            `range_checks`: e.g. a negative rotation, a zoom or label smoothing
            outside [0, 1)).

    Examples:
    ```python
    from keras_transfer.augment import AugmentationConfig
    cfg = AugmentationConfig(flip="horizontal", rotation=0.1, seed=1)
    assert not cfg.mixes_labels
    ```
    """

    value_range: tuple = option(
        (0, 255), "Pixel value range of the model's raw inputs."
    )
    seed: int | None = option(None, "Seed of the random layers.")

    def __post_init__(self) -> None:
        if self.flip not in FLIPS:
            raise ValueError(
                f"Expected flip to be one of {FLIPS}. Received: flip={self.flip!r}"
            )
        for name, ok, accepted in self.range_checks():
            if not ok:
                raise ValueError(
                    f"Expected {name} {accepted}. Received: {name}={getattr(self, name)}"
                )

    @property
    def mixes_labels(self) -> bool:
        """Whether the data pipeline must mix labels (MixUp or CutMix is on)."""
        return self.mixup_alpha > 0 or self.cutmix > 0


@dataclass
class DistillationConfig:
    """Knowledge distillation of a teacher .keras model into a small student.

    The `distillation` section of `keras-transfer distill` and the settings of
    `keras_transfer.distillation.Distiller` runs (one schema for both).

    Examples:
    ```python
    from keras_transfer.distillation import DistillationConfig
    cfg = DistillationConfig(teacher="teacher.keras", temperature=2.0)
    assert cfg.alpha == 0.1 and cfg.student == ""
    ```
    """

    teacher: str = option("", "Path of the trained teacher model (.keras file).")
    student: str = option(
        "",
        "Backbone spec or .keras feature extractor of the (smaller) student; a "
        "classifier head is added. Empty: a small built-in CNN.",
    )
    student_kwargs: dict = option(
        {}, "Extra keyword arguments of the student's backbone loader."
    )
    temperature: float = option(
        4.0, "Softmax temperature T for soft targets (> 0); loss x T^2."
    )
    alpha: float = option(
        0.1,
        "Weight of the hard-label loss in [0, 1]; the soft-target loss gets 1 - alpha.",
    )
    epochs: int = option(10, "Epochs of distillation.")
    learning_rate: float = option(1e-3, "Adam learning rate of the student.")


#: The CLI's name of the `distillation` section: the same class.
DistillationSection = DistillationConfig


@dataclass
class FewShotSection:
    """Episodic N-way K-shot evaluation with prototypes (ProtoNet, no training).

    The `fewshot` section of `keras-transfer fewshot`; `FewShotConfig` adds the
    episodic training fields of the library.
    """

    n_way: int = option(5, "Classes per episode (N).")
    k_shot: int = option(5, "Support examples per class.")
    n_query: int = option(5, "Query examples per class.")
    eval_episodes: int = option(200, "Evaluation episodes (for the 95% CI).")
    seed: int = option(0, "Seed of episode sampling.")


@dataclass
class FewShotConfig(FewShotSection):
    """Settings of episodic few-shot training and evaluation.

    The fields of `FewShotSection` (evaluation, the CLI's `fewshot` section) plus
    episodic training with ProtoNet or Reptile.

    Examples:
    ```python
    from keras_transfer.fewshot import FewShotConfig
    cfg = FewShotConfig(method="reptile", k_shot=1)
    assert cfg.inner_steps == 5 and cfg.n_way == 5
    ```
    """

    method: str = option(
        "protonet", "Few-shot method.", choices=("protonet", "reptile")
    )
    episodes: int = option(200, "Training episodes (meta-iterations).")
    learning_rate: float = option(1e-3, "Adam learning rate of episodic training.")
    inner_steps: int = option(5, "Reptile: inner SGD steps.")
    inner_learning_rate: float = option(0.02, "Reptile: inner SGD learning rate.")
    meta_step_size: float = option(0.1, "Reptile: outer step size epsilon.")
