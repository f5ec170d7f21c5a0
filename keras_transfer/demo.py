"""The built-in demo: pretrain on one domain, ship as a KerasHub preset, transfer.

Runs end to end on data bundled with scikit-learn and scikit-image (no downloads):

1. pretrain a small KerasHub `VGGBackbone` on the source domain (sklearn digits)
   with colour augmentation -- the code behind `keras-transfer pretrain`;
2. save it as a local KerasHub preset (`save_to_preset`) with its `ImageConverter`;
3. load it back through `load_backbone("keras_hub:<dir>")`;
4. fine-tune on a few labelled examples per class of the shifted target domain
   (MNIST-M-style digits: the head first, starting from the source head since both
   domains share the ten digit classes, then all layers at a low learning rate) and
   compare with the same network trained from scratch on the same examples;
5. adapt to the target with NO target label (`keras_transfer.adapt` on the labelled
   source and the unlabelled target images) and compare with the same network and
   recipe trained on the source alone;
6. export the best target model (the adapted one; the fine-tuned one when step 5
   is skipped) to a verified TFLite int8 file.

(Over 400 lines on purpose: the demo is read top to bottom as one worked example of
the public API; each step is a public function the CLI and tests call.)
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from keras_transfer._backend import keras
from keras_transfer.saving import save_model_atomically, write_json_atomically


@dataclass
class DemoResult:
    """Numbers of one demo run (accuracies on the target test split)."""

    shots: int
    transfer_accuracy: float
    scratch_accuracy: float
    source_accuracy: float
    preset_dir: str
    model_path: str
    seconds: float
    export: Any = None
    extra: dict = field(default_factory=dict)
    adaptation: dict | None = None

    def to_json(self) -> dict:
        """The numbers as JSON-ready values (the export as its manifest summary)."""
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        report = self.export
        data["export"] = (
            None
            if report is None
            else {
                "path": str(report.path),
                "model": self.extra.get("exported_model"),
                "quantization": report.quantization,
                "int8_mode": report.int8_mode,
                "float_ops": len(report.float_ops),
                "size_bytes": report.size_bytes,
                "top1_agreement": report.top1_agreement,
                "keras_accuracy": report.keras_accuracy,
                "tflite_accuracy": report.export_accuracy,
            }
        )
        return data


# The demo backbone: a KerasHub VGGBackbone with these filters (~93k parameters).
DEMO_FILTERS = (32, 64, 128)
# (pretrain epochs, head epochs, fine-tune epochs) per mode. Scratch trains for
# head + fine-tune epochs. Chosen over seeds 0, 1, 2 (see docs/cli.md, demo).
SETTINGS = {"quick": (30, 10, 10), "full": (30, 20, 30)}
# (epochs, method) of the unsupervised adaptation step per mode ("auto" trains
# source-only, BNM, CDAN, DANN and MCC from one warm-up and keeps the one EnsV ranks
# first, an unsupervised score; quick trains MCC alone). Both use adapt's
# default 20 epochs: with the default appearance jitter, 12 epochs of MCC lost 3.8
# points to source-only on seed 0 (docs/cli.md, the demo).
ADAPT_SETTINGS = {"quick": (20, "mcc"), "full": (20, "auto")}
# What run_demo keeps next to the preset so that a later run in the same folder with
# the same pretraining settings reuses it instead of pretraining again.
PRESET_DIR = "digits_vgg_preset"
SOURCE_CLASSIFIER = "source_classifier.keras"
PRETRAIN_STAMP = "pretrain.json"
RESULT_FILE = "demo.json"


def make_backbone(image_size: int | None = None) -> Any:
    """The demo's small KerasHub VGG backbone (any image size; `image_size` unused)."""
    from keras_transfer.pretrain import make_vgg_backbone

    return make_vgg_backbone(DEMO_FILTERS)


def few_shot_indices(y: np.ndarray, shots: int | None, seed: int) -> np.ndarray:
    """Indices of `shots` examples per class (all when None), seeded."""
    if shots is None:
        return np.arange(len(y))
    rng = np.random.default_rng(seed)
    picks = [
        rng.choice(np.flatnonzero(y == c), size=shots, replace=False)
        for c in np.unique(y)
    ]
    return np.sort(np.concatenate(picks))


