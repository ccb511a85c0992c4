"""A real tf.data service on 127.0.0.1: a dispatcher and two workers in subprocesses."""

from __future__ import annotations

import hashlib
import os
import pty
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import mnist_data

SOURCE = "mnist-sample"
TIMEOUT = 10  # the consumer's service_timeout
CONSUMER = f"""
import hashlib, sys
import numpy as np
from pipelines import make_dataset
for mode in ("cache", "stream", "dying"):  # cached: the split rides in the graph; else files stream
    ds = make_dataset(sys.argv[1], "train", 20, shuffle=False, cache=mode == "cache",
                      service=sys.argv[2], processing_mode="distributed_epoch",
                      service_timeout={TIMEOUT})
    try:
        for number, (x, _) in enumerate(ds.as_numpy_iterator()):
            u = np.rint(x * 255).astype(np.uint8).reshape(len(x), -1)
            print(" ".join(hashlib.md5(bytes(a)).hexdigest() for a in u), flush=True)
            if mode == "dying" and number == 4:  # a worker is killed now, mid-epoch
                print("KILL", flush=True)
                sys.stdin.readline()
        print("END", flush=True)
    except Exception as exc:
        print("ERROR", str(exc).splitlines()[0], flush=True)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def env() -> dict[str, str]:
    root = str(Path(__file__).resolve().parents[1])
    return {
        **os.environ,
        "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", ""),
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }


def serve(*args: str) -> list[str]:
    return [sys.executable, "-m", "mnist_data_cli", "serve", *args]


@pytest.fixture
def service():
    """grpc address of a dispatcher with two registered workers, and the three processes."""
    port = free_port()
    dispatcher = serve("dispatcher", "--port", str(port), "--worker-timeout-ms", "2000")
    worker = serve(
        "worker",
        "--dispatcher",
        f"127.0.0.1:{port}",
        "--timeout",
        "120",
        "--heartbeat-interval-ms",
        "300",
        "--port",
    )
    procs = [subprocess.Popen(dispatcher, env=env(), stderr=subprocess.DEVNULL)]
    procs += [
        subprocess.Popen(
            worker + [str(free_port())],
            env=env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        for _ in range(2)
    ]
    for worker in procs[1:]:
        assert "registered with" in worker.stdout.readline()
    yield f"grpc://127.0.0.1:{port}", procs
    for p in procs:
        p.kill()
        p.wait()


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tfr")
    mnist_data.to_tfrecord(SOURCE, out, splits=["train"], shards=16, workers=1, progress=False)
    return out


def expected_hashes() -> list[str]:
    images, _ = mnist_data.load(SOURCE, "train")
    return sorted(hashlib.md5(bytes(a)).hexdigest() for a in images.reshape(len(images), -1))


def test_distributed_epoch_gives_each_example_once_and_a_dead_worker_an_error_not_a_duplicate(
    service, shards
):
    address, (dispatcher, *workers) = service
    consumer = subprocess.Popen(
        [sys.executable, "-c", CONSUMER, str(shards), address],
        env=env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    epochs: list[tuple[list[str], str]] = []  # the hashes of each epoch, and how it ended
    seen: list[str] = []
    watchdog = threading.Timer(120, consumer.kill)  # an endless wait fails the test, not hangs it
    watchdog.start()
    for line in consumer.stdout:
        if line == "KILL\n":
            workers[1].kill()
            consumer.stdin.write("\n")
            consumer.stdin.flush()
        elif line.startswith(("END", "ERROR")):
            epochs.append((seen, line.strip()))
            seen = []
        else:
            seen += line.split()
    watchdog.cancel()
    assert consumer.wait(timeout=30) == 0
    assert [end for _, end in epochs[:2]] == ["END", "END"], epochs[:2]
    for hashes, _ in epochs[:2]:
        assert sorted(hashes) == expected_hashes()  # every example exactly once across both workers
    # The dead worker's share of the epoch may be lost, and TensorFlow may end the epoch or wait
    # for it: either way each example comes at most once, and the wait has an end.
    hashes, end = epochs[2]
    assert len(hashes) >= 5 * 20 and len(hashes) == len(set(hashes))
    assert set(hashes) <= set(expected_hashes())
    assert end == "END" or f"no batch from the tf.data service at {address} in {TIMEOUT} s" in end

    for server in (workers[0], dispatcher):  # SIGTERM stops a server as Ctrl-C does
        server.terminate()
        assert server.wait(timeout=15) == 128 + signal.SIGTERM


def read_until(terminal: int, text: str, timeout: float) -> str:
    """What a program wrote to its terminal, up to `text` or to its exit."""
    seen = b""
    deadline = time.monotonic() + timeout
    while (
        text.encode() not in seen
        and select.select([terminal], [], [], max(0.0, deadline - time.monotonic()))[0]
    ):
        try:
            chunk = os.read(terminal, 4096)
        except OSError:  # the program has ended and closed the terminal
            break
        seen += chunk
    return seen.decode(errors="replace")


def exit_status(pid: int, timeout: float) -> int | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.05)
    return None


def test_ctrl_c_in_a_terminal_stops_a_dispatcher_and_a_worker():
    port = free_port()
    started, ended = [], {}  # the dispatcher, then a worker; exit statuses by pid
    for args in (
        ("dispatcher", "--port", str(port)),
        ("worker", "--dispatcher", f"127.0.0.1:{port}", "--timeout", "120"),
    ):
        pid, terminal = pty.fork()
        if pid == 0:  # the child: a session whose controlling terminal is the pty
            os.execve(sys.executable, serve(*args), env())
        started.append((pid, terminal))
    try:
        for (_pid, terminal), says in zip(started, ("dispatcher listening", "registered with")):
            assert says in read_until(terminal, says, 120)
        for pid, terminal in started[::-1]:  # the worker first, then its dispatcher
            os.write(terminal, b"\x03")  # what the terminal sends for Ctrl-C
            ended[pid] = exit_status(pid, 10)
            assert ended[pid] == 130
            assert "mnist-data: interrupted" in read_until(terminal, "interrupted", 5)
    finally:
        for pid, terminal in started:
            os.close(terminal)
            if ended.get(pid) is None:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)


def test_a_port_in_use_a_file_as_journal_and_a_bad_worker_address_are_one_line_errors(tmp_path):
    from pipelines.input.service import check_port_free

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(mnist_data.DatasetError, match=f"port {port} is in use"):
            check_port_free(port)
        (tmp_path / "journal").write_text("a file")
        for args, says in (
            (["dispatcher", "--port", str(port)], f"port {port} is in use"),
            (
                ["worker", "--dispatcher", "127.0.0.1:1", "--port", str(port)],
                f"port {port} is in use",
            ),
            (
                ["dispatcher", "--port", str(free_port()), "--work-dir", str(tmp_path / "journal")],
                "journal: File exists",
            ),
            (
                ["worker", "--dispatcher", "127.0.0.1:1", "--worker-address", "bad address"],
                "worker address 'bad address': expected HOST:PORT",
            ),
        ):
            done = subprocess.run(
                serve(*args), env=env(), capture_output=True, text=True, timeout=120
            )
            assert done.returncode == 1 and done.stderr.startswith("mnist-data: error: "), done
            assert says in done.stderr, done
    check_port_free(port)  # free again once its listener closed


def test_a_missing_dispatcher_or_worker_is_announced_then_an_error_naming_it(file_server, tmp_path):
    import tensorflow as tf

    import pipelines
    from pipelines.input.service import dispatcher_target

    nobody = f"127.0.0.1:{free_port()}"
    worker_cli = subprocess.Popen(
        serve("worker", "--dispatcher", nobody, "--timeout", "4"),
        env=env(),
        stderr=subprocess.PIPE,
        text=True,
    )
    web = file_server(tmp_path)  # answers HTTP/1, as a web server on the wrong port would
    for address in (nobody, web.url.removeprefix("http://").rstrip("/")):
        refused = rf"no tf.data service dispatcher answers at {address} \(waited 1 s\)"
        with pytest.raises(mnist_data.DatasetError, match=refused):
            pipelines.make_dataset(SOURCE, "test", service=f"grpc://{address}", service_timeout=1)
    _, stderr = worker_cli.communicate(timeout=120)
    assert worker_cli.returncode == 1 and stderr.splitlines() == [
        f"mnist-data: warning: waiting up to 4 s for the tf.data service dispatcher at {nobody}",
        f"mnist-data: error: no tf.data service dispatcher answers at {nobody} (waited 4 s)",
    ], stderr
    with pytest.raises(mnist_data.DatasetError, match="expected HOST:PORT"):
        pipelines.make_dataset(SOURCE, "test", service="localhost:99999")

    service = tf.data.experimental.service
    dispatcher = service.DispatchServer(service.DispatcherConfig(port=0))
    target, worker = dispatcher.target, None
    try:
        dataset = pipelines.make_dataset(SOURCE, "test", 50, service=target, service_timeout=4)
        awaited = f"waiting up to 4 s for a batch from the tf.data service at {target}"
        with pytest.warns(UserWarning, match=awaited):
            with pytest.raises(
                tf.errors.InvalidArgumentError,
                match=f"no batch from the tf.data service at {target} in 4 s: "
                "no worker is registered with its dispatcher",
            ):
                next(iter(dataset))
        worker = service.WorkerServer(service.WorkerConfig(target.removeprefix("grpc://")))
        with pytest.raises(
            mnist_data.DatasetError,  # a worker's port, say
            match=f"{worker._address} answers, but not as a tf.data service",
        ):
            dispatcher_target(worker._address, 5)
        assert sum(len(labels) for _, labels in dataset) == len(mnist_data.load(SOURCE, "test")[1])
    finally:
        for server in filter(None, (worker, dispatcher)):
            server.stop()


def test_address_forms_and_a_kernel_without_ipv6(monkeypatch):
    from pipelines.input import service

    for address in ("localhost:0", "localhost:65536", "host name:5", "[fe80::1%eth0]:%port%"):
        assert service._host_port(address, template=True) == address.endswith("%port%"), address

    real_socket = socket.socket

    def no_ipv6(family=socket.AF_INET, *args, **kwargs):  # a kernel with IPv6 switched off
        if family == socket.AF_INET6:
            raise OSError(97, "Address family not supported by protocol")
        return real_socket(family, *args, **kwargs)

    monkeypatch.setattr(service.socket, "socket", no_ipv6)
    service.check_port_free(free_port())
    with real_socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        with pytest.raises(mnist_data.DatasetError, match="is in use"):
            service.check_port_free(taken.getsockname()[1])
