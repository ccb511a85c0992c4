"""tf.data service servers: a dispatcher and workers that run make_dataset's pipelines remotely.

Workers send uint8 batches (4x fewer bytes than float32); the consumer normalises them.
"""

from __future__ import annotations

import os
import re
import socket
import time
from pathlib import Path

from mnist_data.errors import DatasetError

CONNECT_WAIT_S = 30.0  # a dispatcher started alongside has this long to come up


def dispatcher_target(address: str) -> str:
    """`grpc://HOST:PORT` for a dispatcher given with or without the scheme, once a TCP
    connection to it succeeds. Why: TensorFlow's client retries an unreachable dispatcher
    forever, silently; this gives up after CONNECT_WAIT_S, naming the address."""
    host_port = address.removeprefix("grpc://")
    host, _, port = host_port.rpartition(":")
    if not host or not port.isdigit() or int(port) > 65535 or \
            (":" in host and not (host.startswith("[") and host.endswith("]"))):
        raise DatasetError(f"tf.data service address {address!r}: expected HOST:PORT or grpc://HOST:PORT "
                           "(an IPv6 host in brackets: [::1]:5050)")
    deadline = time.monotonic() + CONNECT_WAIT_S
    while True:
        try:
            with socket.create_connection((host.strip("[]"), int(port)), timeout=5) as connection:
                if not _answers_http2(connection):
                    raise DatasetError(f"{host_port} answers, but not as a gRPC server such as a tf.data service "
                                       "dispatcher: a wrong port?")
            return f"grpc://{host_port}"
        except OSError as exc:
            if time.monotonic() >= deadline:
                raise DatasetError(f"cannot reach the tf.data service dispatcher at {host_port} "
                                   f"(tried for {CONNECT_WAIT_S:g} s): {exc.strerror or exc}") from None
            time.sleep(0.2)


def _answers_http2(connection: socket.socket) -> bool:
    """Whether the server on `connection` answers HTTP/2's connection preface with a SETTINGS
    frame, as every gRPC server does. Why: TensorFlow's client waits forever, silently, on a
    port where something else listens (a web server, say)."""
    connection.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0]))
    header = b""
    try:
        while len(header) < 9:
            more = connection.recv(9 - len(header))
            if not more:
                break
            header += more
    except OSError:  # no answer in time, or the connection reset
        return False
    return len(header) == 9 and header[3] == 4


def check_port_free(port: int) -> None:
    """DatasetError if something listens on `port` already. Why: gRPC servers share a port with
    SO_REUSEPORT, so a second dispatcher (or a worker given the dispatcher's port) would start
    'successfully' beside the first and split its connections."""
    if port == 0:
        return
    family, host = (socket.AF_INET6, "::") if socket.has_ipv6 else (socket.AF_INET, "0.0.0.0")
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a closed server's TIME_WAIT is no owner
        if family == socket.AF_INET6:
            probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)  # IPv4 too, as gRPC listens
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise DatasetError(f"port {port} is in use (another dispatcher, worker or program listens there): "
                               f"{exc.strerror or exc}") from None


def _work_dir(path: str | os.PathLike) -> str:
    """The dispatcher's journal directory, made if missing; DatasetError if it cannot be one."""
    directory = Path(path)
    if directory.exists() and not directory.is_dir():
        raise DatasetError(f"{directory}: exists and is not a directory, so it cannot hold the dispatcher's journal")
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DatasetError(f"{directory}: cannot make the dispatcher's journal directory: {exc.strerror or exc}") from None
    return os.fspath(directory)


def serve_dispatcher(port: int, *, work_dir: str | os.PathLike | None = None, worker_timeout_ms: int = 0) -> None:
    """Start a dispatcher on `port` and block; `work_dir` keeps its state across restarts.

    `worker_timeout_ms` (0 = TF default): after this long without a heartbeat a worker is
    declared dead and its unfinished work is dropped (see docs/tfdata-service.md).
    """
    import tensorflow as tf

    check_port_free(port)
    config = tf.data.experimental.service.DispatcherConfig(
        port=port, work_dir=_work_dir(work_dir) if work_dir else None, fault_tolerant_mode=bool(work_dir),
        worker_timeout_ms=worker_timeout_ms or None)
    server = tf.data.experimental.service.DispatchServer(config)
    print(f"dispatcher listening on {server.target}", flush=True)
    server.join()


def serve_worker(dispatcher: str, *, port: int = 0, address: str | None = None, heartbeat_interval_ms: int = 0) -> None:
    """Start a worker registered with `dispatcher` (HOST:PORT) and block; `address` is how
    consumers reach it (HOST:PORT, where PORT may be %port% for the port it serves on)."""
    import tensorflow as tf

    if address is not None and not re.fullmatch(r"(\[[0-9A-Fa-f:.]+\]|[^\s:/\[\]]+):(\d{1,5}|%port%)", address):
        raise DatasetError(f"worker address {address!r}: expected HOST:PORT or HOST:%port% "
                           "(an IPv6 host in brackets: [::1]:%port%)")
    check_port_free(port)
    dispatcher = dispatcher_target(dispatcher).removeprefix("grpc://")
    print(f"registering with the dispatcher at {dispatcher}", flush=True)
    config = tf.data.experimental.service.WorkerConfig(
        dispatcher_address=dispatcher, port=port, worker_address=address,
        heartbeat_interval_ms=heartbeat_interval_ms or None)
    server = tf.data.experimental.service.WorkerServer(config)
    print(f"worker on port {server._address.rsplit(':', 1)[-1] if hasattr(server, '_address') else port} "
          f"registered with {dispatcher}", flush=True)
    server.join()
