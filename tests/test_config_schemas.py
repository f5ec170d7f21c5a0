"""One schema per idea: the library and the CLI share the config dataclasses."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys

import pytest

from keras_transfer import config as C

RUN_COMMANDS = ("train", "adapt", "tune", "distill", "fewshot", "pretrain")


def _fields(cls: type) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(cls)}


def test_reading_a_config_imports_no_tensorflow():
    code = (
        "import sys\n"
        "from keras_transfer.config import AugmentationConfig, DistillationConfig, "
        "FewShotConfig, load_config, TEMPLATES\n"
        "for cls in TEMPLATES.values():\n    load_config(cls, None)\n"
        "AugmentationConfig(flip='horizontal'); DistillationConfig(); FewShotConfig()\n"
        "assert 'tensorflow' not in sys.modules, 'tensorflow'\n"
        "assert 'keras' not in sys.modules, 'keras'\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr


@pytest.mark.parametrize(
    "module, name",
    [
        ("keras_transfer.augment", "AugmentationConfig"),
        ("keras_transfer.distillation", "DistillationConfig"),
        ("keras_transfer.fewshot", "FewShotConfig"),
    ],
)
def test_library_configs_are_the_config_schemas(module, name):
    import importlib

    assert getattr(importlib.import_module(module), name) is getattr(C, name)


@pytest.mark.parametrize(
    "section, full, kind, key",
    [
        (C.AugmentationSection, C.AugmentationConfig, "train", "augmentation"),
        (C.DistillationSection, C.DistillationConfig, "distill", "distillation"),
        (C.FewShotSection, C.FewShotConfig, "fewshot", "fewshot"),
    ],
)
def test_cli_sections_are_the_library_schema_or_its_base(section, full, kind, key):
    assert issubclass(full, section)
    # the CLI command really uses that section (not a copy of it)
    assert type(getattr(C.TEMPLATES[kind](), key)) is section
    # so every CLI field carries the library's default and help, by construction
    for name, f in _fields(section).items():
        assert _fields(full)[name] is f or _fields(full)[name] == f, name


def test_library_only_fields_stay_out_of_the_cli():
    assert set(_fields(C.AugmentationConfig)) - set(_fields(C.AugmentationSection)) == {
        "value_range",
        "seed",
    }
    assert "method" in _fields(C.FewShotConfig)
    assert "method" not in _fields(C.FewShotSection)
    with pytest.raises(C.ConfigError, match="Unknown field augmentation.seed"):
        C.from_dict(C.TrainConfig, {"augmentation": {"seed": 1}})


def test_student_help_says_what_the_distill_command_does():
    # The CLI always puts a head on the student and an empty spec means the
    # built-in CNN (cli/_distill.py); the library config now says the same.
    text = _fields(C.DistillationConfig)["student"].metadata["help"]
    assert (
        "a classifier head is added." in text and "Empty: a small built-in CNN" in text
    )
    assert "student_kwargs" in _fields(C.DistillationConfig)


def test_augmentation_config_still_checks_its_values():
    with pytest.raises(ValueError, match="Expected flip to be one of"):
        C.AugmentationConfig(flip="diagonal")
    with pytest.raises(ValueError, match="Received: zoom=-0.1"):
        C.AugmentationConfig(zoom=-0.1)
    assert C.AugmentationConfig(cutmix=1.0).mixes_labels
    # the CLI section is checked by the train command instead (named fields)
    assert C.AugmentationSection(zoom=-0.1).zoom == -0.1


@pytest.mark.parametrize(
    "field, value, accepted",
    [
        ("zoom", 1.5, "in [0, 1)"),
        ("contrast", 1.5, "in [0, 1]"),
        ("randaugment_ops", 0, ">= 1"),
        ("weight_decay", -1e-4, ">= 0"),
        ("label_smoothing", 1.0, "in [0, 1)"),
    ],
)
def test_cli_and_library_accept_the_same_augmentation_ranges(field, value, accepted):
    # One rule list (range_checks): the CLI and the library used to disagree
    # (the library accepted zoom=1.5, contrast=1.5, randaugment_ops=0 ...).
    section = C.AugmentationSection(**{field: value})
    with pytest.raises(C.ConfigError) as err:
        C.check_fields("augmentation", section, section.range_checks())
    assert str(err.value) == (
        f"Invalid value for augmentation.{field}: expected {accepted}. "
        f"Received: augmentation.{field}={value!r}"
    )
    with pytest.raises(ValueError, match=re.escape(f"Expected {field} {accepted}")):
        C.AugmentationConfig(**{field: value})
    assert all(ok for _, ok, _ in C.AugmentationConfig().range_checks())


@pytest.mark.parametrize("kind", RUN_COMMANDS)
def test_run_commands_share_the_run_config_base(kind):
    cls = C.TEMPLATES[kind]
    assert issubclass(cls, C.RunConfig)
    names = list(_fields(cls))
    assert names[:2] == ["name", "runs_dir"]  # templates keep their order
    cfg = C.apply_overrides(cls(), ["name=x", "runs_dir=out"])
    assert (cfg.name, cfg.runs_dir) == ("x", "out")
    assert cls().name == kind and cls().runs_dir == "runs"
    assert "<runs_dir>/<name>/" in _fields(cls)["name"].metadata["help"]


@pytest.mark.parametrize("kind", sorted(set(C.TEMPLATES) - set(RUN_COMMANDS)))
def test_model_file_commands_have_no_run_directory(kind):
    assert not issubclass(C.TEMPLATES[kind], C.RunConfig)
    assert "runs_dir" not in _fields(C.TEMPLATES[kind])


def test_check_fields_names_the_first_failing_field():
    data = C.DataConfig(batch_size=0, limit=-1)
    rules = [
        ("batch_size", data.batch_size >= 1, "an int >= 1"),
        ("limit", data.limit is None or data.limit >= 1, "null or an int >= 1"),
    ]
    with pytest.raises(C.ConfigError) as err:
        C.check_fields("data", data, rules)
    assert str(err.value) == (
        "Invalid value for data.batch_size: expected an int >= 1. "
        "Received: data.batch_size=0"
    )
    C.check_fields("data", data, [("limit", True, "null or an int >= 1")])  # passes


def test_check_pretrain_config_names_the_field():
    C.check_pretrain_config(C.PretrainConfig())
    cfg = C.apply_overrides(C.PretrainConfig(), ["pretrain.repeats=[1, 1]"])
    with pytest.raises(C.ConfigError, match=r"Received: pretrain.repeats=\[1, 1\]"):
        C.check_pretrain_config(cfg)
    # repeats defaults to null (one convolution per stage), whatever the filters
    cfg = C.apply_overrides(C.PretrainConfig(), ["pretrain.filters=[8, 16]"])
    assert cfg.pretrain.repeats is None
    C.check_pretrain_config(cfg)
    cfg = C.apply_overrides(C.PretrainConfig(), ["pretrain.learning_rate=0"])
    with pytest.raises(C.ConfigError, match="expected a float > 0"):
        C.check_pretrain_config(cfg)


def test_config_modules_stay_small():
    import pathlib

    root = pathlib.Path(C.__file__).parent
    sizes = {p.name: len(p.read_text().splitlines()) for p in root.glob("*.py")}
    assert len(sizes) >= 5 and max(sizes.values()) <= 400, sizes
