"""Pictures and one self-contained HTML page per run.

Figures are written as PNG files (matplotlib, headless "Agg" backend) and embedded in
``report.html`` as base64, so the page can be mailed or attached to a CI run alone.

Examples:
```python
import tempfile, numpy as np
from keras_transfer.reports import Report, plot_history
with tempfile.TemporaryDirectory() as tmp:
    report = Report("demo", tmp)
    report.add_figure(plot_history({"loss": [1.0, 0.5]}, f"{tmp}/curves.png"), "Loss")
    assert report.save().name == "report.html"
```
"""

from __future__ import annotations

import base64
import html
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "Report",
    "classification_metrics",
    "plot_adaptation_curves",
    "plot_confusion_matrix",
    "plot_export_summary",
    "plot_feature_projection",
    "plot_history",
    "plot_per_class",
    "plot_trials",
]


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: str | os.PathLike) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    _plt().close(fig)
    return path


def plot_history(
    history: dict,
    path: str | os.PathLike,
    title: str = "",
    marks: dict[str, float] | None = None,
) -> Path:
    """Plots training curves: one panel per metric, train and `val_` together.

    Args:
        history: dict. `{metric: [value per epoch]}`, e.g. `History.history`.
        path: str or PathLike. PNG file to write.
        title: str. Figure title.
        marks: dict or None. `{label: epoch}` vertical lines, e.g. where the backbone
            was unfrozen (`{"unfreeze": 3.5}`).

    Returns:
        The PNG path.
    """
    bases = [k for k in history if not k.startswith("val_")]
    bases += [k[4:] for k in history if k.startswith("val_") and k[4:] not in history]
    plt = _plt()
    n = max(len(bases), 1)
    fig, axes = plt.subplots(1, n, figsize=(4 * n, 3.2), squeeze=False)
    for ax, key in zip(axes[0], bases):
        for k, style in ((key, "-o"), (f"val_{key}", "--s")):
            if k in history and len(history[k]):
                epochs = np.arange(1, len(history[k]) + 1)
                ax.plot(epochs, history[k], style, label=k, markersize=3)
        for label, epoch in (marks or {}).items():
            ax.axvline(epoch, color="grey", ls=":", lw=1)
            ax.annotate(
                label,
                (epoch, 1),
                xycoords=("data", "axes fraction"),
                fontsize=7,
                color="grey",
                va="top",
                ha="left",
            )
        ax.set_xlabel("epoch")
        ax.set_title(key)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def classification_metrics(
    y_true: Sequence[int], y_pred: Sequence[int], class_names: Sequence[str]
) -> dict:
    """Returns accuracy and per-class precision, recall, F1 and support.

    Every class of ``class_names`` gets a row (support 0 when the data has none);
    macro F1 averages the classes that occur in ``y_true`` or ``y_pred``.

    Returns:
        `{"accuracy": float, "macro_f1": float, "per_class": {name: {"precision",
        "recall", "f1", "support"}}}`.
    """
    from sklearn.metrics import precision_recall_fscore_support

    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    labels = list(range(len(class_names)))
    p, r, f, s = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0
    )
    per_class = {
        str(name): {
            "precision": float(p[i]),
            "recall": float(r[i]),
            "f1": float(f[i]),
            "support": int(s[i]),
        }
        for i, name in enumerate(class_names)
    }
    # Macro F1 over the classes in the data or the predictions (sklearn's default
    # label set): a class absent from both, e.g. one a test folder leaves out,
    # would add an F1 of 0 that says nothing about the model.
    present = (s > 0) | np.isin(labels, y_pred)
    return {
        "accuracy": float(np.mean(y_true == y_pred)) if len(y_true) else 0.0,
        "macro_f1": float(np.mean(f[present])) if present.any() else 0.0,
        "per_class": per_class,
    }


