"""`export`: one verified export per quantization, plus a size/latency report."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from keras_transfer.cli._data import check_data_config, load_labelled
from keras_transfer.config import ConfigError, ExportConfig

QUANTIZATIONS = ("float32", "float16", "dynamic", "int8")


def _check(cfg: ExportConfig) -> list[str]:
    if not os.path.isfile(cfg.model_path):
        raise ConfigError(f"Model file not found: model_path={cfg.model_path!r}.")
    quants = [str(q) for q in cfg.quantization] or ["float32"]
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
    check_data_config(cfg.representative, "representative")
    return quants


def run_export(cfg: ExportConfig) -> list[dict]:
    """Exports `cfg.model_path` once per quantization; writes `report.html`.

    Representative data (the validation part of `cfg.representative`) calibrates
    int8 and verifies every export against the Keras model.

    Returns:
        One row per export: quantization, path, size_kb, latency_ms, agreement,
        keras_accuracy, export_accuracy.
    """
    quants = _check(cfg)
    from keras_transfer import reports
    from keras_transfer.export import export_main
    from keras_transfer.progress import Progress

    out = Path(cfg.output) if cfg.output else Path(cfg.model_path).parent / "export"
    data = load_labelled(cfg.representative)
    x = np.concatenate([data.x_train, data.x_val])[
        : max(cfg.representative.limit or 200, 1)
    ]
    y = np.concatenate([data.y_train, data.y_val])[: len(x)]
    out.mkdir(parents=True, exist_ok=True)
    rep_path = out / "representative.npz"
    np.savez(rep_path, x=x, y=y)
    rows = []
    with Progress(len(quants), f"export {cfg.format}") as bar:
        for q in quants:
            leaf = cfg.format if cfg.format == "saved_model" else f"tflite-{q}"
            result = export_main(
                cfg.model_path,
                format=cfg.format,
                quantization=None if q == "float32" else q,
                representative=str(rep_path),
                output=str(out / leaf),
                overwrite=cfg.overwrite,
                class_names=data.class_names,
            )
            rows.append(
                {
                    "quantization": q,
                    "path": str(result.path),
                    "size_kb": result.size_bytes / 1024,
                    "latency_ms": result.latency_ms,
                    "agreement": result.top1_agreement,
                    "keras_accuracy": result.keras_accuracy,
                    "export_accuracy": result.export_accuracy,
                }
            )
            bar.update(note=f"{q}: agreement {result.top1_agreement}")
    report = reports.Report(f"keras-transfer export: {cfg.model_path}", out)
    report.add_text(
        f"{cfg.format} export of {cfg.model_path}, verified on {len(x)} inputs from "
        f"{cfg.representative.source}."
    )
    fig = reports.plot_export_summary(rows, out / "export_summary.png")
    report.add_figure(fig, "Size, latency and top-1 agreement with Keras")
    report.add_table(rows)
    report.save()
    (out / "summary.json").write_text(json.dumps(rows, indent=2))
    return rows