def pretrain_source_preset(
    preset_dir: str,
    *,
    epochs: int = 30,
    seed: int = 0,
    image_size: int = 32,
    verbose: int = 0,
    return_result: bool = False,
) -> Any:
    """Pretrains the demo backbone on the source digits and saves it as a preset.

    The same implementation as `keras-transfer pretrain`
    (`keras_transfer.pretrain.pretrain_preset`, colour augmentation on), on the
    built-in source digits. The preset is written atomically.

    Returns:
        Source-domain test accuracy of the pretrained classifier, or the whole
        `PretrainResult` when `return_result=True`.
    """
    from keras_transfer.datasets import digits_domains
    from keras_transfer.pretrain import pretrain_preset

    source, _ = digits_domains(size=image_size, seed=seed)
    result = pretrain_preset(
        source.x_train,
        source.y_train,
        preset_dir,
        x_val=source.x_test,
        y_val=source.y_test,
        num_classes=10,
        filters=DEMO_FILTERS,
        epochs=epochs,
        learning_rate=1e-3,
        augment=True,
        seed=seed,
        overwrite=True,
        verbose=verbose,
    )
    return result if return_result else result.val_accuracy


def _pretrain_settings(epochs: int, seed: int, image_size: int) -> dict:
    from keras_transfer.pretrain import AUGMENT_WARMUP
    from keras_transfer.version import __version__

    return {
        "epochs": epochs,
        "augment_warmup": AUGMENT_WARMUP,
        "seed": seed,
        "image_size": image_size,
        "filters": list(DEMO_FILTERS),
        "keras_transfer": __version__,
    }


def reusable_pretraining(output_dir: str, settings: dict) -> dict | None:
    """The stamp of a finished pretraining in `output_dir` made with `settings`.

    Returns None when `output_dir` holds no complete pretraining (preset, source
    classifier and stamp, the stamp written last) or one made with other settings.
    """
    parts = (PRESET_DIR, SOURCE_CLASSIFIER)
    if not all(os.path.exists(os.path.join(output_dir, p)) for p in parts):
        return None
    try:
        with open(os.path.join(output_dir, PRETRAIN_STAMP)) as f:
            info = json.load(f)
    except (OSError, ValueError):
        return None
    return info if info.get("settings") == settings else None


def _source_preset(
    output_dir: str, *, epochs: int, seed: int, reuse: bool, say: Any
) -> tuple[float, keras.Model, str]:
    """(source val accuracy, source classifier, "trained" | "reused")."""
    preset_dir = os.path.join(output_dir, PRESET_DIR)
    settings = _pretrain_settings(epochs, seed, 32)
    stamp = reusable_pretraining(output_dir, settings) if reuse else None
    if stamp is not None:
        say(
            f"      reusing the preset pretrained earlier with the same settings "
            f"({os.path.join(output_dir, PRETRAIN_STAMP)}; --fresh pretrains again)"
        )
        classifier = keras.saving.load_model(
            os.path.join(output_dir, SOURCE_CLASSIFIER)
        )
        return float(stamp["val_accuracy"]), classifier, "reused"
    stamp_path = os.path.join(output_dir, PRETRAIN_STAMP)
    if os.path.exists(stamp_path):
        os.remove(stamp_path)  # the preset is about to change: never a stale stamp
    run = pretrain_source_preset(
        preset_dir, epochs=epochs, seed=seed, return_result=True
    )
    save_model_atomically(run.model, os.path.join(output_dir, SOURCE_CLASSIFIER))
    write_json_atomically(
        stamp_path, {"settings": settings, "val_accuracy": float(run.val_accuracy)}
    )
    return float(run.val_accuracy), run.model, "trained"


