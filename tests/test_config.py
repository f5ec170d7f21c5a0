"""Config schemas: validation messages, overrides, templates, files."""

from __future__ import annotations

import json

import pytest
import yaml

from keras_transfer.config import (
    TEMPLATES,
    ConfigError,
    TrainConfig,
    apply_overrides,
    from_dict,
    load_config,
    template,
    to_dict,
)


@pytest.mark.parametrize("kind", sorted(TEMPLATES))
def test_template_round_trips_to_defaults(kind):
    text = template(kind)
    assert text.startswith(f"# keras-transfer {kind} config.")
    assert from_dict(TEMPLATES[kind], yaml.safe_load(text)) == TEMPLATES[kind]()


def test_template_carries_field_help_and_choices():
    text = template("train")
    assert "# Learning rate of head training." in text
    assert "One of: linear, mlp." in text
    assert "One of: auto, true, false." in text  # as YAML spells them, not True
    choices = "One of: default, auto, appearance, auto+appearance, choose, null."
    # long help wraps over several comment lines
    flat = " ".join(
        line.strip().lstrip("#").strip() for line in template("adapt").split("\n")
    )
    assert choices in flat


def test_unknown_field_names_field_and_accepted():
    with pytest.raises(ConfigError, match="Unknown field training.lr ") as err:
        from_dict(TrainConfig, {"training": {"lr": 0.1}})
    assert "learning_rate" in str(err.value)  # lists what is accepted
    assert "training.lr=0.1" in str(err.value)  # and what was received


def test_wrong_type_names_field_value_and_type():
    with pytest.raises(ConfigError) as err:
        from_dict(TrainConfig, {"training": {"epochs": "three"}})
    msg = str(err.value)
    assert "training.epochs" in msg and "expected int" in msg and "'three'" in msg


def test_bool_is_not_an_int_and_choices_are_checked():
    with pytest.raises(ConfigError, match="training.epochs"):
        from_dict(TrainConfig, {"training": {"epochs": True}})
    with pytest.raises(ConfigError, match=r"one of \['linear', 'mlp'\]"):
        from_dict(TrainConfig, {"model": {"head": "cnn"}})
    with pytest.raises(ConfigError, match="Expected data to be a mapping"):
        from_dict(TrainConfig, {"data": "digits"})


def test_union_types_and_int_to_float():
    cfg = from_dict(
        TrainConfig,
        {
            "training": {"unfreeze_depth": 3, "learning_rate": 1},
            "data": {"limit": None},
        },
    )
    assert cfg.training.unfreeze_depth == 3
    assert isinstance(cfg.training.learning_rate, float)
    with pytest.raises(ConfigError, match="expected int or str"):
        from_dict(TrainConfig, {"training": {"unfreeze_depth": 1.5}})


def test_overrides_are_parsed_as_yaml_and_validated():
    cfg = apply_overrides(
        TrainConfig(),
        ["training.learning_rate=1e-4", "data.limit=50", "model.head=mlp", "name=x"],
    )
    assert cfg.training.learning_rate == pytest.approx(1e-4)
    assert cfg.data.limit == 50 and cfg.model.head == "mlp" and cfg.name == "x"
    with pytest.raises(ConfigError, match="key.path=value"):
        apply_overrides(TrainConfig(), ["training.learning_rate"])
    with pytest.raises(ConfigError, match="Unknown field training.nope"):
        apply_overrides(TrainConfig(), ["training.nope=1"])


def test_one_value_for_a_list_field_is_a_list_of_it():
    from keras_transfer.config import ExportConfig, TuneConfig

    cfg = apply_overrides(ExportConfig(), ["quantization=int8"])
    assert cfg.quantization == ["int8"]
    cfg = apply_overrides(TuneConfig(), ["tuning.learning_rates=1e-3"])
    assert cfg.tuning.learning_rates == [pytest.approx(1e-3)]
    assert from_dict(ExportConfig, {"quantization": ["float32"]}).quantization == [
        "float32"
    ]
    with pytest.raises(ConfigError, match="expected list"):
        from_dict(ExportConfig, {"quantization": {"int8": True}})
    with pytest.raises(ConfigError, match="expected list"):
        from_dict(ExportConfig, {"quantization": True})


def test_yaml_and_json_files(tmp_path):
    y = tmp_path / "c.yaml"
    y.write_text("training:\n  learning_rate: 1e-4\n  epochs: 2\n")
    cfg = load_config(TrainConfig, y, ["training.epochs=5"])
    assert cfg.training.learning_rate == pytest.approx(1e-4)  # YAML 1.1 string
    assert cfg.training.epochs == 5
    j = tmp_path / "c.json"
    j.write_text(json.dumps(to_dict(cfg)))
    assert load_config(TrainConfig, j) == cfg
    with pytest.raises(ConfigError, match="Config file not found"):
        load_config(TrainConfig, tmp_path / "missing.yaml")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match="Could not parse"):
        load_config(TrainConfig, bad)


def test_unknown_template():
    with pytest.raises(ConfigError, match="Accepted: train"):
        template("nope")


def test_nested_override_keeps_the_sections_own_defaults():
    from keras_transfer.config import AdaptConfig

    cfg = load_config(AdaptConfig, None, ["target.image_size=16"])
    assert cfg.target.source == "digits_target" and cfg.target.image_size == 16
    assert cfg.source.source == "digits"
