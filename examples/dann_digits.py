# ruff: noqa: E402
"""# Unsupervised domain adaptation on the digits domain pair

Source: scikit-learn digits (labelled). Target: the same digits blended with natural
image patches, MNIST-M style (labels never used for training). One call,
`keras_transfer.adapt`, warms the encoder up on the source, then trains each
candidate method (source-only, BNM, CDAN, DANN, MCC) from that warm-up and keeps the one
that agrees most with their mean prediction on the target (EnsV), computed without
target labels (`method="auto"`). A source-only
model trained with the same recipe is the baseline; the feature plot shows source vs
target features for both. Run as a script with `--quick` for a smoke test.
"""

# %%
import os
import sys

QUICK = "--quick" in sys.argv or os.environ.get("KERAS_TRANSFER_QUICK") == "1"
OUT = os.environ.get("KERAS_TRANSFER_EXAMPLES_OUT", "saved_models/examples")
OUT = os.path.join(OUT, "dann_digits")
os.makedirs(OUT, exist_ok=True)
EPOCHS = 3 if QUICK else 20
N = 300 if QUICK else None

# %% The two domains
from keras_transfer.datasets import digits_domains

source, target = digits_domains(size=32)
xs, ys = source.x_train[:N], source.y_train[:N]
xt = target.x_train[:N]  # target labels are never used for training
print("source", xs.shape, "target", xt.shape)

# %% The encoder: a small CNN (any keras.Model, KerasHub preset or spec works too)
import keras_transfer as kt
from keras_transfer._backend import keras


def encoder():
    return keras.Sequential(
        [
            keras.Input((32, 32, 3)),
            keras.layers.Rescaling(1 / 255.0),
            keras.layers.Conv2D(32, 5, activation="relu", padding="same"),
            keras.layers.MaxPooling2D(),
            keras.layers.Conv2D(48, 5, activation="relu", padding="same"),
            keras.layers.MaxPooling2D(),
            keras.layers.Flatten(),
            keras.layers.Dense(100, activation="relu"),
        ]
    )


# %% Source-only baseline and adaptation, the same recipe and budget
results = {}
for method in ("source_only", "auto"):
    result = kt.adapt(encoder(), (xs, ys), xt, method=method, epochs=EPOCHS, seed=0)
    _, acc = result.model.evaluate(target.x_test, target.y_test, verbose=0)
    results[method] = result
    print(
        f"{method:>12} (trained {result.method}): target test accuracy {acc:.3f}, "
        f"held-out source accuracy {result.source_accuracy:.3f}"
    )
print("auto's candidates and their unsupervised scores:")
for name, cand in results["auto"].selection["candidates"].items():
    scores = cand["scores"]
    print(
        f"  {name:>12}: EnsV {scores['ensv']:.3f}, reverse validation "
        f"{scores['rv']:.3f}, DEV (minus the risk) {scores['dev']:.4f}"
    )

# %% Source vs target features (PCA) for each model
from keras_transfer.reports import plot_feature_projection

feats = {
    m: (
        r.training_model.features(source.x_test[:300]),
        r.training_model.features(target.x_test[:300]),
    )
    for m, r in results.items()
}
path = plot_feature_projection(
    feats["source_only"], feats["auto"], os.path.join(OUT, "features_pca.png")
)
print("left: source-only, right: adapted ->", path)

# %% Save and export the adapted model (no discriminator, no bottleneck tricks)
model = results["auto"].model
kt.save_model(model, os.path.join(OUT, "adapted.keras"))  # with its frozen layers
reloaded = kt.load_model(os.path.join(OUT, "adapted.keras"))
print("reloaded:", reloaded.predict(target.x_test[:4], verbose=0).argmax(-1))