def train_target(
    backbone: Any,
    x: np.ndarray,
    y: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    *,
    head_epochs: int,
    fine_tune_epochs: int,
    seed: int,
    transfer: bool,
    head_weights: list | None = None,
) -> tuple[float, keras.Model]:
    """Trains on the few target examples; returns (test accuracy, model).

    `transfer=True` runs the two-phase `fine_tune` recipe on a pretrained backbone:
    the head trains with the backbone frozen (learning rate 3e-3), then everything
    trains at 3e-4. `head_weights` starts the head from the source classifier's
    (the demo's domains share the ten digit classes). `transfer=False` trains the
    same network from scratch for `head_epochs + fine_tune_epochs` epochs (all
    layers trainable, learning rate 3e-3).
    """
    from keras_transfer.builders import build_classifier
    from keras_transfer.finetune import fine_tune

    keras.utils.set_random_seed(seed)
    batch = min(32, len(x))
    shape = tuple(x.shape[1:])  # the preset takes any size: fix it for export
    if transfer:
        model = build_classifier(
            backbone, 10, unfreeze_depth=0, dropout=0.2, input_shape=shape
        )
        if head_weights is not None:
            model.layers[-1].set_weights(head_weights)
        fine_tune(
            model,
            (x, y),
            head_epochs=head_epochs,
            fine_tune_epochs=fine_tune_epochs,
            unfreeze_depth="all",
            head_learning_rate=3e-3,
            fine_tune_learning_rate=3e-4,
            verbose=0,
        )
    else:
        model = build_classifier(
            backbone,
            10,
            unfreeze_depth="all",
            dropout=0.2,
            learning_rate=3e-3,
            input_shape=shape,
        )
        model.fit(
            x, y, epochs=head_epochs + fine_tune_epochs, batch_size=batch, verbose=0
        )
    accuracy = float(model.evaluate(x_test, y_test, verbose=0)[1])
    return accuracy, model


def make_adaptation_backbone(image_size: int = 32) -> keras.Model:
    """The network of the demo's adaptation step (~300k parameters).

    The demo's KerasHub VGG backbone (untrained), its feature maps flattened, then a
    100-unit dense layer. Global pooling of its 4x4 maps left nothing for
    adaptation to use (source-only 0.42 / 0.47 vs MCC 0.39 / 0.44, seeds 0, 1),
    while flattened features keep the layout of the strokes; since stop 30
    `adapt(pooling="auto")` flattens such small maps by itself
    (`benchmarks/results/encoder_pooling.json`).
    """
    return keras.Sequential(
        [
            keras.Input((image_size, image_size, 3)),
            keras.layers.Rescaling(1.0 / 255.0),
            make_backbone(),
            keras.layers.Flatten(),
            keras.layers.Dense(100, activation="relu"),
        ],
        name="demo_adaptation_backbone",
    )


def adapt_to_target(
    source: Any, target: Any, *, epochs: int, method: str, seed: int
) -> tuple[dict, keras.Model]:
    """Unsupervised adaptation: labelled source + unlabelled target, no target label.

    Runs `keras_transfer.adapt` twice on fresh copies of
    `make_adaptation_backbone`: ``method="source_only"`` (the same recipe, target
    images unused) and ``method``; both are scored on the target test split.

    Returns:
        A tuple ``(numbers, adapted model)``; ``numbers`` has ``source_only``,
        ``adapted`` (target test accuracies), ``method`` (the method trained, e.g.
        what "auto" chose), ``source_accuracy`` (held-out source), ``epochs`` and
        ``agreement`` ("auto"'s label-free check, None for one method).
    """
    from keras_transfer.adaptation import adapt

    labelled = (source.x_train, source.y_train)
    x_test = target.x_test.astype("float32")
    runs = {}
    for name in ("source_only", method):
        # the same initial weights for both, whatever ran before in this process
        keras.utils.set_random_seed(seed)
        runs[name] = adapt(
            make_adaptation_backbone(source.x_train.shape[1]),
            labelled,
            target.x_train,  # images only: the target labels are never passed
            num_classes=10,
            method=name,
            epochs=epochs,
            seed=seed,
            # the baseline uses no target image, its BatchNorm statistics included
            target_batchnorm=False if name == "source_only" else "auto",
            verbose=0,
        )
    accuracy = {
        name: float(r.model.evaluate(x_test, target.y_test, verbose=0)[1])
        for name, r in runs.items()
    }
    adapted = runs[method]
    numbers = {
        "source_only": accuracy["source_only"],
        "adapted": accuracy[method],
        "method": adapted.method,
        "source_accuracy": adapted.source_accuracy,
        "epochs": epochs,
        "agreement": adapted.selection.get("agreement"),
    }
    return numbers, adapted.model


