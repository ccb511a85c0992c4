"""tf.data service servers (a dispatcher and workers that run make_dataset's pipelines remotely)
and the consumer's waits on them, which TensorFlow's own client makes silent and endless."""

from __future__ import annotations

import contextlib
import errno
import os
import queue
import re
import socket
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

from mnist_data.checks import check_seconds, check_whole
from mnist_data.errors import DatasetError

NOTICE_S = 3.0  # a wait longer than this says, once, what it waits for
_END = object()


def dispatcher_target(address: str, timeout_s: float | None) -> str:
    """`grpc://HOST:PORT` of a dispatcher answering in `timeout_s`: TF's client waits forever."""
    check_seconds("timeout", timeout_s, DatasetError)
    host_port = address.removeprefix("grpc://")
    if not _host_port(host_port):
        raise DatasetError(
            f"tf.data service address {address!r}: expected HOST:PORT or grpc://HOST:PORT "
            "(a port 1..65535; an IPv6 host in brackets: [::1]:5050)"
        )
    awaited = f"the tf.data service dispatcher at {host_port}"
    if timeout_s and _wait(partial(_workers_reply, host_port), timeout_s, awaited) is None:
        raise DatasetError(
            f"no tf.data service dispatcher answers at {host_port} (waited {timeout_s:g} s)"
        )
    return f"grpc://{host_port}"


def _workers_reply(host_port: str, timeout_s: float) -> bytes | None:
    """The dispatcher's answer to GetWorkers (empty: no worker), or None if nothing answers."""
    import grpc

    with grpc.insecure_channel(host_port) as channel:
        ask = channel.unary_unary("/tensorflow.data.DispatcherService/GetWorkers")
        try:
            return ask(b"", timeout=timeout_s, wait_for_ready=True)
        except grpc.RpcError as exc:
            if exc.code() in (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.UNAVAILABLE):
                return None
            raise DatasetError(
                f"{host_port} answers, but not as a tf.data service dispatcher "
                f"({exc.code().name}): a wrong port?"
            ) from None


def _wait(attempt: Callable[[float], Any], timeout_s: float, awaited: str) -> Any:
    """`attempt(seconds)` until it gives a value, or None after `timeout_s`; says once why."""
    start, announced = time.monotonic(), False
    while (left := start + timeout_s - time.monotonic()) > 0:
        found = attempt(min(left, 1.0))  # short attempts: Ctrl-C is never kept waiting long
        if found is not None:
            return found
        if not announced and time.monotonic() - start >= NOTICE_S:
            warnings.warn(f"waiting up to {timeout_s:g} s for {awaited}", stacklevel=3)
            announced = True
    return None


def distributed(batches: Any, processing_mode: str, target: str, timeout_s: float | None) -> Any:
    """`batches` made by the tf.data service at `target`; a batch late by `timeout_s` is an error
    naming what is missing (TensorFlow's client waits forever, silently, when no worker serves)."""
    import tensorflow as tf

    batches = batches.apply(tf.data.experimental.service.distribute(processing_mode, target))
    if timeout_s is None:
        return batches
    awaited = f"a batch from the tf.data service at {target}"

    def read() -> Iterator:
        answers = queue.Queue(1)  # the next batch, from a thread the consumer need not wait on
        threading.Thread(target=_fetch, args=(batches, answers), daemon=True).start()
        while (answer := _wait(lambda s: _get(answers, s), timeout_s, awaited)) is not _END:
            if answer is None:
                missing = _missing(target.removeprefix("grpc://"))
                raise DatasetError(
                    f"no batch from the tf.data service at {target} in {timeout_s:g} s: {missing}"
                )
            if isinstance(answer, Exception):
                raise answer
            yield answer

    return tf.data.Dataset.from_generator(read, output_signature=batches.element_spec)


def _fetch(batches: Any, answers: queue.Queue) -> None:
    """Every batch into `answers`, then _END (or the error that ended them)."""
    try:
        for batch in batches:
            answers.put(batch)
        answers.put(_END)
    except Exception as exc:  # passed on to the consumer, whatever it is
        answers.put(exc)


def _get(answers: queue.Queue, timeout_s: float) -> Any:
    with contextlib.suppress(queue.Empty):
        return answers.get(timeout=timeout_s)


def _missing(host_port: str) -> str:
    """What keeps batches from coming, as far as the dispatcher at `host_port` can tell."""
    reply = _workers_reply(host_port, 5.0)
    if reply is None:
        return "its dispatcher no longer answers"
    if not reply:
        return "no worker is registered with its dispatcher"
    return "workers are registered, but none sent a batch (one died, or is unreachable)"


