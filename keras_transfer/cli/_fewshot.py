"""`fewshot`: episodic N-way K-shot accuracy of an encoder with class prototypes.

No training: each episode samples N classes, K support and Q query examples per
class, builds one prototype per class (the mean embedding of its support examples)
and labels each query by its nearest prototype (`fewshot.ProtoNetClassifier`). The
result is the mean query accuracy over episodes and its 95% confidence interval.

```python
from keras_transfer.config import FewShotCommandConfig
from keras_transfer.cli._fewshot import run_fewshot
# run_fewshot(FewShotCommandConfig(backbone="encoder.keras"))  # writes runs/fewshot/
```
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from keras_transfer.cli._data import check_data_config, inspect_source, load_labelled
from keras_transfer.config import (
    ConfigError,
    FewShotCommandConfig,
    ModelConfig,
    check_fields,
    to_dict,
)
from keras_transfer.runs import RunDir

__all__ = ["build_encoder", "run_fewshot"]


def build_encoder(cfg: FewShotCommandConfig, input_shape: tuple) -> Any:
    """Loads `cfg.backbone` and makes its encoder: raw inputs -> pooled `(batch, dim)`.

    Loading (a `.keras` file or a spec, with the CLI's config-field errors) and the
    image check are the CLI's; the encoder itself is `encoders.make_encoder`, the one
    the library's `ProtoNetClassifier` uses (preprocessor -> backbone -> pooling).

    Raises:
        ConfigError: the backbone cannot be loaded or is not an image backbone.
    """
    from keras_transfer.cli._train import load_backbone_from_config
    from keras_transfer.encoders import make_encoder

    mcfg = ModelConfig(backbone=cfg.backbone, backbone_kwargs=dict(cfg.backbone_kwargs))
    bb = load_backbone_from_config(mcfg, input_shape, field="backbone")
    if bb.modality != "image":
        raise ConfigError(
            f"fewshot needs an image backbone. Received: backbone={cfg.backbone!r} "
            f"(modality {bb.modality!r})."
        )
    return make_encoder(bb, input_shape=tuple(input_shape))


def _check(cfg: FewShotCommandConfig) -> list[str]:
    check_data_config(cfg.data)
    names = inspect_source(cfg.data.source)
    f = cfg.fewshot
    rules = (
        ("n_way", f.n_way >= 2, "an int >= 2"),
        ("k_shot", f.k_shot >= 1, "an int >= 1"),
        ("n_query", f.n_query >= 1, "an int >= 1"),
        ("eval_episodes", f.eval_episodes >= 1, "an int >= 1"),
    )
    check_fields("fewshot", f, rules)
    if f.n_way > len(names):
        raise ConfigError(
            f"Invalid value for fewshot.n_way: data.source has {len(names)} classes. "
            f"Received: fewshot.n_way={f.n_way}"
        )
    return names


def run_fewshot(
    cfg: FewShotCommandConfig, *, resume: bool = False, overwrite: bool = False
) -> tuple[RunDir, dict]:
    """Evaluates `cfg.backbone` on N-way K-shot episodes of `cfg.data`.

    Every example of the source (train and validation splits) is used for episodes.
    Writes `<runs_dir>/<name>/metrics.json` and `report/report.html`.

    Returns:
        `(run, metrics)`; metrics holds `accuracy`, `ci95` (half-width), `chance`,
        the episode settings and the number of examples.

    Raises:
        ConfigError: an invalid config, data source or backbone, or fewer than
            `n_way` classes with `k_shot + n_query` examples each.
        RunExistsError: the run exists and neither `resume` nor `overwrite` is set.
    """
    names = _check(cfg)
    if not resume and not overwrite and (Path(cfg.runs_dir) / cfg.name).exists():
        RunDir.create(cfg.runs_dir, cfg.name)  # raises RunExistsError, writes nothing
    from keras_transfer import reports
    from keras_transfer.fewshot import ProtoNetClassifier

    f = cfg.fewshot
    from keras_transfer.data import ImageFiles

    data = load_labelled(cfg.data)
    # a streamed folder stays on disk: each episode decodes its own images
    x = ImageFiles.concatenate([data.x_train, data.x_val])
    y = np.concatenate([data.y_train, data.y_val])
    counts = np.bincount(y, minlength=len(names))
    usable = np.flatnonzero(counts >= f.k_shot + f.n_query)
    if len(usable) < f.n_way:
        raise ConfigError(
            f"Only {len(usable)} classes have k_shot + n_query = "
            f"{f.k_shot + f.n_query} examples (per-class counts: {counts.tolist()}); "
            f"fewshot.n_way={f.n_way} needs {f.n_way}. Lower fewshot.k_shot, "
            "fewshot.n_query or fewshot.n_way, or raise data.limit."
        )
    keep = np.isin(y, usable)
    x, y = x[keep], y[keep]
    encoder = build_encoder(cfg, x.shape[1:])
    run = RunDir.create(
        cfg.runs_dir, cfg.name, config=to_dict(cfg), resume=resume, overwrite=overwrite
    )
    try:
        mean, ci = ProtoNetClassifier(encoder).evaluate_episodes(
            x if isinstance(x, ImageFiles) else x.astype("float32"),
            y,
            n_way=f.n_way,
            k_shot=f.k_shot,
            n_query=f.n_query,
            episodes=f.eval_episodes,
            seed=f.seed,
        )
        metrics = {
            "accuracy": mean,
            "ci95": ci,
            "chance": 1.0 / f.n_way,
            "n_way": f.n_way,
            "k_shot": f.k_shot,
            "n_query": f.n_query,
            "episodes": f.eval_episodes,
            "examples": len(y),
            "classes": len(usable),
        }
        report = reports.Report(f"keras-transfer fewshot: {cfg.name}", run.report_dir)
        report.add_text(
            f"Encoder {cfg.backbone}; data {cfg.data.source} ({len(y)} examples, "
            f"{len(usable)} classes). Prototypes (ProtoNet), no training."
        )
        report.add_table(
            [
                {
                    "setting": f"{f.n_way}-way {f.k_shot}-shot",
                    "episodes": f.eval_episodes,
                    "accuracy": mean,
                    "95% CI +-": ci,
                    "chance": 1.0 / f.n_way,
                }
            ]
        )
        report.save()
        run.finish(metrics)
    except BaseException as err:
        run.fail(err)
        raise
    return run, metrics
