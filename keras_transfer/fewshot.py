"""Few-shot learning: prototypical networks and a Reptile initialisation.

``ProtoNetClassifier`` (Snell et al. 2017) wraps any backbone: a model that maps
inputs to feature vectors, or a spec string / `LoadedBackbone`, made into a pooled
encoder by `keras_transfer.encoders.make_encoder` as for domain adaptation. It trains
episodically: each step samples an N-way K-shot task, takes each class's mean
embedding (its prototype) from the support set, and classifies the queries by
softmax over negative squared Euclidean distances. For a new task,
``fit_support(x, y)`` stores the prototypes of a handful of labelled examples and
``predict(x)`` returns the nearest prototype's label; no weight changes.

``reptile`` (Nichol et al. 2018) meta-learns an initialisation for a model with an
N-way output: it repeatedly fine-tunes a copy on one sampled task for a few SGD steps
and moves the weights a fraction of the way towards the adapted ones.

Examples:
```python
import numpy as np
from keras_transfer._backend import keras
from keras_transfer.fewshot import ProtoNetClassifier

backbone = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8)])
x = np.random.default_rng(0).normal(size=(60, 4)).astype("float32")
y = np.arange(60) % 6
proto = ProtoNetClassifier(backbone)
proto.fit_episodes(x, y, n_way=3, k_shot=2, n_query=3, episodes=5)
proto.fit_support(x[:6], y[:6])
assert proto.predict(x[:4]).shape == (4,)
```

References:
    Snell, Swersky and Zemel 2017, "Prototypical Networks for Few-shot Learning".
    Nichol, Achiam and Schulman 2018, "On First-Order Meta-Learning Algorithms".
"""

from __future__ import annotations

from typing import Any

import numpy as np

from keras_transfer._backend import keras, tf
from keras_transfer._deprecation import renamed_arguments
from keras_transfer.config.library import FewShotConfig
from keras_transfer.encoders import make_encoder
from keras_transfer.heads import ends_in_softmax

__all__ = [
    "FewShotConfig",
    "ProtoNetClassifier",
    "adapt_on_support",
    "mean_confidence_interval",
    "reptile",
    "sample_episode",
]


def _check_task(y: np.ndarray, n_way: int, k_shot: int, n_query: int) -> np.ndarray:
    classes = np.unique(y)
    if n_way < 2 or k_shot < 1 or n_query < 0:
        raise ValueError(
            "Expected n_way >= 2, k_shot >= 1, n_query >= 0. Received: "
            f"n_way={n_way}, k_shot={k_shot}, n_query={n_query}"
        )
    if len(classes) < n_way:
        raise ValueError(
            f"Expected at least n_way={n_way} classes. Received {len(classes)}."
        )
    return classes


def sample_episode(
    x: np.ndarray,
    y: np.ndarray,
    n_way: int,
    k_shot: int,
    n_query: int,
    rng: np.random.Generator,
) -> tuple:
    """Samples one N-way K-shot episode; labels are relabelled ``0..n_way-1``.

    Args:
        x: np.ndarray. Examples.
        y: np.ndarray. Integer labels.
        n_way: int. Classes in the episode.
        k_shot: int. Support examples per class.
        n_query: int. Query examples per class.
        rng: np.random.Generator.

    Returns:
        ``(x_support, y_support, x_query, y_query, classes)``, with the original
        labels of the episode's classes in ``classes``.
    """
    y = np.asarray(y)
    classes = rng.choice(_check_task(y, n_way, k_shot, n_query), n_way, replace=False)
    s_idx, q_idx, s_lab, q_lab = [], [], [], []
    for i, c in enumerate(classes):
        idx = rng.permutation(np.flatnonzero(y == c))
        if len(idx) < k_shot + n_query:
            raise ValueError(
                f"Class {c} has {len(idx)} examples; the episode needs "
                f"k_shot + n_query = {k_shot + n_query}."
            )
        s_idx += list(idx[:k_shot])
        q_idx += list(idx[k_shot : k_shot + n_query])
        s_lab += [i] * k_shot
        q_lab += [i] * n_query
    return x[s_idx], np.array(s_lab), x[q_idx], np.array(q_lab), classes


def mean_confidence_interval(values: Any) -> tuple[float, float]:
    """Mean and the half-width of its normal 95% confidence interval (1.96 s.e.)."""
    values = np.asarray(values, dtype="float64")
    if len(values) < 2:
        return float(values.mean()), float("nan")
    return float(values.mean()), float(1.96 * values.std(ddof=1) / np.sqrt(len(values)))


def _sq_distances(queries: Any, prototypes: Any) -> Any:
    diff = queries[:, None, :] - prototypes[None, :, :]
    return tf.reduce_sum(tf.square(diff), axis=-1)


def _flat(embeddings: Any) -> Any:
    return tf.reshape(embeddings, (tf.shape(embeddings)[0], -1))