def plot_confusion_matrix(
    y_true: Sequence[int],
    y_pred: Sequence[int],
    class_names: Sequence[str],
    path: str | os.PathLike,
    title: str = "Confusion matrix",
) -> Path:
    """Plots the confusion matrix (rows: true class, columns: predicted) with counts."""
    from sklearn.metrics import confusion_matrix

    k = len(class_names)
    cm = confusion_matrix(y_true, y_pred, labels=list(range(k)))
    plt = _plt()
    size = min(2.5 + 0.45 * k, 12)
    fig, ax = plt.subplots(figsize=(size, size * 0.9))
    im = ax.imshow(cm, cmap="Blues")
    fig.colorbar(im, ax=ax, fraction=0.046)
    ax.set_xticks(range(k), [str(c) for c in class_names], rotation=45, ha="right")
    ax.set_yticks(range(k), [str(c) for c in class_names])
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if k <= 30:
        thresh = cm.max() / 2 if cm.size else 0
        for i in range(k):
            for j in range(k):
                color = "white" if cm[i, j] > thresh else "black"
                ax.text(
                    j, i, cm[i, j], ha="center", va="center", color=color, fontsize=7
                )
    ax.set_title(title)
    return _save(fig, path)


def plot_per_class(metrics: dict, path: str | os.PathLike) -> Path:
    """Bar chart of per-class precision/recall/F1 from `classification_metrics`."""
    per = metrics["per_class"]
    names = list(per)
    x = np.arange(len(names))
    plt = _plt()
    fig, ax = plt.subplots(figsize=(max(4, 0.5 * len(names) + 2), 3.2))
    for i, key in enumerate(("precision", "recall", "f1")):
        ax.bar(x + (i - 1) * 0.27, [per[n][key] for n in names], 0.27, label=key)
    ax.set_xticks(x, names, rotation=45, ha="right")
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=8, ncol=3)
    ax.set_title("Per-class precision / recall / F1")
    return _save(fig, path)


def plot_feature_projection(
    before: tuple[np.ndarray, np.ndarray],
    after: tuple[np.ndarray, np.ndarray] | None,
    path: str | os.PathLike,
) -> Path:
    """2-D PCA of source vs target features, before and (optionally) after adaptation.

    Args:
        before: tuple. `(source_features, target_features)` before adaptation, each
            `(n, d)`.
        after: tuple or None. The same after adaptation.
        path: str or PathLike. PNG file to write.
    """
    from sklearn.decomposition import PCA

    panels = [("before adaptation", before)] + (
        [("after adaptation", after)] if after else []
    )
    plt = _plt()
    fig, axes = plt.subplots(
        1, len(panels), figsize=(4.2 * len(panels), 3.8), squeeze=False
    )
    for ax, (name, (src, tgt)) in zip(axes[0], panels):
        src = np.asarray(src).reshape(len(src), -1)
        tgt = np.asarray(tgt).reshape(len(tgt), -1)
        both = PCA(n_components=2, random_state=0).fit_transform(
            np.concatenate([src, tgt])
        )
        ax.scatter(*both[: len(src)].T, s=6, alpha=0.6, label="source")
        ax.scatter(*both[len(src) :].T, s=6, alpha=0.6, label="target")
        ax.set_title(f"PCA of features, {name}")
        ax.legend(fontsize=8)
    return _save(fig, path)


def plot_adaptation_curves(history: dict, path: str | os.PathLike) -> Path:
    """Plots the λ schedule and the domain-classifier accuracy per epoch.

    Keys containing "lambda" go to the left panel, keys containing "domain" to the
    right one (a domain accuracy near 0.5 means features no longer tell domains apart).
    """
    groups = {
        "λ (domain-loss weight)": [k for k in history if "lambda" in k],
        "domain classifier": [k for k in history if "domain" in k],
    }
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.2))
    for ax, (title, keys) in zip(axes, groups.items()):
        for k in keys:
            ax.plot(
                np.arange(1, len(history[k]) + 1),
                history[k],
                "-o",
                label=k,
                markersize=3,
            )
        if any("accuracy" in k for k in keys):
            ax.axhline(0.5, color="grey", lw=0.8, ls=":")
        ax.set_title(title)
        ax.set_xlabel("epoch")
        if keys:
            ax.legend(fontsize=8)
    return _save(fig, path)


