"""Config files and overrides: YAML/JSON loading, `key.path=value`, templates.

Examples:
```python
from keras_transfer.config import TrainConfig, apply_overrides, template
cfg = apply_overrides(TrainConfig(), ["training.epochs=1", "model.head=mlp"])
assert cfg.training.epochs == 1
assert template("train").startswith("# keras-transfer train config.")
```
"""

from __future__ import annotations

import dataclasses
import json
import os
import textwrap
from typing import Any

import yaml

from keras_transfer.config._fields import choices_text
from keras_transfer.config.commands import TEMPLATES
from keras_transfer.config.validation import ConfigError, from_dict, looks_like_float

__all__ = ["apply_overrides", "load_config", "template", "to_dict"]


def to_dict(config: Any) -> dict:
    """Returns the config as plain nested dicts (for YAML/JSON)."""
    return dataclasses.asdict(config)


def load_config(cls: type, path: str | os.PathLike | None, overrides=()) -> Any:
    """Reads a YAML or JSON file into `cls` and applies `key.path=value` overrides.

    Args:
        cls: type. The config dataclass.
        path: str or None. A .yaml/.yml/.json file; None starts from the defaults.
        overrides: iterable of str. `"training.learning_rate=1e-4"` items; values are
            parsed as YAML scalars/lists.

    Returns:
        A validated instance of `cls`.

    Raises:
        ConfigError: the file is missing or unparsable, or a field is invalid.

    Examples:
    ```python
    from keras_transfer.config import TrainConfig, load_config
    cfg = load_config(TrainConfig, None, ["data.limit=50"])
    assert cfg.data.limit == 50
    ```
    """
    data: dict = {}
    if path is not None:
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise ConfigError(f"Config file not found. Received: config={path!r}")
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
        try:
            data = json.loads(text) if path.endswith(".json") else yaml.safe_load(text)
        except (ValueError, yaml.YAMLError) as err:
            raise ConfigError(f"Could not parse config file {path!r}: {err}") from err
        data = data or {}
    data = _merge_overrides(data, overrides)
    return from_dict(cls, data)


def _merge_overrides(data: dict, overrides) -> dict:
    data = json.loads(json.dumps(data))  # deep copy of plain data
    for item in overrides or ():
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(
                "Expected an override of the form key.path=value "
                f"(e.g. training.learning_rate=1e-4). Received: {item!r}"
            )
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        if isinstance(value, str) and looks_like_float(value):
            value = float(value)  # YAML 1.1 reads "1e-4" as a string
        node = data
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"Cannot set {key}: {part} is not a section.")
        node[parts[-1]] = value
    return data


def apply_overrides(config: Any, overrides) -> Any:
    """Returns a validated copy of `config` with `key.path=value` overrides applied."""
    return from_dict(type(config), _merge_overrides(to_dict(config), overrides))


def template(kind: str) -> str:
    """Returns a commented YAML starting config for `kind` (train, adapt, ...).

    Raises:
        ConfigError: `kind` is not one of `TEMPLATES`.
    """
    if kind not in TEMPLATES:
        raise ConfigError(
            f"Unknown template {kind!r}. Accepted: {', '.join(TEMPLATES)}."
        )
    cls = TEMPLATES[kind]
    lines = [f"# keras-transfer {kind} config. {cls.__doc__.splitlines()[0]}"]
    lines.append(f"# Run: keras-transfer {kind} this.yaml [--set section.field=value]")
    _template_lines(cls(), lines, indent="")
    return "\n".join(lines) + "\n"


def _template_lines(obj: Any, lines: list, indent: str) -> None:
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            doc = (type(value).__doc__ or "").splitlines()[0]
            lines.append(f"{indent}{f.name}:  # {doc}")
            _template_lines(value, lines, indent + "  ")
            continue
        help_text = f.metadata.get("help", "")
        if "choices" in f.metadata:
            help_text += f" One of: {choices_text(f.metadata['choices'])}."
        dumped = yaml.safe_dump({f.name: value}, default_flow_style=True, width=1000)
        dumped = dumped.strip()[1:-1]  # drop the braces of the flow mapping
        for line in textwrap.wrap(help_text, 86 - len(indent)):
            lines.append(f"{indent}# {line}")
        lines.append(f"{indent}{dumped}")
