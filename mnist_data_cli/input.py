"""Subcommands of the input side: `bench pipeline` and `serve dispatcher|worker`."""

from __future__ import annotations

import argparse
import signal
import sys

from mnist_data_cli.options import add_options, call
from pipelines.input.service import dispatcher_checks, serve_dispatcher, serve_worker, worker_checks


def register(commands: argparse._SubParsersAction, benchmarks: argparse._SubParsersAction) -> None:
    """Add `serve` to `commands` and `pipeline` to `benchmarks`."""
    p = benchmarks.add_parser("pipeline", help="input pipeline throughput (no model work)")
    p.add_argument("--source", default="fashion-mnist", help="dataset, IDX, TFRecord or PNG dir")
    add_options(p, "--data-dir", "--format", "--batch-size", "--epochs", "--repeat", "--json")
    p.set_defaults(batch_size=256, epochs=3, repeat=3, run=_bench, tensorflow=True)
    p.add_argument("--compare", action="store_true", help="also the tutorial's and tfds' pipelines")
    p.add_argument("--service", help="grpc://HOST:PORT of a tf.data service dispatcher")
    p.add_argument(
        "--service-timeout",
        type=float,
        default=60,
        metavar="SECONDS",
        help="give up when the dispatcher or a batch does not come for this long (0: never)",
    )
    p.add_argument("--nondeterministic", action="store_true", help="let stages reorder elements")

    serve = commands.add_parser("serve", help="run a tf.data service server until Ctrl-C or TERM")
    roles = serve.add_subparsers(dest="role", required=True, metavar="ROLE")
    p = roles.add_parser("dispatcher", help="start a dispatcher")
    p.add_argument("--port", type=int, default=5050, help="port to serve on (0: any free port)")
    p.add_argument("--work-dir", help="journal directory (fault-tolerant dispatcher)")
    p.add_argument(
        "--worker-timeout-ms", type=int, default=0, help="a worker is dead after (0: TF's)"
    )
    p.set_defaults(run=_serve, server=serve_dispatcher, checks=dispatcher_checks)
    p = roles.add_parser("worker", help="start a worker")
    p.add_argument("--dispatcher", required=True, help="HOST:PORT of the dispatcher")
    p.add_argument("--port", type=int, default=0, help="port to serve on (0: any free port)")
    p.add_argument("--worker-address", dest="address", help="HOST:PORT consumers reach it at")
    p.add_argument("--heartbeat-interval-ms", type=int, default=0, help="heartbeat (0: TF's)")
    p.add_argument(
        "--timeout",
        type=int,
        default=30,
        dest="timeout_s",
        metavar="SECONDS",
        help="give up when the dispatcher does not answer for this long",
    )
    p.set_defaults(run=_serve, server=serve_worker, checks=worker_checks)
    serve.set_defaults(prepare=lambda args: call(args.checks, args), tensorflow=True)


def _bench(args: argparse.Namespace) -> tuple:
    from pipelines.input.bench import bench_pipeline, format_report  # these import TensorFlow
    from pipelines.input.options import PipelineOptions

    options = PipelineOptions(deterministic=not args.nondeterministic)
    report = call(bench_pipeline, args, fmt=args.format, options=options)
    return report, format_report(report), 0


def _serve(args: argparse.Namespace) -> tuple:
    """Serve until Ctrl-C (exit 130) or SIGTERM, which ends the wait as Ctrl-C does (exit 143)."""
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    call(args.server, args)
    return None, "", 0
