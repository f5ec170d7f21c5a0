"""TF-Hub handles and SavedModel directories as trainable **Keras 3** layers.

`hub.KerasLayer` is a tf_keras layer: a Keras 3 model refuses it, or trains with its
variables silently frozen. `HubLayer` loads the module itself (`hub.load` or
`tf.saved_model.load`) and registers each of the module's `tf.Variable`s as a Keras
weight that shares the same storage, so optimizer updates reach the module's
functions, `.keras` files store the fine-tuned values, and `model.export` works.
"""

from __future__ import annotations

import os
import re
from typing import Any

from keras_transfer._backend import keras, tf
from keras_transfer.backbones.base import LoadedBackbone

_LOADERS = ("hub", "saved_model")


def _load_module(handle: str, loader: str) -> Any:
    if loader == "saved_model":
        if not os.path.isdir(handle) or not os.path.exists(
            os.path.join(handle, "saved_model.pb")
        ):
            raise ValueError(
                f"SavedModel directory {handle!r} not found or has no saved_model.pb. "
                "Expected a directory written by tf.saved_model.save or model.export."
            )
        return tf.saved_model.load(handle)
    import tensorflow_hub as hub

    try:
        return hub.load(handle)
    except Exception as e:  # hub raises many types: OSError, URLError, ValueError...
        raise ValueError(
            f"Could not load the TF-Hub module {handle!r} ({type(e).__name__}: {e}). "
            "If this machine is offline, download the module once and pass its local "
            "directory instead: 'tfhub:/path/to/module' or 'saved_model:/path/to/dir'."
        ) from e


def _has_training_argument(fn: Any) -> bool:
    try:
        spec = fn.function_spec.fullargspec
    except AttributeError:
        try:
            import inspect

            params = inspect.signature(fn).parameters
            return "training" in params
        except (TypeError, ValueError):
            return False
    return "training" in spec.args or "training" in spec.kwonlyargs


def _module_variables(module: Any) -> tuple[list, set]:
    """Returns the module's variables and the ids of its trainable ones.

    TF-Hub "reusable SavedModels" list them in `variables`/`trainable_variables`;
    other SavedModels (a plain `tf.Module`, a Keras export) are walked instead.
    """
    if hasattr(module, "variables"):
        variables = list(module.variables)
        trainable = getattr(module, "trainable_variables", None)
        if trainable is None:
            trainable = [v for v in variables if v.trainable]
        return variables, {id(v) for v in trainable}
    seen: dict[int, Any] = {}
    for obj in tf.train.TrackableView(module).descendants():
        if isinstance(obj, tf.Variable) and id(obj) not in seen:
            seen[id(obj)] = obj
    variables = list(seen.values())
    return variables, {id(v) for v in variables if v.trainable}


