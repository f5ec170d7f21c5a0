"""`export`: one verified export per quantization, plus a size/latency report.

Calibration and verification use the model's own data: when `model_path` lies in a
run directory (`runs/<name>/model.keras` next to its `config.yaml`), the run's
training data calibrate int8 and its validation data verify every export, read at
the model's input size. Everything is written to a temporary sibling of the output
folder and moved into place only when every export passed, so a failed export
leaves nothing behind; exports of other quantizations already in the folder stay,
and `summary.json` keeps their rows.

(Over 400 lines on purpose: choosing the calibration and verification data -- the
run's own, an adapted run's labelled or unlabelled target, or `representative` --
and the export loop that uses them are one decision path.)
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from keras_transfer.cli._data import (
    check_data_config,
    is_unlabelled,
    load_labelled,
    load_unlabelled,
    model_image_size,
    resolve_image_size,
    run_config,
)
from keras_transfer.config import (
    QUANTIZATIONS,
    ConfigError,
    DataConfig,
    ExportConfig,
    from_dict,
)

_REPORT_FILES = ("report.html", "export_summary.png", "summary.json")


def _check(cfg: ExportConfig) -> list[str]:
    from keras_transfer.saving import check_model_file

    try:
        check_model_file(cfg.model_path)
    except (OSError, ValueError) as err:
        raise ConfigError(
            f"Invalid value for model_path={cfg.model_path!r}: {err}"
        ) from err
    quants = [str(q) for q in cfg.quantization] or ["float32"]
    if cfg.format == "saved_model" and cfg.quantization == ExportConfig().quantization:
        quants = ["float32"]  # the default list is TFLite's; SavedModel is float32
    bad = [q for q in quants if q not in QUANTIZATIONS]
    if bad:
        raise ConfigError(
            f"Invalid value for quantization: expected items of {list(QUANTIZATIONS)}."
            f" Received: quantization={cfg.quantization!r}"
        )
    if cfg.format == "saved_model" and quants != ["float32"]:
        raise ConfigError(
            "SavedModel export is float32 only; set quantization: [float32] or "
            f"format: tflite. Received: quantization={cfg.quantization!r}"
        )
    budget = cfg.selective_size_budget
    if budget is not None and not budget >= 0:
        raise ConfigError(
            "Invalid value for selective_size_budget: expected a number >= 0 (0.25: "
            f"+25% over the full int8 file) or null. Received: selective_size_budget="
            f"{budget!r}"
        )
    agreement = cfg.min_agreement
    if agreement is not None and not 0.0 <= agreement <= 1.0:
        raise ConfigError(
            "Invalid value for min_agreement: expected a number in [0, 1] or null "
            f"(the defaults). Received: min_agreement={agreement!r}"
        )
    if cfg.representative.source:
        check_data_config(cfg.representative, "representative", model_size=True)
    return list(dict.fromkeys(quants))


def _leaf(fmt: str, quantization: str) -> str:
    return fmt if fmt == "saved_model" else f"tflite-{quantization}"


def _check_output(out: Path, leaves: list[str], overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise ConfigError(
            f"output={str(out)!r} is an existing file; exports are written into a "
            "folder. Set output to a folder path (or leave it empty for "
            "<model folder>/export/)."
        )
    existing = [str(out / leaf) for leaf in leaves if (out / leaf).exists()]
    if existing and not overwrite:
        raise ConfigError(
            f"Export already exists: {', '.join(existing)}. Add --set overwrite=true "
            "to replace it (other exports in that folder are kept), or set output "
            "to another folder."
        )


def _run_data(model_path: str, keys: tuple = ("data", "source")) -> tuple | None:
    """The labelled data section of the model's run (train/tune/distill: `data`,
    adapt: `source`), or None when the model is not in a run directory."""
    config = run_config(model_path)
    if not config:
        return None
    for key in keys:
        section = config.get(key)
        if isinstance(section, dict) and section.get("source"):
            known = {f.name for f in dataclasses.fields(DataConfig)}
            section = {k: v for k, v in section.items() if k in known}
            try:
                data = from_dict(DataConfig, section, f"{key}.")
            except ConfigError:
                return None
            where = Path(model_path).resolve().parent / "config.yaml"
            return data, f"the run's data ({key}.source={data.source!r} in {where})"
    return None


def representative_config(
    cfg: ExportConfig, model: Any, model_size: int | None
) -> tuple[DataConfig, str]:
    """The data that calibrate and verify the export, and where it comes from.

    In order: `representative.source` when set; else the training data of the run
    directory holding the model; else the built-in digits, only when the model takes
    3-channel square images and predicts 10 classes.

    Raises:
        ConfigError: nothing fits (the message asks for `representative.source`), or
            an explicit `representative.image_size` that differs from the model's.
    """
    rep = cfg.representative
    if rep.source:
        origin = f"representative.source={rep.source!r}"
        return resolve_image_size(
            rep, model_size, "representative.image_size", cfg.model_path
        ), origin
    found = _run_data(cfg.model_path)
    if found is not None:
        data, origin = found
        data = _read_like(data, rep)
        return resolve_image_size(
            data, model_size, "representative.image_size", cfg.model_path
        ), origin
    shape = getattr(model, "input_shape", None)
    classes = getattr(model, "output_shape", (None,))[-1]
    if model_size is not None and shape[-1] == 3 and classes == 10:
        data = dataclasses.replace(rep, source="digits")
        data = resolve_image_size(
            data, model_size, "representative.image_size", cfg.model_path
        )
        return data, "the built-in digits (no run directory next to the model)"
    raise ConfigError(
        f"No data to calibrate and verify {cfg.model_path!r}: it is not in a run "
        "directory (no config.yaml next to it) and does not take the built-in "
        f"digits (input {shape}, {classes} classes). Set representative.source to "
        "a folder of images or a .npz like the model's training data."
    )


def target_config(
    cfg: ExportConfig, rep_cfg: DataConfig
) -> tuple[DataConfig, str] | None:
    """The target domain data of an `adapt` run (its `target` section), read like
    the source, or None for other runs or when `representative.source` is set."""
    if cfg.representative.source:
        return None
    found = _run_data(cfg.model_path, keys=("target",))
    if found is None:
        return None
    data, origin = found
    return _read_like(data, rep_cfg), origin


def _read_like(data: DataConfig, rep: DataConfig) -> DataConfig:
    """A run's data section, read at the representative section's image size and
    batch size, every sample (no ``limit``), skipping corrupt files when either
    asks to."""
    return dataclasses.replace(
        data,
        image_size=rep.image_size,
        limit=None,
        batch_size=rep.batch_size,
        skip_corrupt=data.skip_corrupt or rep.skip_corrupt,
    )


def _mix(
    a: tuple[np.ndarray, np.ndarray],
    b: tuple[np.ndarray, np.ndarray],
    limit: int,
    seed: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Up to `limit` examples, half drawn at random from each of `a` and `b` (the
    other fills in when one is short)."""
    n_b = min(len(b[0]), limit // 2)
    n_a = min(len(a[0]), limit - n_b)
    n_b = min(len(b[0]), limit - n_a)
    xa, ya = sample(*a, n_a, seed)
    xb, yb = sample(*b, n_b, seed + 100)
    return np.concatenate([xa, xb]), np.concatenate([ya, yb])


def sample(
    x: np.ndarray, y: np.ndarray, limit: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Up to `limit` examples drawn at random (seeded) across the whole data."""
    if len(x) <= limit:
        return x, y
    index = np.sort(np.random.default_rng(seed).choice(len(x), limit, replace=False))
    return x[index], y[index]


def _check_data(model: Any, x: np.ndarray, names: list[str], origin: str) -> None:
    expected = tuple(getattr(model, "input_shape", (None,))[1:])
    if len(expected) == x.ndim - 1 and not all(
        e is None or e == s for e, s in zip(expected, x.shape[1:])
    ):
        raise ConfigError(
            f"The representative data ({origin}) have shape {tuple(x.shape[1:])} but "
            f"the model takes {expected}. Set representative.source to data of the "
            "model's input shape."
        )
    classes = getattr(model, "output_shape", (None,))[-1]
    if classes not in (None, 1) and classes != len(names):
        raise ConfigError(
            f"The representative data ({origin}) have {len(names)} classes but the "
            f"model predicts {classes}. Set representative.source to the model's "
            "data."
        )


def _merge_rows(out: Path, rows: list[dict]) -> list[dict]:
    """Rows of `summary.json` already in `out` for other exports, plus `rows`."""
    path = out / "summary.json"
    new = {Path(r["path"]).name for r in rows}
    kept = []
    if path.is_file():
        try:
            old = json.loads(path.read_text())
        except ValueError:
            old = []
        for row in old if isinstance(old, list) else []:
            leaf = Path(str(row.get("path", ""))).name
            if leaf and leaf not in new and (out / leaf).exists():
                kept.append(row)
    order = {q: i for i, q in enumerate(QUANTIZATIONS)}
    return sorted(
        kept + rows,
        key=lambda r: (r.get("format") != "saved_model", order.get(r["quantization"])),
    )


def _move_into(tmp: Path, out: Path) -> None:
    """Moves every entry of `tmp` into `out`, replacing entries of the same name."""
    out.mkdir(parents=True, exist_ok=True)
    for entry in sorted(tmp.iterdir()):
        target = out / entry.name
        if target.is_dir():
            old = out / f".{entry.name}.old-{uuid.uuid4().hex[:8]}"
            os.replace(target, old)
            os.replace(entry, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(entry, target)


def _int8_columns(result: Any) -> dict:
    """int8 mode, ops kept in float and their size cost, for int8 rows only."""
    if result.int8_mode is None:
        return {}
    return {
        "int8_mode": result.int8_mode,
        "float_ops": [f"{o['op']} {o['tensor']}" for o in result.float_ops],
        "full_int8_agreement": result.full_int8_agreement,
        "size_cost_kb": (result.size_cost_bytes or 0) / 1024,
        # each rung of the int8 ladder tried and why it stopped
        "int8_ladder": [f"{m['mode']}: {m.get('reason')}" for m in result.modes_tried],
    }


def run_export(cfg: ExportConfig) -> list[dict]:
    """Exports `cfg.model_path` once per quantization; writes `report.html`.

    Args:
        cfg: ExportConfig.

    Every export that passes its verification is written, even when another of
    the same call does not (a refused int8 file does not cost the float32 one).

    Returns:
        One row per export of this call: format, quantization, path, size_kb,
        latency_ms, agreement, keras_accuracy, export_accuracy, data; a refused
        export's row has ``error`` (the verification message) and no file
        (``path`` None), and is left out of ``summary.json``.

    Raises:
        ConfigError: a bad model path, quantization, output or data (the message
            names the field to change).
        ExportVerificationError: every export of the call disagrees with Keras
            (nothing written).
    """
    quants = _check(cfg)
    out = Path(cfg.output) if cfg.output else Path(cfg.model_path).parent / "export"
    leaves = [_leaf(cfg.format, q) for q in quants]
    _check_output(out, leaves, cfg.overwrite)
    from keras_transfer import reports
    from keras_transfer.export import ExportVerificationError, export_main
    from keras_transfer.progress import Progress
    from keras_transfer.saving import load_model

    model = load_model(cfg.model_path, compile=False)
    rep_cfg, origin = representative_config(cfg, model, model_image_size(model))
    data = load_labelled(rep_cfg)
    _check_data(model, data.x_train, data.class_names, origin)
    limit = max(cfg.representative.limit or 200, 1)
    rep = sample(data.x_train, data.y_train, limit, rep_cfg.seed)
    verify = sample(data.x_val, data.y_val, limit, rep_cfg.seed + 1)
    target = target_config(cfg, rep_cfg)
    if target is not None and is_unlabelled(target[0].source, "target.source"):
        # adapted on an unlabelled target: calibrate on both domains, verify the
        # agreement on both (no accuracy: half the inputs have no label)
        x_t, x_t_held = load_unlabelled(target[0], "target.source")
        _check_data(model, x_t, data.class_names, target[1])
        no_label = np.full(len(x_t), -1)
        rep = _mix(rep, (x_t, no_label), limit, rep_cfg.seed)
        held = (x_t_held, np.full(len(x_t_held), -1))
        verify = (_mix((data.x_val, data.y_val), held, limit, rep_cfg.seed + 1)[0],)
        origin = f"{origin} and the unlabelled target ({target[1]}), half each"
    elif target is not None:  # adapted model: calibrate and verify on both domains
        tgt = load_labelled(target[0])
        _check_data(model, tgt.x_train, tgt.class_names, target[1])
        rep = _mix(rep, (tgt.x_train, tgt.y_train), limit, rep_cfg.seed)
        verify = _mix(
            (data.x_val, data.y_val), (tgt.x_val, tgt.y_val), limit, rep_cfg.seed + 1
        )
        origin = f"{origin} and the target domain ({target[1]}), half each"
    if not len(verify[0]):
        verify = rep
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    rows, refused = [], []
    try:
        with Progress(len(quants), f"export {cfg.format}") as bar:
            for q, leaf in zip(quants, leaves):
                try:
                    result = export_main(
                        model,
                        format=cfg.format,
                        quantization=None if q == "float32" else q,
                        representative=rep,
                        # (x,) when the target half has no labels: agreement only
                        verify_data=verify if len(verify) == 2 else verify[0],
                        output=str(tmp / leaf),
                        class_names=data.class_names,
                        min_agreement=cfg.min_agreement,
                        **(
                            {"selective_size_budget": cfg.selective_size_budget}
                            if q == "int8"
                            else {}
                        ),
                    )
                except ExportVerificationError as err:
                    if not refused:
                        first_error = err
                    refused.append(
                        {
                            "format": cfg.format,
                            "quantization": q,
                            "path": None,
                            "error": str(err),
                            "data": origin,
                            **_int8_columns(err.report),
                        }
                    )
                    bar.update(note=f"{q}: refused by verification")
                    continue
                rows.append(
                    {
                        "format": cfg.format,
                        "quantization": q,
                        "path": str(out / leaf),
                        "size_kb": result.size_bytes / 1024,
                        "latency_ms": result.latency_ms,
                        "agreement": result.top1_agreement,
                        "keras_accuracy": result.keras_accuracy,
                        "export_accuracy": result.export_accuracy,
                        "data": origin,
                        "calibration_samples": len(rep[0]),
                        "verification_samples": result.num_samples,
                        **_int8_columns(result),
                    }
                )
                bar.update(note=f"{q}: agreement {result.top1_agreement}")
        if not rows:  # nothing passed: nothing is written
            raise first_error
        merged = _merge_rows(out, rows)
        report = reports.Report(f"keras-transfer export: {cfg.model_path}", tmp)
        report.add_text(
            f"{cfg.format} export of {cfg.model_path}: int8 calibrated on "
            f"{len(rep[0])} training inputs and every export verified on "
            f"{len(verify[0])} held-out inputs, drawn at random from {origin}."
        )
        for row in refused:
            report.add_text(f"Not written: {row['quantization']}. {row['error']}")
        fig = reports.plot_export_summary(merged, tmp / "export_summary.png")
        report.add_figure(fig, "Size, latency and top-1 agreement with Keras")
        report.add_table(
            merged,
            [
                "format",
                "quantization",
                "size_kb",
                "latency_ms",
                "agreement",
                "keras_accuracy",
                "export_accuracy",
                "int8_mode",
                "float_ops",
                "size_cost_kb",
                "int8_ladder",
                "path",
            ],
        )
        report.save()
        (tmp / "summary.json").write_text(json.dumps(merged, indent=2))
        _move_into(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    order = {q: i for i, q in enumerate(quants)}
    return sorted(rows + refused, key=lambda r: order[r["quantization"]])
