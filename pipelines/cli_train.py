"""Subcommands of the train side of the pipeline layer. TensorFlow is imported only when run."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from mnist_data.cli_args import non_negative_int, output_file, output_file_or_stdout, positive_int
from mnist_data.fs import write_json_atomic
from pipelines import FORMATS
from pipelines.training.config import MODELS, PRESETS


def register(
    commands: argparse._SubParsersAction, bench_commands: argparse._SubParsersAction
) -> None:
    """Add top-level subcommands to `commands` and benchmarks to `bench_commands`."""
    p = commands.add_parser(
        "train",
        help="train a reference model (softmax, mlp, lenet)",
        description="Train a reference model; see docs/trainers.md.",
    )
    p.add_argument("model", choices=MODELS)
    p.add_argument(
        "--data",
        help="dataset name, IDX directory, or converted TFRecord/PNG directory "
        "(required, except on --resume: the run's)",
    )
    p.add_argument(
        "--format", choices=FORMATS, help="input format (default: from the directory's manifest)"
    )
    p.add_argument("--preset", choices=PRESETS, help="default: modern (on --resume: the run's)")
    p.add_argument(
        "--epochs", type=positive_int, help="default: the preset's (on --resume: the run's)"
    )
    p.add_argument("--batch-size", type=positive_int, help="default: the preset's")
    p.add_argument("--seed", type=int, help="random seed, 0..2**32-1 (default 0)")
    p.add_argument(
        "--xla",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="compile the step with XLA (jit_compile); default: the preset's choice",
    )
    _op_threads_argument(p)
    p.add_argument(
        "--out", required=True, help="run directory (checkpoints, metrics, figures, SavedModel)"
    )
    p.add_argument(
        "--resume", action="store_true", help="continue from the run directory's last checkpoint"
    )
    p.add_argument(
        "--json",
        dest="json_path",
        type=output_file,
        help="also write the final summary as JSON here",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(run=_run_train, prepare=_resolve_train)

    p = commands.add_parser(
        "evaluate",
        help="test accuracy of a run's latest checkpoint",
        description="Restore RUN_DIR's latest checkpoint and evaluate it on the test split.",
    )
    p.add_argument("run_dir")
    p.add_argument(
        "--data", help="test split to evaluate on (default: the data the run was trained on)"
    )
    p.add_argument("--format", choices=FORMATS)
    p.add_argument(
        "--json",
        dest="json_path",
        nargs="?",
        const="-",
        type=output_file_or_stdout,
        help="print (or write to PATH) JSON",
    )
    p.set_defaults(run=_run_evaluate)

    p = commands.add_parser(
        "predict",
        help="classify digit images with a run's SavedModel",
        description="Print the predicted digit of each image (any size, made 28x28 grayscale).",
    )
    p.add_argument("run_dir")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument(
        "--top",
        type=positive_int,
        default=1,
        help="the K likeliest classes of each image (default 1)",
    )
    p.add_argument(
        "--json",
        dest="json_path",
        nargs="?",
        const="-",
        type=output_file_or_stdout,
        help="print (or write to PATH) JSON",
    )
    p.set_defaults(run=_run_predict)

    p = bench_commands.add_parser(
        "train",
        help="our loop vs fresh in-memory batches, the resident split and Keras model.fit",
        description="Training images/s: our pipeline+loop, one synthetic batch reused (for "
        "reference), fresh synthetic batches in memory, Keras fit, and the split "
        "resident on the device.",
    )
    p.add_argument("model", choices=MODELS)
    p.add_argument("--data", default="mnist-sample", help="dataset (default: the embedded sample)")
    p.add_argument(
        "--format", choices=FORMATS, help="input format (default: from the directory's manifest)"
    )
    p.add_argument("--batch-size", type=positive_int, default=128)
    p.add_argument("--steps", type=positive_int, default=400, help="timed steps per method")
    p.add_argument(
        "--repeat", type=positive_int, default=3, help="alternating rounds; the best is kept"
    )
    p.add_argument(
        "--xla",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="compile our step with XLA; default: the modern preset's choice",
    )
    _op_threads_argument(p)
    p.add_argument(
        "--json",
        dest="json_path",
        nargs="?",
        const="-",
        type=output_file_or_stdout,
        help="print (or write to PATH) JSON",
    )
    p.set_defaults(run=_run_bench)


def _op_threads_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--op-threads",
        type=non_negative_int,
        metavar="N",
        help="threads TensorFlow runs ops on (0: one per core); default: the preset's",
    )


def _emit(result: dict, report: str, json_path: str | None) -> None:
    """The report for people, or with `--json` alone only the JSON, so stdout stays parseable."""
    if json_path == "-":
        print(json.dumps(result, indent=1))
        return
    if report:
        print(report)
    if json_path:
        write_json_atomic(json_path, result)


def _resolve_train(args: argparse.Namespace) -> None:
    """The run's settings, checked before TensorFlow starts (a bad --seed costs no start-up)."""
    from pipelines.training.run_dir import resolve_run

    args.resolved = resolve_run(
        args.out,
        args.model,
        args.preset,
        resume=args.resume,
        data=args.data,
        format=args.format,
        epochs=args.epochs,
        batch_size=args.batch_size,
        seed=args.seed,
        xla=args.xla,
        op_threads=args.op_threads,
    )


