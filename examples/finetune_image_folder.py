# ruff: noqa: E402
"""# Fine-tune a pretrained image backbone on a local folder of images

The folder layout is `root/<class name>/<image>`. This example first writes such a
folder from the built-in MNIST-M-style digits (so it runs offline), pretrains a small
KerasHub backbone on the *source* digits as a stand-in for an ImageNet preset, then
fine-tunes it on the folder with `keras-transfer train`, which writes a run directory
with the resolved config, TensorBoard logs, checkpoints, the model and a report.

Online, replace the backbone with a real preset, e.g.
`keras_applications:MobileNetV3Small` or `keras_hub:resnet_18_imagenet`.
Run as a script with `--quick` for a smoke test.
"""

# %%
import json
import os
import sys

QUICK = "--quick" in sys.argv or os.environ.get("KERAS_TRANSFER_QUICK") == "1"
OUT = os.environ.get("KERAS_TRANSFER_EXAMPLES_OUT", "saved_models/examples")
OUT = os.path.join(OUT, "finetune_image_folder")
PER_CLASS = 8 if QUICK else 60

# %% Write a folder of images: OUT/digits_folder/<digit>/<n>.png
from PIL import Image

from keras_transfer.datasets import digits_domains

_, target = digits_domains(size=32)
folder = os.path.join(OUT, "digits_folder")
for label in range(10):
    os.makedirs(os.path.join(folder, str(label)), exist_ok=True)
    images = target.x_train[target.y_train == label][:PER_CLASS]
    for i, image in enumerate(images):
        Image.fromarray(image).save(os.path.join(folder, str(label), f"{i}.png"))
print(f"wrote {10 * PER_CLASS} images to {folder}")

# %% A pretrained backbone: a KerasHub preset trained on the source digits
from keras_transfer.demo import pretrain_source_preset

preset = os.path.join(OUT, "source_preset")
if not os.path.exists(preset):
    accuracy = pretrain_source_preset(preset, epochs=2 if QUICK else 15)
    print(f"source-domain accuracy of the preset: {accuracy:.3f}")

# %% Fine-tune with a config file (the same schema as keras_transfer.config.TrainConfig)
import yaml

from keras_transfer.cli import main

config = {
    "name": "folder_run",
    "runs_dir": os.path.join(OUT, "runs"),
    "data": {"source": folder, "image_size": 32, "validation_split": 0.25},
    "model": {"backbone": f"keras_hub:{preset}", "head": "linear", "dropout": 0.1},
    "training": {
        "epochs": 1 if QUICK else 10,
        "fine_tune_epochs": 1 if QUICK else 10,
        "unfreeze_depth": "all",
        "fine_tune_learning_rate": 1e-4,
    },
}
config_path = os.path.join(OUT, "train.yaml")
with open(config_path, "w") as fh:
    yaml.safe_dump(config, fh, sort_keys=False)
code = main(["train", config_path, "--overwrite", "--quiet"])
assert code == 0, code

# %% What the run wrote
run_dir = os.path.join(OUT, "runs", "folder_run")
print(sorted(os.listdir(run_dir)))
metrics = json.load(open(os.path.join(run_dir, "metrics.json")))
print(f"validation accuracy: {metrics['evaluation']['accuracy']:.3f}")
print("report:", os.path.join(run_dir, "report", "report.html"))
