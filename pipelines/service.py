"""tf.data service servers: a dispatcher and workers, TensorFlow's own scale-out for input.

A consumer calls make_dataset(..., service="grpc://HOST:PORT"); the dispatcher hands the
pipeline to its workers, which produce uint8 batches and stream them to the consumer.
"""

from __future__ import annotations

import tensorflow as tf


def start_dispatcher(port: int, work_dir: str | None = None) -> tf.data.experimental.service.DispatchServer:
    """Start a dispatcher on `port`; with `work_dir` it journals state and survives restarts."""
    config = tf.data.experimental.service.DispatcherConfig(
        port=port, work_dir=work_dir, fault_tolerant_mode=work_dir is not None)
    return tf.data.experimental.service.DispatchServer(config)


def start_worker(dispatcher: str, port: int = 0, worker_address: str | None = None) -> tf.data.experimental.service.WorkerServer:
    """Start a worker that registers with `dispatcher` (HOST:PORT) and serves on `port` (0: any)."""
    dispatcher = dispatcher.removeprefix("grpc://")
    config = tf.data.experimental.service.WorkerConfig(
        dispatcher_address=dispatcher, port=port,
        worker_address=worker_address or (f"localhost:{port}" if port else None))
    return tf.data.experimental.service.WorkerServer(config)