def plot_trials(
    trials: Sequence[dict], path: str | os.PathLike, objective: str = "score"
) -> Path:
    """Scatter of each trial's score against each of its hyperparameters.

    Args:
        trials: sequence of dict. Items `{"hyperparameters": {name: value}, "score":
            float or None}`.
        path: str or PathLike. PNG file to write.
        objective: str. Label of the score axis.
    """
    names = sorted({k for t in trials for k in t.get("hyperparameters", {})}) or [
        "trial"
    ]
    plt = _plt()
    fig, axes = plt.subplots(
        1, len(names), figsize=(4 * len(names), 3.2), squeeze=False
    )
    for ax, name in zip(axes[0], names):
        values = [
            t.get("hyperparameters", {}).get(name, i) for i, t in enumerate(trials)
        ]
        scores = [np.nan if t.get("score") is None else t["score"] for t in trials]
        numeric = all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in values
        )
        if numeric:
            ax.scatter(values, scores)
            positive = all(v > 0 for v in values)
            if positive and max(values) / max(min(values), 1e-12) > 50:
                ax.set_xscale("log")
        else:
            cats = sorted({str(v) for v in values})
            ax.scatter([cats.index(str(v)) for v in values], scores)
            ax.set_xticks(range(len(cats)), cats)
        ax.set_xlabel(name)
        ax.set_ylabel(objective)
    fig.suptitle("Score of each trial vs its hyperparameters")
    return _save(fig, path)


def plot_export_summary(rows: Sequence[dict], path: str | os.PathLike) -> Path:
    """Bars of size (KB), latency (ms) and agreement per quantization.

    Args:
        rows: sequence of dict. Items with `quantization` and any of `size_kb`,
            `latency_ms`, `agreement`.
    """
    keys = [
        k for k in ("size_kb", "latency_ms", "agreement") if any(k in r for r in rows)
    ]
    names = [str(r.get("quantization", i)) for i, r in enumerate(rows)]
    plt = _plt()
    fig, axes = plt.subplots(1, max(len(keys), 1), figsize=(3.6 * max(len(keys), 1), 3))
    axes = np.atleast_1d(axes)
    for ax, key in zip(axes, keys):
        ax.bar(names, [float(r.get(key) or 0.0) for r in rows], color="tab:blue")
        ax.set_title(key)
        if key == "agreement":
            ax.set_ylim(0, 1.05)
    fig.suptitle("Export: size, latency and agreement per quantization")
    return _save(fig, path)


class Report:
    """One self-contained HTML page: headings, text, tables and embedded figures.

    Args:
        title: str. Page title.
        directory: str or PathLike. Folder that receives `report.html`.
    """

    def __init__(self, title: str, directory: str | os.PathLike) -> None:
        self.title = title
        self.directory = Path(directory)
        self.parts: list[str] = []
        self.figures: list[Path] = []

    def add_heading(self, text: str) -> None:
        self.parts.append(f"<h2>{html.escape(text)}</h2>")

    def add_text(self, text: str) -> None:
        self.parts.append(f"<p>{html.escape(text)}</p>")

    def add_figure(self, path: str | os.PathLike, caption: str = "") -> None:
        """Embeds a PNG as base64 (the PNG file stays next to the page too)."""
        path = Path(path)
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        self.figures.append(path)
        self.parts.append(
            f'<figure><img alt="{html.escape(caption or path.stem)}" '
            f'src="data:image/png;base64,{data}"/>'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>"
        )

    def add_table(
        self, rows: Sequence[dict], columns: Sequence[str] | None = None
    ) -> None:
        """Adds a table; floats are shown with 4 significant digits."""
        if not rows:
            return
        columns = list(columns or rows[0].keys())

        def cell(v: Any) -> str:
            return html.escape(f"{v:.4g}" if isinstance(v, float) else str(v))

        head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
        body = "".join(
            "<tr>"
            + "".join(f"<td>{cell(r.get(c, ''))}</td>" for c in columns)
            + "</tr>"
            for r in rows
        )
        self.parts.append(f"<table><tr>{head}</tr>{body}</table>")

    def save(self, filename: str = "report.html") -> Path:
        """Writes the page and returns its path."""
        self.directory.mkdir(parents=True, exist_ok=True)
        style = (
            "body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}"
            "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;"
            "padding:3px 8px;text-align:right}img{max-width:100%}"
        )
        page = (
            f"<!DOCTYPE html><html><head><meta charset='utf-8'>"
            f"<title>{html.escape(self.title)}</title><style>{style}</style></head>"
            f"<body><h1>{html.escape(self.title)}</h1>{''.join(self.parts)}</body></html>"
        )
        path = self.directory / filename
        path.write_text(page, encoding="utf-8")
        return path
