"""The `keras-transfer` command line.

(Over 400 lines on purpose: the whole argparse tree lives here so that `--help`
answers without importing TensorFlow; each command's work is in its own module.)

Every subcommand that trains or writes takes a YAML/JSON config file whose schema is
the dataclasses of `keras_transfer.config` (the same ones the Python API uses), plus
`--set section.field=value` overrides. TensorFlow is imported only inside the
subcommand that needs it, so `keras-transfer --help` answers at once.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import warnings
from collections.abc import Iterator, Sequence

from keras_transfer.version import __version__

__all__ = [
    "build_parser",
    "main",
    "run_adapt",
    "run_distill",
    "run_evaluate",
    "run_export",
    "run_fewshot",
    "run_pretrain",
    "run_predict",
    "run_train",
    "run_tune",
]

_EPILOG = """\
Start here:
  keras-transfer demo --quick                  # a 2-minute tour on built-in digits
  keras-transfer config --template train > train.yaml
  keras-transfer train train.yaml --set training.epochs=5 --name first
  keras-transfer evaluate eval.yaml            # metrics + report for a .keras model
  keras-transfer predict --set model_path=runs/first/model.keras --set inputs=img/
  keras-transfer backbones                     # what model.backbone accepts
  keras-transfer distill --set distillation.teacher=runs/first/model.keras
  keras-transfer fewshot --set backbone=encoder.keras --set fewshot.k_shot=1

