"""The built-in demo: pretrain on one domain, ship as a KerasHub preset, transfer.

Runs end to end on data bundled with scikit-learn and scikit-image (no downloads):

1. pretrain a small KerasHub `VGGBackbone` on the source domain (sklearn digits);
2. save it as a local KerasHub preset (`save_to_preset`) with its `ImageConverter`;
3. load it back through `load_backbone("keras_hub:<dir>")`;
4. fine-tune on a few labelled examples per class of the shifted target domain
   (MNIST-M-style digits) and compare with the same network trained from scratch on
   the same examples.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from keras_transfer._backend import keras


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


def make_backbone(image_size: int = 32) -> Any:
    """The demo's small KerasHub VGG backbone (~24k parameters)."""
    import keras_hub

    return keras_hub.models.VGGBackbone(
        stackwise_num_repeats=[1, 1, 1],
        stackwise_num_filters=[16, 32, 64],
        image_shape=(image_size, image_size, 3),
    )


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
    epochs: int = 15,
    seed: int = 0,
    image_size: int = 32,
    verbose: int = 0,
) -> float:
    """Pretrains the demo backbone on the source digits and saves it as a preset.

    The preset is written to a temporary sibling and moved into place, so an
    interrupted run never leaves a half-written preset.

    Returns:
        Source-domain test accuracy of the pretrained classifier.
    """
    import keras_hub

    from keras_transfer.builders import build_classifier
    from keras_transfer.datasets import digits_domains

    keras.utils.set_random_seed(seed)
    source, _ = digits_domains(size=image_size, seed=seed)
    backbone = make_backbone(image_size)
    converter = keras_hub.layers.ImageConverter(
        image_size=(image_size, image_size), scale=1.0 / 255.0
    )
    model = build_classifier(
        backbone, 10, unfreeze_depth="all", dropout=0.1, learning_rate=3e-3
    )
    x = converter(source.x_train.astype("float32")).numpy()
    x_test = converter(source.x_test.astype("float32")).numpy()
    model.fit(x, source.y_train, epochs=epochs, batch_size=32, verbose=verbose)
    accuracy = float(model.evaluate(x_test, source.y_test, verbose=0)[1])
    parent = os.path.dirname(os.path.abspath(preset_dir)) or "."
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".preset-", dir=parent)
    try:
        backbone.save_to_preset(tmp)
        converter.save_to_preset(tmp)
        if os.path.exists(preset_dir):
            shutil.rmtree(preset_dir)
        os.replace(tmp, preset_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return accuracy


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
) -> tuple[float, keras.Model]:
    """Trains on the few target examples; returns (test accuracy, model).

    `transfer=True` runs the two-phase `fine_tune` recipe on a pretrained backbone;
    `transfer=False` trains the same network from scratch for the same number of
    epochs (all layers trainable, the head's learning rate).
    """
    from keras_transfer.builders import build_classifier
    from keras_transfer.finetune import fine_tune

    keras.utils.set_random_seed(seed)
    batch = min(32, len(x))
    if transfer:
        model = build_classifier(backbone, 10, unfreeze_depth=0, dropout=0.2)
        fine_tune(
            model,
            (x, y),
            head_epochs=head_epochs,
            fine_tune_epochs=fine_tune_epochs,
            unfreeze_depth="all",
            head_learning_rate=3e-3,
            fine_tune_learning_rate=1e-3,
            verbose=0,
        )
    else:
        model = build_classifier(
            backbone, 10, unfreeze_depth="all", dropout=0.2, learning_rate=3e-3
        )
        model.fit(
            x, y, epochs=head_epochs + fine_tune_epochs, batch_size=batch, verbose=0
        )
    accuracy = float(model.evaluate(x_test, y_test, verbose=0)[1])
    return accuracy, model


def run_demo(
    *,
    output_dir: str = "saved_models/demo",
    shots: int | None = 10,
    quick: bool = False,
    seed: int = 0,
    export: bool = True,
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
        export: bool. Finish with a verified TFLite int8 export. Defaults to True.
        verbose: int. 0 silent, 1 progress lines. Defaults to 1.

    Returns:
        A `DemoResult`.

    Examples:
    ```python
    from keras_transfer.demo import run_demo
    result = run_demo(quick=True, export=False, verbose=0,
                      output_dir="/tmp/kt_demo_doc")
    assert 0.0 <= result.transfer_accuracy <= 1.0
    ```
    """
    from keras_transfer.backbones import load_backbone
    from keras_transfer.datasets import digits_domains

    start = time.perf_counter()
    say = print if verbose else (lambda *a, **k: None)
    pre_epochs, head_epochs, ft_epochs = (4, 3, 3) if quick else (20, 15, 25)
    os.makedirs(output_dir, exist_ok=True)
    preset_dir = os.path.join(output_dir, "digits_vgg_preset")
    say(
        f"[1/4] Pretraining a KerasHub VGGBackbone on source digits ({pre_epochs} epochs)"
    )
    source_acc = pretrain_source_preset(preset_dir, epochs=pre_epochs, seed=seed)
    say(f"      source test accuracy {source_acc:.3f}; preset saved to {preset_dir}")

    _, target = digits_domains(seed=seed)
    idx = few_shot_indices(target.y_train, shots, seed)
    x, y = target.x_train[idx].astype("float32"), target.y_train[idx]
    x_test = target.x_test.astype("float32")
    say(f"[2/4] Loading it back: load_backbone('keras_hub:{preset_dir}')")
    say(f"[3/4] Fine-tuning on {len(idx)} labelled target examples ({shots} per class)")
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
    )
    say("      training the same network from scratch on the same examples")
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
    model.save(model_path)
    say("")
    say(f"  target test accuracy, {shots} labelled examples per class:")
    say(f"    fine-tuned from source preset : {transfer_acc:.3f}")
    say(f"    trained from scratch          : {scratch_acc:.3f}")
    say(f"  model saved to {model_path}")
    report = None
    if export:
        say("[4/4] Exporting to TFLite int8 (verified against the Keras model)")
        from keras_transfer.export import ExportVerificationError, export_tflite

        representative = np.concatenate([x, x_test])[:400]
        try:
            report = export_tflite(
                model,
                os.path.join(output_dir, "demo_int8"),
                quantization="int8",
                representative_data=representative,
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
                verify_data=representative,
                overwrite=True,
            )
        say(f"      {report}")
    return DemoResult(
        shots=shots if shots is not None else -1,
        transfer_accuracy=transfer_acc,
        scratch_accuracy=scratch_acc,
        source_accuracy=source_acc,
        preset_dir=preset_dir,
        model_path=model_path,
        seconds=time.perf_counter() - start,
        export=report,
    )
