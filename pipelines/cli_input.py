"""Subcommands of the input side: `bench pipeline` and `serve dispatcher|worker`.

TensorFlow is imported only when one of them runs.
"""

from __future__ import annotations

import argparse
import signal
import sys

from mnist_data.cli_args import non_negative_int, output_file, port, positive_int
from pipelines import FORMATS


def register(
    commands: argparse._SubParsersAction, bench_commands: argparse._SubParsersAction
) -> None:
    """Add `serve` to `commands` and `pipeline` to `bench_commands`."""
    p = bench_commands.add_parser(
        "pipeline",
        help="input pipeline throughput (no model work)",
        description="Examples/s per epoch of make_dataset, optionally against baselines.",
    )
    p.add_argument(
        "--source",
        default="fashion-mnist",
        help="dataset name, IDX dir, TFRecord or PNG output dir",
    )
    p.add_argument("--format", choices=FORMATS, help="default: detected from the source")
    p.add_argument("--batch-size", type=positive_int, default=256)
    p.add_argument("--epochs", type=positive_int, default=3)
    p.add_argument(
        "--compare",
        action="store_true",
        help="also run the tutorial and tfds-like pipelines and a ceiling",
    )
    p.add_argument("--service", help="grpc://HOST:PORT of a tf.data service dispatcher")
    p.add_argument(
        "--service-timeout",
        type=non_negative_int,
        default=60,
        metavar="SECONDS",
        help="give up when the dispatcher does not answer, or a batch does not come, "
        "for this long (default: %(default)s; 0: wait forever, as TensorFlow does, "
        "and save the check's cost)",
    )
    p.add_argument(
        "--repeat",
        type=positive_int,
        default=3,
        help="runs per pipeline, taking turns; the median counts",
    )
    p.add_argument(
        "--nondeterministic", action="store_true", help="let parallel stages reorder elements"
    )
    p.add_argument(
        "--json", dest="json_path", type=output_file, help="write the report as JSON here"
    )
    p.set_defaults(run=_run_bench)

    serve = commands.add_parser(
        "serve",
        help="run tf.data service servers",
        description="Start a tf.data service dispatcher or worker and "
        "serve until Ctrl-C or SIGTERM.",
    )
    roles = serve.add_subparsers(dest="role", required=True, metavar="ROLE")
    d = roles.add_parser(
        "dispatcher", help="start a dispatcher", description="Start a tf.data service dispatcher."
    )
    d.add_argument("--port", type=port, default=5050)
    d.add_argument("--work-dir", help="journal directory (fault-tolerant dispatcher)")
    d.add_argument(
        "--worker-timeout-ms",
        type=non_negative_int,
        default=0,
        help="declare a silent worker dead after this long",
    )
    d.set_defaults(run=_run_dispatcher, prepare=_check_dispatcher)
    w = roles.add_parser(
        "worker", help="start a worker", description="Start a tf.data service worker."
    )
    w.add_argument("--dispatcher", required=True, help="HOST:PORT of the dispatcher")
    w.add_argument("--port", type=port, default=0, help="port to serve on (0: any free port)")
    w.add_argument(
        "--worker-address", help="address the consumer uses to reach this worker (HOST:PORT)"
    )
    w.add_argument(
        "--heartbeat-interval-ms",
        type=non_negative_int,
        default=0,
        help="heartbeat period (0: TF default)",
    )
    w.add_argument(
        "--timeout",
        type=positive_int,
        default=30,
        metavar="SECONDS",
        help="give up when the dispatcher does not answer for this long (default: %(default)s)",
    )
    w.set_defaults(run=_run_worker, prepare=_check_worker)


def _run_bench(args: argparse.Namespace) -> int:
    from mnist_data.fs import write_json_atomic
    from pipelines.input.bench import bench_pipeline, format_report
    from pipelines.input.options import PipelineOptions

    options = PipelineOptions(deterministic=not args.nondeterministic)
    report = bench_pipeline(
        args.source,
        args.format,
        args.batch_size,
        args.epochs,
        args.compare,
        args.service,
        options,
        repeat=args.repeat,
        service_timeout=args.service_timeout or None,
    )
    print(format_report(report))
    if args.json_path:
        write_json_atomic(args.json_path, report)
    return 0


def _check_dispatcher(args: argparse.Namespace) -> None:
    from pipelines.input.service import dispatcher_checks

    dispatcher_checks(args.port, args.work_dir)


def _run_dispatcher(args: argparse.Namespace) -> int:
    from pipelines.input.service import serve_dispatcher

    _stop_on_sigterm()
    serve_dispatcher(args.port, work_dir=args.work_dir, worker_timeout_ms=args.worker_timeout_ms)
    return 0


def _check_worker(args: argparse.Namespace) -> None:
    from pipelines.input.service import worker_checks

    worker_checks(args.dispatcher, args.port, args.worker_address, args.timeout)


def _run_worker(args: argparse.Namespace) -> int:
    from pipelines.input.service import serve_worker

    _stop_on_sigterm()
    serve_worker(
        args.dispatcher,
        port=args.port,
        address=args.worker_address,
        heartbeat_interval_ms=args.heartbeat_interval_ms,
        timeout_s=args.timeout,
    )
    return 0


def _stop_on_sigterm() -> None:
    """SIGTERM ends a server's wait as Ctrl-C does, so that it stops the server; the exit status
    is then 143, as for a process the signal ends."""
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