class ProtoNetClassifier:
    """Prototypical-network classifier over any backbone (Snell et al. 2017).

    Args:
        backbone: str, `LoadedBackbone`, keras.Model or Layer. A spec string for
            `keras_transfer.backbones.load_backbone` (``"keras_hub:<preset dir>"``,
            ``"keras_applications:<Name>"``, ``"saved_model:<dir>"``, ...) or a
            `LoadedBackbone` becomes an encoder as in `DomainAdaptationModel`
            (`keras_transfer.encoders.make_encoder`: its preprocessor, the
            backbone, average pooling of feature maps). A keras Model or Layer
            is used as it is (rank > 2 outputs are flattened). Its trainable
            weights are trained by ``fit_episodes``. ``encoder=`` is a deprecated
            alias.
        input_shape: tuple or None. Shape of one raw input, for a spec string or
            `LoadedBackbone` that does not declare it. Defaults to None.
        **backbone_kwargs: Arguments of `load_backbone` for a spec string (e.g.
            ``weights=None``).

    Attributes:
        encoder: the feature model: the backbone as given, or the encoder made
            from a spec string or `LoadedBackbone` (named as in
            `DomainAdaptationModel.encoder`).
        prototypes_: np.ndarray ``(classes, dim)``, set by ``fit_support``.
        classes_: np.ndarray of the support set's labels, in prototype order.

    Raises:
        ValueError: For ``input_shape`` or backbone arguments with a keras
            Model/Layer (it is used as it is), or a backbone of another type.

    Examples:
    ```python
    import numpy as np
    from keras_transfer.fewshot import ProtoNetClassifier

    proto = ProtoNetClassifier(
        "keras_applications:MobileNetV3Small", weights=None, input_shape=(32, 32, 3)
    )
    x = np.random.default_rng(0).uniform(0, 255, (6, 32, 32, 3)).astype("float32")
    proto.fit_support(x, [0, 0, 1, 1, 2, 2])
    assert proto.prototypes_.shape == (3, 576)
    ```
    """

    @renamed_arguments(encoder="backbone")
    def __init__(
        self,
        backbone: Any,
        *,
        input_shape: tuple | None = None,
        **backbone_kwargs: Any,
    ) -> None:
        if isinstance(backbone, keras.layers.Layer):
            if input_shape is not None or backbone_kwargs:
                given = ["input_shape"] * (input_shape is not None)
                raise ValueError(
                    "Expected input_shape and backbone arguments only with a spec "
                    "string or a LoadedBackbone: a keras Model/Layer is used as it "
                    f"is. Received: backbone={backbone.name!r} with "
                    f"{given + sorted(backbone_kwargs)}"
                )
            self.encoder = backbone
        else:
            self.encoder = make_encoder(
                backbone, input_shape=input_shape, **backbone_kwargs
            )
        self.prototypes_: np.ndarray | None = None
        self.classes_: np.ndarray | None = None

    def embed(self, x: Any, batch_size: int = 256) -> np.ndarray:
        """Embeddings of ``x`` in inference mode, as a 2-D array (image files,
        `keras_transfer.data.ImageFiles`, are decoded one batch at a time)."""
        from keras_transfer.data.folders import ImageFiles

        out = []
        for i in range(0, len(x), batch_size):
            batch = x[i : i + batch_size]
            if isinstance(batch, ImageFiles):
                batch = np.asarray(batch, "float32")
            out.append(_flat(self.encoder(batch, training=False)).numpy())
        return np.concatenate(out, axis=0)

    def _episode_loss(self, xs: Any, ys: Any, xq: Any, yq: Any, n_way: int) -> tuple:
        emb = _flat(self.encoder(tf.concat([xs, xq], axis=0), training=True))
        support, query = emb[: tf.shape(xs)[0]], emb[tf.shape(xs)[0] :]
        protos = tf.math.unsorted_segment_mean(support, ys, n_way)
        logits = -_sq_distances(query, protos)
        loss = tf.reduce_mean(
            keras.losses.sparse_categorical_crossentropy(yq, logits, from_logits=True)
        )
        acc = tf.reduce_mean(tf.cast(tf.argmax(logits, -1, "int32") == yq, "float32"))
        return loss, acc

    def fit_episodes(
        self,
        x: np.ndarray,
        y: np.ndarray,
        *,
        n_way: int = 5,
        k_shot: int = 5,
        n_query: int = 5,
        episodes: int = 200,
        optimizer: Any = None,
        seed: int = 0,
    ) -> dict:
        """Trains the encoder on random N-way K-shot episodes of ``(x, y)``.

        Returns:
            ``{"loss": [...], "accuracy": [...]}`` per episode (query set).
        """
        rng = np.random.default_rng(seed)
        optimizer = optimizer or keras.optimizers.Adam(1e-3)
        weights = self.encoder.trainable_weights

        @tf.function(reduce_retracing=True)
        def step(xs: Any, ys: Any, xq: Any, yq: Any) -> tuple:
            with tf.GradientTape() as tape:
                loss, acc = self._episode_loss(xs, ys, xq, yq, n_way)
            grads = tape.gradient(loss, weights)
            optimizer.apply_gradients(zip(grads, weights))
            return loss, acc

        history: dict = {"loss": [], "accuracy": []}
        for _ in range(episodes):
            xs, ys, xq, yq, _c = sample_episode(x, y, n_way, k_shot, n_query, rng)
            loss, acc = step(
                tf.constant(xs, "float32"),
                tf.constant(ys, "int32"),
                tf.constant(xq, "float32"),
                tf.constant(yq, "int32"),
            )
            history["loss"].append(float(loss))
            history["accuracy"].append(float(acc))
        return history

    def fit_support(self, x: np.ndarray, y: np.ndarray) -> ProtoNetClassifier:
        """Stores one prototype per class: the mean embedding of its examples."""
        y = np.asarray(y)
        if len(x) != len(y) or len(y) == 0:
            raise ValueError(
                f"Expected x and y of the same non-zero length. Received {len(x)} "
                f"and {len(y)}."
            )
        emb = self.embed(x)
        self.classes_ = np.unique(y)
        self.prototypes_ = np.stack([emb[y == c].mean(0) for c in self.classes_])
        return self

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Softmax over negative squared distances to the prototypes."""
        if self.prototypes_ is None:
            raise ValueError("Call fit_support(x, y) before predicting.")
        logits = -_sq_distances(self.embed(x), self.prototypes_.astype("float32"))
        return tf.nn.softmax(logits, axis=-1).numpy()

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Label (from the support set's labels) of the nearest prototype."""
        return self.classes_[np.argmax(self.predict_proba(x), axis=-1)]

    def evaluate_episodes(
        self,
        x: np.ndarray,
        y: np.ndarray,
        *,
        n_way: int = 5,
        k_shot: int = 5,
        n_query: int = 15,
        episodes: int = 200,
        seed: int = 1,
    ) -> tuple[float, float]:
        """Mean query accuracy over random episodes and its 95% CI half-width."""
        rng = np.random.default_rng(seed)
        accs = []
        for _ in range(episodes):
            xs, ys, xq, yq, _c = sample_episode(x, y, n_way, k_shot, n_query, rng)
            accs.append(np.mean(self.fit_support(xs, ys).predict(xq) == yq))
        return mean_confidence_interval(accs)


