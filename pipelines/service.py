"""tf.data service servers: a dispatcher and workers that run make_dataset's pipelines remotely.

Workers send uint8 batches (4x fewer bytes than float32); the consumer normalises them.
"""

from __future__ import annotations

import os


def serve_dispatcher(port: int, *, work_dir: str | os.PathLike | None = None, worker_timeout_ms: int = 0) -> None:
    """Start a dispatcher on `port` and block; `work_dir` keeps its state across restarts.

    `worker_timeout_ms` (0 = TF default): after this long without a heartbeat a worker is
    declared dead and its unfinished work is dropped (see docs/tfdata-service.md).
    """
    import tensorflow as tf

    config = tf.data.experimental.service.DispatcherConfig(
        port=port, work_dir=os.fspath(work_dir) if work_dir else None, fault_tolerant_mode=bool(work_dir),
        worker_timeout_ms=worker_timeout_ms or None)
    server = tf.data.experimental.service.DispatchServer(config)
    print(f"dispatcher listening on {server.target}", flush=True)
    server.join()


def serve_worker(dispatcher: str, *, port: int = 0, address: str | None = None, heartbeat_interval_ms: int = 0) -> None:
    """Start a worker registered with `dispatcher` (HOST:PORT) and block."""
    import tensorflow as tf

    dispatcher = dispatcher.removeprefix("grpc://")
    config = tf.data.experimental.service.WorkerConfig(
        dispatcher_address=dispatcher, port=port, worker_address=address,
        heartbeat_interval_ms=heartbeat_interval_ms or None)
    server = tf.data.experimental.service.WorkerServer(config)
    print(f"worker on port {server._address.rsplit(':', 1)[-1] if hasattr(server, '_address') else port} "
          f"registered with {dispatcher}", flush=True)
    server.join()