Runs are written to runs/<name>/ (config.yaml, logs/ for TensorBoard, checkpoints/,
model.keras, metrics.json, report/report.html). A name is never overwritten silently:
pass --resume to continue an unfinished run or --overwrite to replace it.
Exit codes: 0 ok, 1 runtime error, 2 invalid config or arguments, 3 run exists,
130 interrupted (Ctrl-C: the run is marked "interrupted"; --resume continues it).
"""

_CONFIG_COMMANDS = {
    "pretrain": "Train a backbone on labelled images offline; saves a KerasHub preset "
    "(model.backbone=keras_hub:runs/<name>/preset).",
    "train": "Fine-tune a backbone on labelled images; writes runs/<name>/.",
    "adapt": "Domain adaptation (DANN, ...) from labelled source to unlabelled target.",
    "tune": "KerasTuner search of learning rate and unfreeze depth.",
    "evaluate": "Metrics, confusion matrix and per-class report of a .keras model.",
    "export": "Export a .keras model to SavedModel / TFLite and verify it (on the "
    "model's run data unless representative.source is set).",
    "predict": "Top-k class predictions for images or arrays.",
    "distill": "Knowledge distillation of a teacher .keras model into a small student.",
    "fewshot": "Episodic N-way K-shot accuracy ± CI95 of an encoder "
    "(ProtoNet prototypes).",
}


_EXAMPLES = {
    "pretrain": "keras-transfer pretrain --set data.source=photos/ --name base",
    "train": "keras-transfer train train.yaml --name first --set training.epochs=5",
    "adapt": "keras-transfer adapt --set adaptation.method=dann --set model.backbone="
    "my_encoder.keras",
    "tune": "keras-transfer tune tune.yaml --set tuning.max_trials=8",
    "evaluate": "keras-transfer evaluate --set model_path=runs/first/model.keras",
    "export": "keras-transfer export --set model_path=runs/first/model.keras "
    "--set 'quantization=[float32, int8]'",
    "predict": "keras-transfer predict --set model_path=runs/first/model.keras "
    "--set inputs=photos/ --set top_k=3",
    "distill": "keras-transfer distill --set distillation.teacher=runs/first/"
    "model.keras --set distillation.epochs=5 --name small",
    "fewshot": "keras-transfer fewshot --set backbone=encoder.keras "
    "--set fewshot.n_way=5 --set fewshot.k_shot=1",
}


def _fields_epilog(kind: str) -> str:
    """Lists the config fields of `kind` with their help (from the dataclasses)."""
    import dataclasses
    import json
    import textwrap

    from keras_transfer.config import TEMPLATES
    from keras_transfer.config._fields import choices_text

    lines = [f"Example:\n  {_EXAMPLES[kind]}", "", "Config fields (--set PATH=VALUE):"]

    def walk(obj, prefix: str) -> None:
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            if dataclasses.is_dataclass(value):
                walk(value, f"{prefix}{f.name}.")
                continue
            text = f.metadata.get("help", "")
            if "choices" in f.metadata:
                text += f" One of: {choices_text(f.metadata['choices'])}."
            text += f" Default: {json.dumps(value)}."
            head = f"  {prefix}{f.name}"
            body = textwrap.wrap(text, 86 - 34)
            if len(head) >= 33:  # too long for the column: help on the next line
                lines.append(head)
                lines.extend(" " * 34 + more for more in body)
                continue
            lines.append(f"{head:<34}{body[0] if body else ''}")
            lines.extend(" " * 34 + more for more in body[1:])

    walk(TEMPLATES[kind](), "")
    return "\n".join(lines)


def _add_config_args(p: argparse.ArgumentParser, kind: str) -> None:
    p.add_argument(
        "config",
        nargs="?",
        help=f"YAML or JSON config file (`keras-transfer config --template {kind}` "
        "prints a commented one). Omit to start from the defaults.",
    )
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="Override one field, e.g. --set training.learning_rate=1e-4 "
        "(repeatable; values are read as YAML: 3, 0.5, null, [1, 2], all).",
    )
    if kind in ("pretrain", "train", "adapt", "tune", "distill", "fewshot"):
        p.add_argument("--name", help="Run name (overrides the config's `name`).")
        p.add_argument("--runs-dir", help="Folder of run directories (default: runs).")
        group = p.add_mutually_exclusive_group()
        group.add_argument(
            "--resume", action="store_true", help="Continue an unfinished run."
        )
        group.add_argument(
            "--overwrite", action="store_true", help="Delete an existing run first."
        )
        if kind != "fewshot":
            p.add_argument(
                "--quiet", action="store_true", help="No Keras progress bars."
            )


def build_parser() -> argparse.ArgumentParser:
    """Returns the argparse parser of `keras-transfer` (no TensorFlow imported)."""
    parser = argparse.ArgumentParser(
        prog="keras-transfer",
        description="Transfer learning for Keras 3: fine-tuning (with augmentation), "
        "domain adaptation, hyperparameter search, knowledge distillation, few-shot "
        "evaluation and TFLite export, driven by config files.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=__version__)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = sub.add_parser(
        "demo",
        help="Run the end-to-end demo on the built-in digits domains.",
        description="Fine-tunes, adapts and exports on the built-in digits domain "
        "pair and writes a report. Needs no download.",
    )
    demo.add_argument("--quick", action="store_true", help="Tiny settings (CI, smoke).")
    demo.add_argument(
        "--output", default="saved_models/demo", help="Folder for the demo's outputs."
    )
    demo.add_argument(
        "--shots", type=int, default=10, help="Labelled target examples per class."
    )
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--no-export", action="store_true", help="Skip TFLite export.")
    demo.add_argument(
        "--no-adapt",
        action="store_true",
        help="Skip the unsupervised adaptation step (no target label).",
    )
    demo.add_argument(
        "--fresh",
        action="store_true",
        help="Pretrain again even when --output holds the preset of an earlier run "
        "with the same settings (reused by default).",
    )
    demo.add_argument("--quiet", action="store_true", help="No progress lines.")
    for kind, text in _CONFIG_COMMANDS.items():
        p = sub.add_parser(
            kind,
            help=text,
            description=text,
            epilog=_fields_epilog(kind),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        _add_config_args(p, kind)
    sub.add_parser(
        "backbones",
        help="List backbone spec schemes, aliases and examples.",
        description="What model.backbone accepts: registered loader schemes, aliases "
        "and example specs.",
    )
    cfg = sub.add_parser(
        "config",
        help="Print a commented config template, or validate a config file.",
        description="Print a commented starting config (--template KIND) or check a "
        "file against its schema (--check FILE --kind KIND).",
    )
    cfg.add_argument("--template", choices=sorted(_CONFIG_COMMANDS), help="Kind.")
    cfg.add_argument("--check", metavar="FILE", help="Validate this config file.")
    cfg.add_argument("--kind", choices=sorted(_CONFIG_COMMANDS), default="train")
    cfg.add_argument("--set", dest="overrides", action="append", default=[])
    return parser


def _load(kind: str, args: argparse.Namespace):
    from keras_transfer import config as C

    cfg = C.load_config(C.TEMPLATES[kind], args.config, args.overrides)
    extra = []
    if getattr(args, "name", None):
        extra.append(f"name={args.name}")
    if getattr(args, "runs_dir", None):
        extra.append(f"runs_dir={args.runs_dir}")
    return C.apply_overrides(cfg, extra) if extra else cfg


def _cmd_config(args: argparse.Namespace) -> int:
    from keras_transfer import config as C

    if args.template:
        sys.stdout.write(C.template(args.template))
        return 0
    if args.check:
        cfg = C.load_config(C.TEMPLATES[args.kind], args.check, args.overrides)
        print(f"{args.check}: valid {type(cfg).__name__}")
        return 0
    print("Pass --template KIND or --check FILE (see --help).", file=sys.stderr)
    return 2


def _cmd_backbones(args: argparse.Namespace) -> int:
    from keras_transfer.backbones import list_backbone_aliases, list_backbone_schemes

    print("Backbone spec schemes (model.backbone: '<scheme>:<name>'):")
    for scheme, text in list_backbone_schemes().items():
        print(f"  {scheme:<20} {text}")
    aliases = list_backbone_aliases()
    if aliases:
        print("Aliases:")
        for name, spec in aliases.items():
            print(f"  {name:<20} {spec}")
    print(
        "Examples:\n"
        "  keras_applications:MobileNetV3Small   (downloads ImageNet weights)\n"
        "  keras_hub:resnet_18_imagenet          (a KerasHub preset or a local dir)\n"
        "  keras_hub:runs/base/preset            (offline: made by `keras-transfer "
        "pretrain --name base`)\n"
        "  tfhub:/path/to/module                 (TF-Hub handle or local dir)\n"
        "  saved_model:/path/to/dir\n"
        "  path/to/feature_extractor.keras       (a Keras model outputting features)\n"
        "  runs/first/model.keras                (a run's classifier: its head is "
        "removed)\n"
        "Register more with keras_transfer.register_backbone_loader(scheme, fn)."
    )
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from keras_transfer.demo import run_demo

    run_demo(
        output_dir=args.output,
        shots=args.shots,
        quick=args.quick,
        seed=args.seed,
        export=not args.no_export,
        adapt=not args.no_adapt,
        reuse_preset=not args.fresh,
        verbose=0 if args.quiet else 1,
    )
    return 0


def _run_dir_command(kind: str, module: str, verbose: int):
    """A subcommand that runs `module.run_<kind>(cfg, ...)` and writes runs/<name>/."""

    def command(args: argparse.Namespace) -> int:
        import importlib

        run_fn = getattr(importlib.import_module(module), f"run_{kind}")
        run = run_fn(
            _load(kind, args),
            resume=args.resume,
            overwrite=args.overwrite,
            verbose=0 if args.quiet else verbose,
        )
        print(f"Run written to {run.path} (report: {run.report_dir / 'report.html'})")
        return 0

    command.__name__ = f"_cmd_{kind}"
    return command


_cmd_train = _run_dir_command("train", "keras_transfer.cli._train", verbose=2)
_cmd_adapt = _run_dir_command("adapt", "keras_transfer.cli._adapt", verbose=2)
_cmd_tune = _run_dir_command("tune", "keras_transfer.cli._tune", verbose=1)


def _cmd_pretrain(args: argparse.Namespace) -> int:
    from keras_transfer.cli._pretrain import preset_path, run_pretrain

    run = run_pretrain(
        _load("pretrain", args),
        resume=args.resume,
        overwrite=args.overwrite,
        verbose=0 if args.quiet else 2,
    )
    print(f"Run written to {run.path} (report: {run.report_dir / 'report.html'})")
    print(
        f"Preset saved to {preset_path(run)}; use it with: keras-transfer train "
        f"--set model.backbone=keras_hub:{preset_path(run)}"
    )
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from keras_transfer.cli._export import run_export
    from keras_transfer.export import ExportVerificationError

    try:
        rows = run_export(_load("export", args))
    except ExportVerificationError as err:  # every export refused: none written
        print(f"keras-transfer export: nothing written: {err}", file=sys.stderr)
        return 1
    for r in rows:
        if r.get("error"):
            print(f"{r['quantization']:>8}: not written (refused by verification)")
            continue
        print(
            f"{r['quantization']:>8}: {r['size_kb']:9.1f} KB  "
            f"{r['latency_ms'] or float('nan'):7.3f} ms  agreement {r['agreement']}"
            f"  -> {r['path']}"
        )
    for r in rows:
        if r.get("error"):
            print(
                f"keras-transfer export: {r['quantization']} not written: {r['error']}",
                file=sys.stderr,
            )
    return 1 if any(r.get("error") for r in rows) else 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from keras_transfer.cli._train import run_evaluate

    metrics = run_evaluate(_load("evaluate", args))
    print(f"accuracy {metrics['accuracy']:.4f}  macro F1 {metrics['macro_f1']:.4f}")
    return 0


def _cmd_predict(args: argparse.Namespace) -> int:
    from keras_transfer.cli._train import run_predict

    cfg = _load("predict", args)
    results = run_predict(cfg)
    if not cfg.output:
        for r in results:
            top = ", ".join(
                f"{p['class']} {p['probability']:.3f}" for p in r["predictions"]
            )
            print(f"{r['input']}: {top}")
    else:
        print(f"{len(results)} predictions written to {cfg.output}")
    return 0


def _cmd_distill(args: argparse.Namespace) -> int:
    import json

    from keras_transfer.cli._distill import run_distill

    cfg = _load("distill", args)
    run = run_distill(
        cfg,
        resume=args.resume,
        overwrite=args.overwrite,
        verbose=0 if args.quiet else 2,
    )
    metrics = json.loads(run.metrics_path.read_text())
    print(
        f"teacher accuracy {metrics['teacher_accuracy']:.4f} "
        f"({metrics['teacher_params']} params), student accuracy "
        f"{metrics['student_accuracy']:.4f} ({metrics['student_params']} params)"
    )
    print(f"Run written to {run.path} (report: {run.report_dir / 'report.html'})")
    return 0


def _cmd_fewshot(args: argparse.Namespace) -> int:
    from keras_transfer.cli._fewshot import run_fewshot

    run, m = run_fewshot(
        _load("fewshot", args), resume=args.resume, overwrite=args.overwrite
    )
    print(
        f"{m['n_way']}-way {m['k_shot']}-shot accuracy {m['accuracy']:.4f} "
        f"± {m['ci95']:.4f} (95% CI, {m['episodes']} episodes; chance "
        f"{m['chance']:.4f})"
    )
    print(f"Run written to {run.path} (report: {run.report_dir / 'report.html'})")
    return 0


def _command(name: str):
    return {
        "config": _cmd_config,
        "backbones": _cmd_backbones,
        "demo": _cmd_demo,
        "train": _cmd_train,
        "adapt": _cmd_adapt,
        "tune": _cmd_tune,
        "evaluate": _cmd_evaluate,
        "export": _cmd_export,
        "predict": _cmd_predict,
        "distill": _cmd_distill,
        "fewshot": _cmd_fewshot,
        "pretrain": _cmd_pretrain,
    }[name]


_RESUMABLE = ("train", "adapt", "tune", "distill", "fewshot")


def _resume_command(command: str, argv: Sequence[str]) -> str:
    """The command line that continues an interrupted run: argv + --resume."""
    import shlex

    args = [a for a in argv if a not in ("--resume", "--overwrite")]
    return shlex.join(["keras-transfer", *args, "--resume"])


def _interrupted(command: str, argv: Sequence[str]) -> int:
    if command in _RESUMABLE:
        print(
            f"keras-transfer {command}: interrupted; resume with: "
            f"{_resume_command(command, argv)}",
            file=sys.stderr,
        )
    else:
        print(f"keras-transfer {command}: interrupted.", file=sys.stderr)
    return 130


@contextlib.contextmanager
def _plain_warnings() -> Iterator[None]:
    """keras-transfer's own warnings print as ``keras-transfer: warning: ...``, not
    with the file, line and source line of the library code that raised them."""
    default = warnings.formatwarning
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

    def short(message, category, filename, lineno, line=None):
        if os.path.abspath(filename).startswith(package + os.sep):
            return f"keras-transfer: warning: {message}\n"
        return default(message, category, filename, lineno, line)

    warnings.formatwarning = short
    try:
        yield
    finally:
        warnings.formatwarning = default


def main(argv: Sequence[str] | None = None) -> int:
    """Runs `keras-transfer` on `argv` (default `sys.argv[1:]`); returns the exit code.

    Examples:
    ```python
    from keras_transfer.cli import main
    assert main(["config", "--template", "train"]) == 0
    ```
    """
    from keras_transfer.config import ConfigError
    from keras_transfer.runs import RunExistsError

    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    try:
        with _plain_warnings():
            return int(_command(args.command)(args) or 0)
    except ConfigError as err:
        print(f"keras-transfer {args.command}: invalid config: {err}", file=sys.stderr)
        return 2
    except RunExistsError as err:
        print(f"keras-transfer {args.command}: {err}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        if os.environ.get("KERAS_TRANSFER_DEBUG"):
            raise
        return _interrupted(args.command, argv)
    except (ImportError, ValueError, OSError) as err:
        if os.environ.get("KERAS_TRANSFER_DEBUG"):
            raise
        print(
            f"keras-transfer {args.command}: error: {err}\n"
            "(set KERAS_TRANSFER_DEBUG=1 to see the traceback)",
            file=sys.stderr,
        )
        return 1


def __getattr__(name: str):
    modules = {
        "run_train": "_train",
        "run_evaluate": "_train",
        "run_predict": "_train",
        "run_adapt": "_adapt",
        "run_export": "_export",
        "run_tune": "_tune",
        "run_distill": "_distill",
        "run_fewshot": "_fewshot",
        "run_pretrain": "_pretrain",
    }
    if name in modules:
        import importlib

        return getattr(
            importlib.import_module(f"keras_transfer.cli.{modules[name]}"), name
        )
    raise AttributeError(f"module 'keras_transfer.cli' has no attribute {name!r}")
