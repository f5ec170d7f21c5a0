"""Keras finds keras-transfer's classes in a `.keras` file without importing them.

The package imports its modules lazily (``import keras_transfer`` loads no
TensorFlow), so a class such as ``ApplicationPreprocessing`` is registered with Keras
only once its module has been imported. `install` puts a small stand-in under each
registered name (``keras_transfer>ApplicationPreprocessing``) whose ``from_config``
imports the real module, whose decorator then replaces the stand-in, and builds the
real object: ``keras.saving.load_model`` reads a model holding keras-transfer layers
in a process that imported keras and then keras_transfer, or used any keras-transfer
function. `keras_transfer.load_model` imports every class first and needs none of this.
"""

from __future__ import annotations

import importlib
from collections.abc import MutableMapping
from typing import Any

#: Every class keras-transfer registers with Keras -> the module that defines it.
#: tests/test_saving.py checks it against what `saving.register_all` registers.
SERIALIZABLE: dict[str, str] = {
    "keras_transfer>ApplicationPreprocessing": "keras_transfer.backbones.applications",
    "keras_transfer>BatchNuclearNorm": "keras_transfer.adaptation.target_methods",
    "keras_transfer>CORALAlignment": "keras_transfer.adaptation.methods",
    "keras_transfer>CombinedAlignment": "keras_transfer.adaptation.combined",
    "keras_transfer>ConditionalDomainAdversarial": "keras_transfer.adaptation.methods",
    "keras_transfer>DANN": "keras_transfer.adaptation.model",
    "keras_transfer>DANNLearningRateSchedule": "keras_transfer.adaptation.schedules",
    "keras_transfer>Distiller": "keras_transfer.distillation",
    "keras_transfer>DomainAdaptationModel": "keras_transfer.adaptation.model",
    "keras_transfer>DomainAdversarial": "keras_transfer.adaptation.methods",
    "keras_transfer>EntropyMinimization": "keras_transfer.adaptation.target_methods",
    "keras_transfer>GradientReversal": "keras_transfer.layers.gradient_reversal",
    "keras_transfer>HubLayer": "keras_transfer.backbones.tfhub",
    "keras_transfer>ImportanceWeightedConditionalDomainAdversarial": (
        "keras_transfer.adaptation.weighted"
    ),
    "keras_transfer>ImportanceWeightedDomainAdversarial": (
        "keras_transfer.adaptation.weighted"
    ),
    "keras_transfer>JointForward": "keras_transfer.adaptation.methods",
    "keras_transfer>LabelAccuracy": "keras_transfer.augment",
    "keras_transfer>MMDAlignment": "keras_transfer.adaptation.methods",
    "keras_transfer>MinimumClassConfusion": "keras_transfer.adaptation.target_methods",
    "keras_transfer>PriorCorrection": "keras_transfer.adaptation.label_shift",
    "keras_transfer>SelfTraining": "keras_transfer.adaptation.target_methods",
    "keras_transfer>SmoothedCrossentropy": "keras_transfer.augment",
    "keras_transfer>TextEncoder": "keras_transfer.text.encoder",
    "keras_transfer>TokenIdsEncoder": "keras_transfer.text.export",
}


def _stand_in(registered: str, module: str) -> type:
    def from_config(cls, config: dict, *args: Any, **kwargs: Any) -> Any:
        importlib.import_module(module)  # its decorator replaces the stand-in
        from keras.saving import get_custom_objects

        real = get_custom_objects().get(registered)
        if real is None or real is cls:
            raise TypeError(
                f"Importing {module} did not register {registered!r} with Keras: "
                "load the model with keras_transfer.load_model."
            )
        return real.from_config(config, *args, **kwargs)

    name = registered.split(">", 1)[1]
    return type(
        name,
        (),
        {
            "__module__": module,
            "__doc__": f"Stand-in for {module}.{name}: imports it when a model loads.",
            "from_config": classmethod(from_config),
            "_keras_transfer_stand_in": True,
        },
    )


def install(custom_objects: MutableMapping[str, Any]) -> None:
    """Puts a stand-in under every name of `SERIALIZABLE` not registered yet.

    Args:
        custom_objects: Keras's global registry, ``keras.saving.get_custom_objects()``.

    Examples:
    ```python
    from keras_transfer._lazy_registry import SERIALIZABLE, install
    registry = {}
    install(registry)
    assert set(registry) == set(SERIALIZABLE)
    ```
    """
    for registered, module in SERIALIZABLE.items():
        if registered not in custom_objects:
            custom_objects[registered] = _stand_in(registered, module)
