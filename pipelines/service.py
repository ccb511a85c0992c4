"""tf.data service servers: a dispatcher and workers that run make_dataset's pipelines remotely.

Workers send uint8 batches (4x fewer bytes than float32); the consumer normalises them.
"""

from __future__ import annotations

import errno
import os
import re
import socket
import time
from pathlib import Path

from mnist_data.errors import DatasetError

CONNECT_WAIT_S = 30.0  # a dispatcher started alongside has this long to come up


def dispatcher_target(address: str) -> str:
    """`grpc://HOST:PORT` for a dispatcher given with or without the scheme, once a server
    there answers as gRPC servers do. Why: TensorFlow's client retries an unreachable
    dispatcher forever, silently; this gives up after CONNECT_WAIT_S, naming the address, and
    at once where something else answers."""
    host_port = address.removeprefix("grpc://")
    if not _host_port(host_port):
        raise DatasetError(f"tf.data service address {address!r}: expected HOST:PORT or grpc://HOST:PORT "
                           "(a port 1..65535; an IPv6 host in brackets: [::1]:5050)")
    host, _, port = host_port.rpartition(":")
    deadline = time.monotonic() + CONNECT_WAIT_S
    while True:
        try:
            with socket.create_connection((host.strip("[]"), int(port)), timeout=5) as connection:
                speaks_http2 = _answers_http2(connection)
            if speaks_http2:
                return f"grpc://{host_port}"
            if speaks_http2 is False:
                raise DatasetError(f"{host_port} answers, but not as a gRPC server such as a tf.data service "
                                   "dispatcher: a wrong port?")
            raise ConnectionError("the connection was taken but not answered")  # a proxy before its server is up
        except OSError as exc:
            if time.monotonic() >= deadline:
                raise DatasetError(f"cannot reach the tf.data service dispatcher at {host_port} "
                                   f"(tried for {CONNECT_WAIT_S:g} s): {exc.strerror or exc}") from None
            time.sleep(0.2)


def _host_port(text: str, template: bool = False) -> bool:
    """Whether `text` is HOST:PORT with a port 1..65535 (or, with `template`, the literal
    %port% that a worker replaces with its own); an IPv6 host in brackets, a zone allowed."""
    found = re.fullmatch(r"(\[[0-9A-Fa-f:.]+(%[\w.-]+)?\]|[^\s:/\[\]%]+):(\d{1,5}|%port%)", text)
    if not found:
        return False
    port = found.group(3)
    return (template and port == "%port%") or (port.isdigit() and 1 <= int(port) <= 65535)


def _answers_http2(connection: socket.socket) -> bool | None:
    """Whether the server on `connection` answers HTTP/2's connection preface with a SETTINGS
    frame, as every gRPC server does; None if it gives no answer (the connection closed or
    timed out: perhaps not up yet). Why: TensorFlow's client waits forever, silently, on a
    port where something else listens (a web server, say)."""
    header = b""
    try:
        connection.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0]))
        while len(header) < 9:
            more = connection.recv(9 - len(header))
            if not more:
                break
            header += more
    except OSError:
        pass
    if not header:
        return None
    return len(header) == 9 and header[3] == 4


def check_port_free(port: int) -> None:
    """DatasetError if something listens on `port` already. Why: gRPC servers share a port with
    SO_REUSEPORT, so a second dispatcher (or a worker given the dispatcher's port) would start
    'successfully' beside the first and split its connections."""
    if port == 0:
        return
    try:
        probe = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)  # IPv4 too, as gRPC listens
        host = "::"
    except OSError:  # IPv6 is off on this machine
        probe, host = socket.socket(socket.AF_INET, socket.SOCK_STREAM), "0.0.0.0"
    with probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a closed server's TIME_WAIT is no owner
        try:
            probe.bind((host, port))
        except OSError as exc:
            taken = exc.errno == errno.EADDRINUSE
            raise DatasetError(f"port {port} is in use (another dispatcher, worker or program listens there)" if taken
                               else f"cannot listen on port {port}: {exc.strerror or exc}") from None


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

    if address is not None and not _host_port(address, template=True):
        raise DatasetError(f"worker address {address!r}: expected HOST:PORT (a port 1..65535) or HOST:%port% "
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