def run_demo(
    *,
    output_dir: str = "saved_models/demo",
    shots: int | None = 10,
    quick: bool = False,
    seed: int = 0,
    export: bool = True,
    adapt: bool = True,
    reuse_preset: bool = True,
    verbose: int = 1,
) -> DemoResult:
    """Runs the demo end to end and prints transfer vs scratch accuracy.

    Args:
        output_dir: str. Where the preset, the model and the export go. Defaults to
            `"saved_models/demo"`.
        shots: int or None. Labelled target examples per class (None: all).
            Defaults to 10.
        quick: bool. Fewer epochs (for tests and CI). Defaults to False.
        seed: int. Defaults to 0.
        export: bool. Finish with a verified TFLite int8 export (``demo_int8/``) of
            the adapted model, or of the fine-tuned one when ``adapt`` is False;
            calibrated on unlabelled training images, verified on the labelled
            target test split. Defaults to True.
        adapt: bool. Run the unsupervised adaptation step (`adapt_to_target`;
            the adapted model is saved as ``demo_adapted.keras``). Defaults to True.
        reuse_preset: bool. When `output_dir` already holds the preset (and source
            classifier) of an earlier run with the same pretraining settings (epochs,
            seed, filters, keras-transfer version; `pretrain.json`), use it instead of
            pretraining again; the rest of the run is unchanged (every later step
            reseeds). False pretrains again. Defaults to True.
        verbose: int. 0 silent, 1 progress lines. Defaults to 1.

    Returns:
        A `DemoResult` (`extra["source_only_accuracy"]`: the source classifier on
        the target test split, before any target label is used;
        `extra["pretrain"]`: "trained" or "reused"; `adaptation`: the numbers of
        `adapt_to_target`, None when ``adapt=False``). The same numbers are
        written to ``<output_dir>/demo.json``.

    Examples:
    ```python
    from keras_transfer.demo import run_demo
    result = run_demo(quick=True, export=False, adapt=False, verbose=0,
                      output_dir="/tmp/kt_demo_doc")
    assert result.transfer_accuracy > result.scratch_accuracy
    ```
    """
    from keras_transfer.backbones import load_backbone
    from keras_transfer.datasets import digits_domains

    start = time.perf_counter()
    say = print if verbose else (lambda *a, **k: None)
    pre_epochs, head_epochs, ft_epochs = SETTINGS["quick" if quick else "full"]
    os.makedirs(output_dir, exist_ok=True)
    preset_dir = os.path.join(output_dir, PRESET_DIR)
    steps = 3 + int(adapt) + int(export)
    step = iter(f"[{i}/{steps}]" for i in range(1, steps + 1))
    say(
        f"{next(step)} Pretraining a KerasHub VGGBackbone on source digits ({pre_epochs} "
        "epochs, colour augmentation; the same code as `keras-transfer pretrain`)"
    )
    source_acc, source_classifier, pretrain_status = _source_preset(
        output_dir, epochs=pre_epochs, seed=seed, reuse=reuse_preset, say=say
    )
    say(f"      source test accuracy {source_acc:.3f}; preset saved to {preset_dir}")

    source, target = digits_domains(seed=seed)
    idx = few_shot_indices(target.y_train, shots, seed)
    x, y = target.x_train[idx].astype("float32"), target.y_train[idx]
    x_test = target.x_test.astype("float32")
    source_only = float(source_classifier.evaluate(x_test, target.y_test, verbose=0)[1])
    say(f"      on the target domain, before any target label: {source_only:.3f}")
    say(f"{next(step)} Loading it back: load_backbone('keras_hub:{preset_dir}')")
    say(
        f"{next(step)} Fine-tuning on {len(idx)} labelled target examples ({shots} per "
        f"class): head {head_epochs} epochs (backbone frozen, starting from the "
        f"source head), then all layers {ft_epochs} epochs at a low learning rate"
    )
    pretrained = load_backbone(f"keras_hub:{preset_dir}")
    transfer_acc, model = train_target(
        pretrained,
        x,
        y,
        x_test,
        target.y_test,
        head_epochs=head_epochs,
        fine_tune_epochs=ft_epochs,
        seed=seed,
        transfer=True,
        head_weights=source_classifier.layers[-1].get_weights(),
    )
    say(
        "      training the same network from scratch on the same examples "
        f"({head_epochs + ft_epochs} epochs)"
    )
    scratch_backbone = load_backbone(f"keras_hub:{preset_dir}", load_weights=False)
    scratch_acc, _ = train_target(
        scratch_backbone,
        x,
        y,
        x_test,
        target.y_test,
        head_epochs=head_epochs,
        fine_tune_epochs=ft_epochs,
        seed=seed,
        transfer=False,
    )
    model_path = os.path.join(output_dir, "demo_classifier.keras")
    save_model_atomically(model, model_path)
    say("")
    say(
        f"  target test accuracy ({len(target.y_test)} images), {shots} labelled "
        "examples per class:"
    )
    say(f"    source model, no target labels : {source_only:.3f}")
    say(f"    fine-tuned from source preset  : {transfer_acc:.3f}")
    say(f"    trained from scratch           : {scratch_acc:.3f}")
    say(f"    gain from transfer             : {transfer_acc - scratch_acc:+.3f}")
    say(f"  model saved to {model_path}")
    adaptation = None
    if adapt:
        epochs, method = ADAPT_SETTINGS["quick" if quick else "full"]
        say(
            f"{next(step)} Adapting to the target with NO target label: "
            f"kt.adapt(backbone, (source images, labels), unlabelled target images, "
            f"method={method!r}), {epochs} epochs; the same network and recipe "
            "trained on the source alone is the baseline"
        )
        adaptation, adapted = adapt_to_target(
            source, target, epochs=epochs, method=method, seed=seed
        )
        adaptation["model_path"] = os.path.join(output_dir, "demo_adapted.keras")
        save_model_atomically(adapted, adaptation["model_path"])
        say(f"    source only (same network)     : {adaptation['source_only']:.3f}")
        say(
            f"    adapted ({adaptation['method']}), no target label : "
            f"{adaptation['adapted']:.3f}"
        )
        say(
            "    gain from unlabelled images    : "
            f"{adaptation['adapted'] - adaptation['source_only']:+.3f}"
        )
        if adaptation["agreement"] is not None:
            from keras_transfer.adaptation import LOW_AGREEMENT

            say(
                "    label-free check: the candidates agree with it on "
                f"{adaptation['agreement']:.0%} of the target images (adapt warns "
                f"below {LOW_AGREEMENT:.0%})"
            )
        say(f"  adapted model saved to {adaptation['model_path']}")
    report = None
    exported = None
    if export:
        # Ship the best target model: the adapted one (no target label, and sure
        # enough of its classes for full int8) when step 5 ran. Calibration uses
        # unlabelled training images (both domains for the adapted model, as
        # export_tflite's docs advise); verification the labelled target test split.
        if adaptation is not None:
            exported, to_export = "adapted", adapted
            calibration = np.concatenate([source.x_train, target.x_train])
        else:
            exported, to_export = "fine_tuned", model
            calibration = target.x_train
        report = _export(
            to_export,
            calibration.astype("float32"),
            (x_test, target.y_test),
            output_dir,
            say,
            f"{next(step)} Exporting the {exported.replace('_', '-')} model",
        )
    result = DemoResult(
        shots=shots if shots is not None else -1,
        transfer_accuracy=transfer_acc,
        scratch_accuracy=scratch_acc,
        source_accuracy=source_acc,
        preset_dir=preset_dir,
        model_path=model_path,
        seconds=time.perf_counter() - start,
        export=report,
        extra={
            "source_only_accuracy": source_only,
            "pretrain": pretrain_status,
            "exported_model": exported,
        },
        adaptation=adaptation,
    )
    write_json_atomically(os.path.join(output_dir, RESULT_FILE), result.to_json())
    return result


def _export(
    model: keras.Model,
    calibration: np.ndarray,
    verify_data: tuple[np.ndarray, np.ndarray],
    output_dir: str,
    say: Any,
    title: str = "Exporting the model",
) -> Any:
    """TFLite int8, verified; the dynamic-range file when verification refuses it."""
    say(f"{title} to TFLite int8 (verified against the Keras model)")
    from keras_transfer.export import ExportVerificationError, export_tflite

    try:
        report = export_tflite(
            model,
            os.path.join(output_dir, "demo_int8"),
            quantization="int8",
            representative_data=calibration,
            verify_data=verify_data,
            overwrite=True,
        )
    except ExportVerificationError as e:
        # Verification refused the int8 file (nothing was written): say so and
        # ship the dynamic-range file instead, which keeps float activations.
        say(f"      int8 refused by verification: {e}")
        say("      exporting dynamic-range int8 weights instead")
        report = export_tflite(
            model,
            os.path.join(output_dir, "demo_dynamic"),
            quantization="dynamic",
            verify_data=verify_data,
            overwrite=True,
        )
    say(f"      {report}")
    say(
        f"  try it: keras-transfer predict --set model_path={report.path} "
        "--set inputs=<a folder of images>"
    )
    return report