def _host_port(text: str, template: bool = False) -> bool:
    """Whether `text` is HOST:PORT (port 1..65535, or %port% for a worker's `template`)."""
    found = re.fullmatch(r"(\[[0-9A-Fa-f:.]+(%[\w.-]+)?\]|[^\s:/\[\]%]+):(\d{1,5}|%port%)", text)
    port = found and found.group(3)
    return bool(port) and (
        template and port == "%port%" or port.isdigit() and 0 < int(port) < 65536
    )


def check_port_free(port: int) -> None:
    """DatasetError if something listens on `port`: gRPC would share it (SO_REUSEPORT) silently."""
    check_whole("port", port, 0, 65535, DatasetError)
    dual = socket.has_dualstack_ipv6()  # IPv4 too, as gRPC listens; else IPv6 is off here
    try:  # SO_REUSEADDR, as create_server sets it: a socket in TIME_WAIT is no owner
        family = socket.AF_INET6 if dual else socket.AF_INET
        socket.create_server(("", port), family=family, dualstack_ipv6=dual).close()
    except OSError as exc:
        in_use = exc.errno == errno.EADDRINUSE
        why = "in use (another dispatcher, worker or program listens there)"
        raise DatasetError(f"port {port} is {why if in_use else exc.strerror}") from None


def dispatcher_checks(
    port: int, work_dir: str | os.PathLike | None, worker_timeout_ms: int = 0
) -> str | None:
    """What serve_dispatcher checks before TensorFlow starts; the journal directory, made."""
    check_port_free(port)
    check_whole("worker_timeout_ms", worker_timeout_ms, 0, error=DatasetError)
    if work_dir:  # a file there: FileExistsError names it
        Path(work_dir).mkdir(parents=True, exist_ok=True)
    return os.fspath(work_dir) if work_dir else None


def serve_dispatcher(
    port: int, *, work_dir: str | os.PathLike | None = None, worker_timeout_ms: int = 0
) -> None:
    """Serve a dispatcher until interrupted; `work_dir` keeps its state across restarts."""
    import tensorflow as tf

    service = tf.data.experimental.service
    work_dir = dispatcher_checks(port, work_dir, worker_timeout_ms)
    timeout = worker_timeout_ms or None  # 0: TensorFlow's default
    config = service.DispatcherConfig(
        port=port, work_dir=work_dir, fault_tolerant_mode=bool(work_dir), worker_timeout_ms=timeout
    )
    server = service.DispatchServer(config)
    print(f"dispatcher listening on {server.target}", flush=True)
    _serve_until_interrupted(server)


def worker_checks(
    dispatcher: str,
    port: int,
    address: str | None,
    timeout_s: float,
    heartbeat_interval_ms: int = 0,
) -> str:
    """What serve_worker checks before TensorFlow starts; the dispatcher's HOST:PORT."""
    check_whole("heartbeat_interval_ms", heartbeat_interval_ms, 0, error=DatasetError)
    if address is not None and not _host_port(address, template=True):
        raise DatasetError(
            f"worker address {address!r}: expected HOST:PORT (a port 1..65535) or "
            "HOST:%port% (an IPv6 host in brackets: [::1]:%port%)"
        )
    check_port_free(port)
    return dispatcher_target(dispatcher, timeout_s).removeprefix("grpc://")


def serve_worker(
    dispatcher: str,
    *,
    port: int = 0,
    address: str | None = None,
    heartbeat_interval_ms: int = 0,
    timeout_s: float = 30.0,
) -> None:
    """Serve a worker until interrupted; consumers reach it at `address` (HOST:PORT|%port%)."""
    import tensorflow as tf

    service = tf.data.experimental.service
    dispatcher = worker_checks(dispatcher, port, address, timeout_s, heartbeat_interval_ms)
    beat = heartbeat_interval_ms or None  # 0: TensorFlow's default
    config = service.WorkerConfig(
        dispatcher_address=dispatcher, port=port, worker_address=address, heartbeat_interval_ms=beat
    )
    server = service.WorkerServer(config)
    served_on = server._address.rsplit(":", 1)[-1]
    print(f"worker on port {served_on} registered with {dispatcher}", flush=True)
    _serve_until_interrupted(server)


def _serve_until_interrupted(server: Any) -> None:
    """Wait in Python, where Ctrl-C interrupts (server.join() waits in C++, where it cannot);
    in short sleeps, as the signal may reach one of TensorFlow's threads, not this one."""
    try:
        while True:
            time.sleep(0.2)
    finally:
        server.stop()
