"""Subcommands of the training side: train, evaluate, predict and `bench train`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mnist_data_cli.options import add_options, call, plural
from pipelines.training.bench import bench_train, format_report
from pipelines.training.config import MODELS, PRESETS, get_config
from pipelines.training.export import evaluate, predict
from pipelines.training.run_dir import load_run_config, resolve_run
from pipelines.training.setup import use_op_threads
from pipelines.training.train import train


def register(commands: argparse._SubParsersAction, benchmarks: argparse._SubParsersAction) -> None:
    """Add train, evaluate and predict to `commands` and `train` to `benchmarks`."""
    p = commands.add_parser(
        "train",
        help="train a reference model (softmax, mlp, lenet)",
        description="Train a reference model (docs/trainers.md). Settings left out are the "
        "preset's (--data is required), or on --resume the run's.",
    )
    p.add_argument("model", choices=MODELS)
    p.add_argument("--out", required=True, help="run directory (checkpoints, metrics, SavedModel)")
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    p.add_argument("--preset", choices=PRESETS, help="default: modern (on --resume: the run's)")
    p.add_argument("--seed", type=int, help="random seed, 0..2**32-1 (default: 0)")
    add_options(p, "--data", "--data-dir", "--format", "--epochs", "--batch-size", "--xla")
    add_options(p, "--op-threads", "--quiet", "--json")
    p.set_defaults(run=_train, prepare=_resolve_train, tensorflow=True)

    p = commands.add_parser("evaluate", help="test accuracy of a run's latest checkpoint")
    p.add_argument("run_dir")
    add_options(p, "--data", "--data-dir", "--format", "--json")
    p.set_defaults(run=_evaluate, tensorflow=True)

    p = commands.add_parser(
        "predict",
        help="classify digit images with a run's SavedModel",
        description="Print the likeliest classes of each image (any size, made 28x28 grayscale). "
        "Put a bare --json after the images, or it takes the first one's name.",
    )
    p.add_argument("run_dir")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("--top", type=int, default=1, help="the K likeliest classes of each image")
    add_options(p, "--json")
    p.set_defaults(run=_predict, tensorflow=True)

    p = benchmarks.add_parser(
        "train",
        help="our loop vs fresh in-memory batches, the resident split and Keras model.fit",
        description="Training images/s of our pipeline and loop, one synthetic batch reused, "
        "fresh synthetic batches, Keras fit and the split resident on the device. Settings left "
        "out are the model's modern preset's.",
    )
    p.add_argument("model", choices=MODELS)
    p.add_argument("--steps", type=int, default=400, help="timed steps per method")
    add_options(p, "--data", "--data-dir", "--format", "--batch-size", "--repeat", "--xla")
    add_options(p, "--op-threads", "--json")
    p.set_defaults(data="mnist-sample", batch_size=128, repeat=3, run=_bench, tensorflow=True)


def _resolve_train(args: argparse.Namespace) -> None:
    """The run's settings, checked before TensorFlow starts (a bad --seed costs no start-up)."""
    flags = ("epochs", "batch_size", "seed", "xla", "op_threads")
    settings = {name: getattr(args, name) for name in flags}
    args.resolved = call(resolve_run, args, **settings)


def _train(args: argparse.Namespace) -> tuple:
    config, data, format = args.resolved
    summary = call(train, args, config=config, data=data, format=format)
    text = (
        f"{summary['model']}/{summary['preset']} on {summary['data']}: test accuracy "
        f"{summary['test_accuracy']:.4f} after {plural(summary['epochs'], 'epoch')}, "
        f"{summary['train_seconds']:.1f} s on {summary['device']}"
    )
    return summary, text, 0


def _use_run_threads(run_dir: str) -> None:
    """Run ops on the thread count the run trained with: the same arithmetic, the same answers."""
    use_op_threads(load_run_config(Path(run_dir)).op_threads)


def _evaluate(args: argparse.Namespace) -> tuple:
    _use_run_threads(args.run_dir)
    result = call(evaluate, args)
    text = (
        f"{result['model']}/{result['preset']} epoch {result['epochs']} on {result['data']}: "
        f"test accuracy {result['test_accuracy']:.4f}"
    )
    return result, text, 0


def _predict(args: argparse.Namespace) -> tuple:
    """A line of path, class, probability (and class name) per likely class of each image; an
    unreadable image gets an error line and exit status 1, the others still their answer."""
    _use_run_threads(args.run_dir)
    answers = call(predict, args)
    lines = [
        f"{answer['image']}\t{p['class']}\t{p['probability']:.3f}"
        + (f"\t{p['name']}" if "name" in p else "")
        for answer in answers
        for p in answer.get("predictions", [])
    ]
    errors = [answer["error"] for answer in answers if "error" in answer]
    for message in errors:
        print(f"mnist-data: error: {message}", file=sys.stderr)
    return answers, "\n".join(lines), 1 if errors else 0


def _bench(args: argparse.Namespace) -> tuple:
    use_op_threads(
        get_config(args.model).op_threads if args.op_threads is None else args.op_threads
    )
    result = call(bench_train, args)
    return result, format_report(result), 0
