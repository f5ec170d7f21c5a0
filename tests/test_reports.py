"""Report figures and the self-contained HTML page."""

from __future__ import annotations

import numpy as np
import pytest

from keras_transfer import reports


def _is_png(path):
    return path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_classification_metrics_values():
    m = reports.classification_metrics([0, 0, 1, 1], [0, 1, 1, 1], ["a", "b"])
    assert m["accuracy"] == pytest.approx(0.75)
    assert m["per_class"]["a"] == pytest.approx(
        {"precision": 1.0, "recall": 0.5, "f1": 2 / 3, "support": 2}
    )
    assert m["per_class"]["b"]["precision"] == pytest.approx(2 / 3)
    assert m["macro_f1"] == pytest.approx((2 / 3 + 0.8) / 2)


def test_macro_f1_leaves_out_a_class_neither_in_the_data_nor_predicted():
    names = ["a", "b", "c"]
    m = reports.classification_metrics([0, 0, 1, 1], [0, 1, 1, 1], names)
    assert m["per_class"]["c"] == {
        "precision": 0.0,
        "recall": 0.0,
        "f1": 0.0,
        "support": 0,
    }
    assert m["macro_f1"] == pytest.approx((2 / 3 + 0.8) / 2)  # not over three
    # predicted but absent from the data: its F1 of 0 counts (false positives)
    m = reports.classification_metrics([0, 0, 1, 1], [0, 2, 1, 1], names)
    assert m["macro_f1"] == pytest.approx((2 / 3 + 1.0 + 0.0) / 3)


def test_every_plot_writes_a_png(tmp_path):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 30)
    metrics = reports.classification_metrics(y, y[::-1], ["a", "b", "c"])
    paths = [
        reports.plot_history(
            {"loss": [1, 0.5], "val_loss": [1.1, 0.7], "accuracy": [0.3, 0.6]},
            tmp_path / "h.png",
            marks={"unfreeze": 1.5},
        ),
        reports.plot_confusion_matrix(y, y[::-1], ["a", "b", "c"], tmp_path / "cm.png"),
        reports.plot_per_class(metrics, tmp_path / "pc.png"),
        reports.plot_feature_projection(
            (rng.normal(size=(20, 5)), rng.normal(1, size=(20, 5))),
            (rng.normal(size=(20, 5)), rng.normal(size=(20, 5))),
            tmp_path / "pca.png",
        ),
        reports.plot_adaptation_curves(
            {"lambda": [0, 0.5, 1], "domain_accuracy": [0.9, 0.7, 0.55]},
            tmp_path / "da.png",
        ),
        reports.plot_trials(
            [
                {"hyperparameters": {"lr": 1e-3, "depth": "all"}, "score": 0.8},
                {"hyperparameters": {"lr": 1e-1, "depth": 2}, "score": 0.5},
                {"hyperparameters": {"lr": 1e-5, "depth": 0}, "score": None},
            ],
            tmp_path / "t.png",
        ),
        reports.plot_export_summary(
            [
                {
                    "quantization": "float32",
                    "size_kb": 100,
                    "latency_ms": 1.0,
                    "agreement": 1.0,
                },
                {
                    "quantization": "int8",
                    "size_kb": 30,
                    "latency_ms": 0.5,
                    "agreement": 0.97,
                },
            ],
            tmp_path / "e.png",
        ),
    ]
    for p in paths:
        assert p.exists() and _is_png(p), p


def test_report_is_self_contained_html(tmp_path):
    fig = reports.plot_history({"loss": [1.0, 0.5]}, tmp_path / "curves.png")
    report = reports.Report("My <run>", tmp_path / "out")
    report.add_heading("Curves")
    report.add_text("a & b")
    report.add_figure(fig, "Loss")
    report.add_table([{"class": "a", "f1": 0.123456}], ["class", "f1"])
    page = report.save().read_text()
    assert "My &lt;run&gt;" in page and "a &amp; b" in page
    assert page.count("data:image/png;base64,") == 1
    assert "<td>0.1235</td>" in page
    assert 'src="curves.png"' not in page  # nothing linked from outside