def _run_train(args: argparse.Namespace) -> int:
    from pipelines.training.train import train

    config, data, format = args.resolved
    summary = train(
        config,
        data,
        args.out,
        format=format,
        resume=args.resume,
        progress=not args.quiet,
    )
    if args.json_path:
        write_json_atomic(args.json_path, summary)
    print(
        f"{summary['model']}/{summary['preset']} on {summary['data']}: "
        f"test accuracy {summary['test_accuracy']:.4f} "
        f"after {summary['epochs']} epochs, {summary['train_seconds']:.1f} s on {summary['device']}"
    )
    return 0


def _run_evaluate(args: argparse.Namespace) -> int:
    from pipelines.training.export import evaluate
    from pipelines.training.run_dir import load_run_config
    from pipelines.training.setup import use_op_threads

    use_op_threads(
        load_run_config(Path(args.run_dir)).op_threads
    )  # as in training: same arithmetic
    result = evaluate(args.run_dir, args.data, format=args.format)
    _emit(
        result,
        f"{result['model']}/{result['preset']} epoch {result['epochs']} on {result['data']}: "
        f"test accuracy {result['test_accuracy']:.4f}",
        args.json_path,
    )
    return 0


def _run_predict(args: argparse.Namespace) -> int:
    """Per image, its `--top` likeliest classes: a line of path, class, probability (and the
    class name for named classes) each, or JSON. An unreadable image gets an error line and
    exit status 1; the others still get their answer."""
    import sys

    from pipelines.training.export import predict

    answers = predict(args.run_dir, args.images, top=args.top)
    lines = [
        f"{answer['image']}\t{p['class']}\t{p['probability']:.3f}"
        + (f"\t{p['name']}" if "name" in p else "")
        for answer in answers
        for p in answer.get("predictions", [])
    ]
    _emit(answers, "\n".join(lines), args.json_path)
    errors = [answer["error"] for answer in answers if "error" in answer]
    for message in errors:
        print(f"mnist-data: error: {message}", file=sys.stderr)
    return 1 if errors else 0


def _run_bench(args: argparse.Namespace) -> int:
    from pipelines.training.bench import bench_train, format_report
    from pipelines.training.config import get_config
    from pipelines.training.setup import use_op_threads

    use_op_threads(
        get_config(args.model).op_threads if args.op_threads is None else args.op_threads
    )
    result = bench_train(
        args.model,
        args.data,
        batch_size=args.batch_size,
        steps=args.steps,
        repeat=args.repeat,
        format=args.format,
        xla=args.xla,
    )
    _emit(result, format_report(result), args.json_path)
    return 0