def _sgd_steps(model: Any, x: Any, y: Any, steps: int, learning_rate: float) -> None:
    optimizer = keras.optimizers.SGD(learning_rate)
    x, y = tf.constant(x, "float32"), tf.constant(y, "int32")
    from_logits = not ends_in_softmax(model)
    for _ in range(steps):
        with tf.GradientTape() as tape:
            out = model(x, training=True)
            loss = tf.reduce_mean(
                keras.losses.sparse_categorical_crossentropy(
                    y, out, from_logits=from_logits
                )
            )
        grads = tape.gradient(loss, model.trainable_weights)
        optimizer.apply_gradients(zip(grads, model.trainable_weights))


def adapt_on_support(
    model: Any, x: Any, y: Any, *, steps: int = 10, learning_rate: float = 0.02
) -> Any:
    """Returns a copy of ``model`` fine-tuned by SGD on a support set (0..N-1 labels)."""
    clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    _sgd_steps(clone, x, y, steps, learning_rate)
    return clone


def reptile(
    model: Any,
    x: np.ndarray,
    y: np.ndarray,
    *,
    n_way: int = 5,
    k_shot: int = 5,
    inner_steps: int = 5,
    inner_learning_rate: float = 0.02,
    meta_step_size: float = 0.1,
    meta_iterations: int = 100,
    seed: int = 0,
) -> Any:
    """Reptile meta-learning (Nichol et al. 2018): sets ``model``'s initialisation.

    For each meta-iteration: sample an N-way K-shot task (labels ``0..N-1``), run
    ``inner_steps`` of SGD from the current weights, then move the weights towards
    the adapted ones: ``w += meta_step_size * (w_task - w)`` (linearly annealed to 0).

    Args:
        model: keras.Model with ``n_way`` outputs (logits or softmax).
        x: np.ndarray. Meta-training examples.
        y: np.ndarray. Their integer labels (any number of classes >= n_way).
        n_way, k_shot: ints. Task shape.
        inner_steps: int. SGD steps per task. Defaults to 5.
        inner_learning_rate: float. Defaults to 0.02.
        meta_step_size: float. Initial outer step size. Defaults to 0.1.
        meta_iterations: int. Number of tasks. Defaults to 100.
        seed: int. Episode sampling seed.

    Returns:
        ``model``, with meta-learned weights (changed in place).
    """
    if model.outputs[0].shape[-1] != n_way:
        raise ValueError(
            f"Expected a model with n_way={n_way} outputs. Received "
            f"{model.outputs[0].shape[-1]}."
        )
    rng = np.random.default_rng(seed)
    task_model = keras.models.clone_model(model)
    for it in range(meta_iterations):
        xs, ys, *_ = sample_episode(x, y, n_way, k_shot, 0, rng)
        start = model.get_weights()
        task_model.set_weights(start)
        _sgd_steps(task_model, xs, ys, inner_steps, inner_learning_rate)
        eps = meta_step_size * (1.0 - it / meta_iterations)
        model.set_weights(
            [w + eps * (a - w) for w, a in zip(start, task_model.get_weights())]
        )
    return model