def _clean(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", name.split(":")[0])


@keras.saving.register_keras_serializable(package="keras_transfer")
class HubLayer(keras.layers.Layer):
    """A Keras 3 layer around a TF-Hub module or SavedModel that trains its variables.

    The module is called with `training=True` only when the layer is trainable and
    called in training mode (the rule of `hub.KerasLayer`), and its
    `regularization_losses` are added while training.

    Args:
        handle: str. A TF-Hub handle (URL or local directory) or a SavedModel
            directory.
        loader: str. `"hub"` (`tensorflow_hub.load`) or `"saved_model"`
            (`tf.saved_model.load`). Defaults to `"hub"`.
        signature: str or None. Call this serving signature instead of `__call__`.
        output_key: str or None. Key to pick when the module returns a dict.
        trainable: bool. Whether the module's trainable variables train.
        **kwargs: Base layer keyword arguments (`name`, `dtype`, ...).

    Notes:
        A `.keras` file stores the handle and the (fine-tuned) weights, so reloading
        needs the module still reachable at `handle`; `model.export(...)` output is
        self-contained.

    Examples:
    ```python
    import tensorflow as tf
    from keras_transfer.backbones import HubLayer

    class Module(tf.Module):
        def __init__(self):
            self.w = tf.Variable(tf.ones((4, 2)))

        @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32)])
        def __call__(self, x):
            return tf.matmul(x, self.w)

    tf.saved_model.save(Module(), "/tmp/kt_doc_module")
    layer = HubLayer("/tmp/kt_doc_module", loader="saved_model", trainable=True)
    assert layer(tf.ones((1, 4))).shape == (1, 2)
    ```
    """

    def __init__(
        self,
        handle: str,
        loader: str = "hub",
        signature: str | None = None,
        output_key: str | None = None,
        trainable: bool = False,
        **kwargs: Any,
    ) -> None:
        if loader not in _LOADERS:
            raise ValueError(
                f"Expected loader to be one of {_LOADERS}. Received: loader={loader!r}"
            )
        super().__init__(trainable=trainable, autocast=False, **kwargs)
        self.handle = handle
        self.loader = loader
        self.signature = signature
        self.output_key = output_key
        module = _load_module(handle, loader)
        if signature:
            if signature not in getattr(module, "signatures", {}):
                raise ValueError(
                    f"Signature {signature!r} not found in {handle!r}. Available: "
                    f"{sorted(getattr(module, 'signatures', {}))}"
                )
            fn = module.signatures[signature]
        else:
            if not callable(module):
                raise ValueError(
                    f"The module at {handle!r} is not callable (no __call__). Pass "
                    f"signature=... (available: {sorted(module.signatures)})."
                )
            fn = module
        # Keep the module out of Keras' attribute tracking; TF tracking still sees it.
        self._module = module
        self._fn = fn
        self._has_training = not signature and _has_training_argument(fn)
        variables, trainable_ids = _module_variables(module)
        # keras.Variable(initializer=<tf.Variable>) keeps the same storage with the TF
        # backend (add_weight would copy it), so updates reach the module's graph.
        weights = []
        with self._open_name_scope():
            for v in variables:
                weights.append(
                    keras.Variable(
                        initializer=v,
                        trainable=id(v) in trainable_ids,
                        name=_clean(v.name),
                        autocast=False,
                    )
                )
        self._module_weights = weights
        # Run the setter now that the weights exist (see trainability.set_layer_trainable).
        type(self).trainable.fset(self, trainable)
        self._reg_losses = list(getattr(module, "regularization_losses", []) or [])
        self.built = True

    def call(self, inputs, training=None):
        train_mode = bool(training) and self.trainable
        if self.signature:
            result = self._fn(inputs)
        elif self._has_training:
            result = self._fn(inputs, training=train_mode)
        else:
            result = self._fn(inputs)
        if train_mode:
            for loss_fn in self._reg_losses:
                self.add_loss(loss_fn())
        if isinstance(result, dict):
            key = self.output_key or ("default" if "default" in result else None)
            if key is None:
                if len(result) == 1:
                    return next(iter(result.values()))
                raise ValueError(
                    f"The module at {self.handle!r} returns a dict with keys "
                    f"{sorted(result)}. Pass output_key=... to pick the features."
                )
            if key not in result:
                raise ValueError(
                    f"output_key={key!r} is not an output of {self.handle!r}. "
                    f"Available: {sorted(result)}"
                )
            return result[key]
        return result

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {
                "handle": self.handle,
                "loader": self.loader,
                "signature": self.signature,
                "output_key": self.output_key,
            }
        )
        return config


def _make_loader(loader: str):
    def load(
        rest: str,
        *,
        trainable: bool = False,
        input_shape: tuple | None = None,
        signature: str | None = None,
        output_key: str | None = None,
        modality: str = "image",
        **kwargs: Any,
    ) -> LoadedBackbone:
        if kwargs:
            raise ValueError(
                f"Unexpected arguments for a {loader} backbone: {sorted(kwargs)}. "
                "Accepted: trainable, input_shape, signature, output_key, modality."
            )
        layer = HubLayer(
            rest,
            loader=loader,
            signature=signature,
            output_key=output_key,
            trainable=trainable,
        )
        return LoadedBackbone(
            model=layer,
            preprocessor=None,
            modality=modality,
            spec=f"{'tfhub' if loader == 'hub' else 'saved_model'}:{rest}",
            input_shape=tuple(input_shape) if input_shape else None,
            metadata={"handle": rest, "loader": loader},
            pretrained=True,
        )

    return load


load_tfhub = _make_loader("hub")
load_saved_model = _make_loader("saved_model")
