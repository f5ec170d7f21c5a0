"""KerasTuner search over learning rate, unfreeze depth, dropout and head width.

`TransferHyperModel` builds a fresh keras-transfer model per trial (a classifier from
`build_classifier`, or a `DANN`); `make_tuner` is a thin factory over KerasTuner's
tuners, which also runs one search on many machines (KerasTuner's chief/worker
mode, see `distributed_search`); `search_summary`/`format_summary` tabulate the
trials; `retrain_best` retrains the best configuration on train+validation and can
export it.

Every hyperparameter argument accepts: None (the default search range), a scalar
(fixed: ``hp.Fixed``), a tuple ``(min, max)`` or ``(min, max, step)`` (a range), or a
list (``hp.Choice``).

Modules, one job each: ``hypermodel`` (`TransferHyperModel`), ``cached`` (depth-0
trials on cached features), ``tuners`` (`make_tuner`), ``distributed`` (the
chief/worker environment), ``results`` (summaries, `retrain_best`).
"""

from keras_transfer.tuning.distributed import SearchRole, distributed_search
from keras_transfer.tuning.hypermodel import TransferHyperModel
from keras_transfer.tuning.results import format_summary, retrain_best, search_summary
from keras_transfer.tuning.tuners import KNOWN_OBJECTIVES, TUNERS, make_tuner

__all__ = [
    "KNOWN_OBJECTIVES",
    "TUNERS",
    "SearchRole",
    "TransferHyperModel",
    "distributed_search",
    "format_summary",
    "make_tuner",
    "retrain_best",
    "search_summary",
]
