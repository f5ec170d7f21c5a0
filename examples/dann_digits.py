# ruff: noqa: E402
"""# Domain adaptation with DANN on the digits domain pair

Source: scikit-learn digits (labelled). Target: the same digits blended with natural
image patches, MNIST-M style (labels unused for training). A small CNN encoder is
trained twice, source-only and with DANN (Ganin et al. 2016), and both are scored on
the target test split. The feature plot shows source vs target features after each.
Run as a script with `--quick` for a smoke test.
"""

# %%
import os
import sys

QUICK = "--quick" in sys.argv or os.environ.get("KERAS_TRANSFER_QUICK") == "1"
OUT = os.environ.get("KERAS_TRANSFER_EXAMPLES_OUT", "saved_models/examples")
OUT = os.path.join(OUT, "dann_digits")
os.makedirs(OUT, exist_ok=True)
EPOCHS = 2 if QUICK else 15
N = 300 if QUICK else None

# %% The two domains
from keras_transfer.datasets import digits_domains

source, target = digits_domains(size=32)
xs, ys = source.x_train[:N], source.y_train[:N]
xt = target.x_train[:N]  # target labels are never used for training
print("source", xs.shape, "target", xt.shape)

# %% Train source-only and DANN with the same encoder architecture
from keras_transfer._backend import keras
from keras_transfer.adaptation import DomainAdaptationModel, DomainLambdaScheduler
from keras_transfer.data import domain_pairs


def encoder():
    return keras.Sequential(
        [
            keras.Input((32, 32, 3)),
            keras.layers.Rescaling(1 / 255.0),
            keras.layers.Conv2D(32, 3, strides=2, activation="relu"),
            keras.layers.Conv2D(64, 3, strides=2, activation="relu"),
            keras.layers.GlobalAveragePooling2D(),
        ]
    )


results = {}
models = {}
for method in ("source_only", "dann"):
    keras.utils.set_random_seed(0)
    model = DomainAdaptationModel(encoder(), 10, method=method)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    model.fit(
        domain_pairs((xs, ys), xt, batch_size=32),
        epochs=EPOCHS,
        callbacks=[DomainLambdaScheduler()] if method == "dann" else [],
        verbose=0,
    )
    probs = model.inference_model().predict(target.x_test, verbose=0)
    results[method] = float((probs.argmax(-1) == target.y_test).mean())
    models[method] = model
    print(f"{method:>12}: target test accuracy {results[method]:.3f}")

# %% Source vs target features (PCA) after each training
from keras_transfer.reports import plot_feature_projection

feats = {
    m: (
        models[m].features(source.x_test[:300]),
        models[m].features(target.x_test[:300]),
    )
    for m in models
}
path = plot_feature_projection(
    feats["source_only"], feats["dann"], os.path.join(OUT, "features_pca.png")
)
print("left: source-only, right: DANN ->", path)
