"""Validation of configs: types and choices (`from_dict`) and value ranges.

Examples:
```python
from keras_transfer.config import ConfigError, TrainConfig, from_dict
try:
    from_dict(TrainConfig, {"training": {"epochs": "three"}})
except ConfigError as err:
    assert "training.epochs" in str(err)
```
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Iterable
from typing import Any, Union

__all__ = ["ConfigError", "check_fields", "check_pretrain_config", "from_dict"]


class ConfigError(ValueError):
    """An invalid config: names the field, the value received and what is accepted."""


def _type_name(tp: Any) -> str:
    if tp is type(None):
        return "null"
    args = typing.get_args(tp)
    if args and (typing.get_origin(tp) in (Union, types.UnionType)):
        return " or ".join(_type_name(a) for a in args)
    return getattr(tp, "__name__", str(tp))


def looks_like_float(text: str) -> bool:
    """Whether `text` is a finite float literal (YAML 1.1 reads `1e-4` as a string)."""
    try:
        float(text)
    except ValueError:
        return False
    return text.strip().lower() not in ("nan", "inf", "-inf", "infinity")


def _check_value(path: str, tp: Any, value: Any, choices: tuple | None) -> Any:
    """Checks `value` against the type hint `tp`; returns it (ints widen to float)."""
    accepted = _type_name(tp)
    if typing.get_origin(tp) in (Union, types.UnionType):
        for option in typing.get_args(tp):
            try:
                return _check_value(path, option, value, choices)
            except ConfigError:
                continue
        if choices is not None:  # a value of the right type but not a choice
            accepted = f"one of {list(choices)}"
        raise ConfigError(
            f"Invalid value for {path}: expected {accepted}. Received: {path}={value!r}"
        )
    if tp is type(None):
        ok = value is None
    elif tp is float:
        if isinstance(value, str) and looks_like_float(value):
            value = float(value)  # YAML 1.1 reads 1e-4 (no dot) as a string
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif tp is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif tp is list:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            value = [value]  # `--set quantization=int8` means [int8]
        ok = isinstance(value, list)
    else:
        ok = isinstance(value, tp)
    if not ok:
        raise ConfigError(
            f"Invalid value for {path}: expected {accepted}. "
            f"Received: {path}={value!r} ({type(value).__name__})"
        )
    if choices is not None and value not in choices:
        raise ConfigError(
            f"Invalid value for {path}: expected one of {list(choices)}. "
            f"Received: {path}={value!r}"
        )
    return value


def from_dict(cls: type, data: dict | None, _prefix: str = "") -> Any:
    """Builds the dataclass `cls` from a (nested) dict, validating every field.

    Args:
        cls: type. A config dataclass such as `TrainConfig`.
        data: dict or None. Field values; missing fields keep their defaults.

    Returns:
        An instance of `cls`.

    Raises:
        ConfigError: an unknown field, or a value of the wrong type or not among the
            accepted choices; the message names the field path and the value.

    Examples:
    ```python
    from keras_transfer.config import TrainConfig, from_dict
    cfg = from_dict(TrainConfig, {"training": {"learning_rate": "1e-4"}})
    assert cfg.training.learning_rate == 1e-4 and cfg.training.epochs == 3
    # one value where a list is expected is a list of that value
    from keras_transfer.config import ExportConfig
    assert from_dict(ExportConfig, {"quantization": "int8"}).quantization == ["int8"]
    ```
    """
    data = {} if data is None else data
    where = _prefix.rstrip(".") or cls.__name__
    if not isinstance(data, dict):
        raise ConfigError(
            f"Expected {where} to be a mapping of fields. Received: {data!r}"
        )
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(
            f"Unknown field {_prefix}{unknown[0]} in {where}. Accepted fields: "
            f"{', '.join(fields)}. Received: {_prefix}{unknown[0]}={data[unknown[0]]!r}"
        )
    values = {}
    for name, value in data.items():
        tp, path = hints[name], f"{_prefix}{name}"
        if dataclasses.is_dataclass(tp):
            if isinstance(value, dict):  # start from the field's own default
                value = {**dataclasses.asdict(_default(fields[name])), **value}
            values[name] = from_dict(tp, value, f"{path}.")
        else:
            choices = fields[name].metadata.get("choices")
            values[name] = _check_value(path, tp, value, choices)
    return cls(**values)


def _default(f: dataclasses.Field) -> Any:
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return f.default


def check_fields(path: str, section: Any, rules: Iterable[tuple]) -> None:
    """Raises for the first `(field, ok, accepted)` rule of `section` that fails.

    The one form of a value-range error, shared by every command's checks.

    Args:
        path: str. Where `section` sits in the config, e.g. `"pretrain"`.
        section: Any. The section dataclass (or any object with the fields).
        rules: iterable of `(field name, bool ok, str accepted)`.

    Raises:
        ConfigError: `Invalid value for <path>.<field>: expected <accepted>.
            Received: <path>.<field>=<value>`.

    Examples:
    ```python
    from keras_transfer.config import ConfigError, DataConfig, check_fields
    data = DataConfig(batch_size=0)
    try:
        check_fields("data", data, [("batch_size", data.batch_size >= 1, ">= 1")])
    except ConfigError as err:
        assert "Received: data.batch_size=0" in str(err)
    ```
    """
    for name, ok, accepted in rules:
        if not ok:
            raise ConfigError(
                f"Invalid value for {path}.{name}: expected {accepted}. "
                f"Received: {path}.{name}={getattr(section, name)!r}"
            )


def _ints(values: list) -> bool:
    return all(isinstance(i, int) and not isinstance(i, bool) for i in values)


def check_pretrain_config(cfg: Any) -> None:
    """Checks the numeric fields of a `PretrainConfig` (no data is read).

    Args:
        cfg: PretrainConfig. The config to check.

    Raises:
        ConfigError: a field out of range, named `pretrain.<field>`.

    Examples:
    ```python
    from keras_transfer.config import PretrainConfig, check_pretrain_config
    check_pretrain_config(PretrainConfig())  # the defaults pass
    ```
    """
    p = cfg.pretrain
    rules = (
        (
            "filters",
            bool(p.filters) and _ints(p.filters) and min(p.filters) >= 1,
            "a non-empty list of ints >= 1",
        ),
        (
            "repeats",
            p.repeats is None
            or (
                len(p.repeats) == len(p.filters)
                and _ints(p.repeats)
                and min(p.repeats, default=0) >= 1
            ),
            f"null (one per stage) or a list of {len(p.filters)} ints >= 1 (one per "
            "pretrain.filters entry)",
        ),
        ("epochs", p.epochs >= 1, "an int >= 1"),
        ("learning_rate", p.learning_rate > 0, "a float > 0"),
        (
            "augment_warmup",
            not isinstance(p.augment_warmup, bool)
            and isinstance(p.augment_warmup, (int, float))
            and 0 <= p.augment_warmup < 1,
            "a float in [0, 1)",
        ),
    )
    check_fields("pretrain", p, rules)
