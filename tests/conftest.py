"""Shared fixtures: real data directories, an isolated cache, a loopback HTTP server."""

from __future__ import annotations

import contextlib
import http.server
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mnist_data.sources.catalog import SAMPLE_DIR

# A test runner started in the background by a non-interactive shell ignores SIGINT, and its
# child processes inherit that, so the tests of Ctrl-C could not interrupt them. Handling it
# here gives every child the default disposition, as in a terminal.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")


@pytest.fixture(autouse=True)
def isolated_cache(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """Every test gets its own user cache dir and no MNIST_DATA_DIR from the caller."""
    cache = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("MNIST_DATA_CACHE", str(cache))
    monkeypatch.delenv("MNIST_DATA_DIR", raising=False)
    return cache


@pytest.fixture
def sample_dir() -> Path:
    return SAMPLE_DIR


@pytest.fixture(scope="session")
def large_idx_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory of the four IDX files, 30,000 train and 10,000 test images of noise: enough
    work (PNGs of noise encode slowly) to interrupt a converter mid-run, with no system data."""
    import numpy as np

    from mnist_data import write_idx

    directory = tmp_path_factory.mktemp("large-idx")
    rng = np.random.default_rng(0)
    for prefix, count in (("train", 30_000), ("t10k", 10_000)):
        write_idx(
            directory / f"{prefix}-images-idx3-ubyte.gz",
            rng.integers(0, 256, (count, 28, 28), np.uint8),
            compresslevel=1,
        )
        write_idx(
            directory / f"{prefix}-labels-idx1-ubyte.gz", rng.integers(0, 10, count, np.uint8)
        )
    return directory


@pytest.fixture
def fashion_dir() -> Path:
    if not (FASHION_DIR / "train-images-idx3-ubyte.gz").exists():
        pytest.skip("Debian's dataset-fashion-mnist is not installed")
    return FASHION_DIR


class FileServer(http.server.ThreadingHTTPServer):
    """Serves files from a directory; `behaviour[name]` can make a file misbehave."""

    daemon_threads = True

    def __init__(self, root: Path) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.root = root
        self.behaviour: dict[str, str] = {}
        self.requests: list[tuple[str, str | None]] = []
        self.honour_range = True

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/"


class _Handler(http.server.BaseHTTPRequestHandler):
    server: FileServer

    def log_message(self, *args: object) -> None:  # keep test output clean
        pass

    def do_GET(self) -> None:
        name = self.path.lstrip("/")
        self.server.requests.append((name, self.headers.get("Range")))
        path = self.server.root / name
        mode = self.server.behaviour.get(name, "ok")
        if mode == "redirect-loop":
            self.send_response(302)
            self.send_header("Location", self.path)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if mode == "404" or not path.is_file():
            self.send_error(404, "Not Found")
            return
        body = path.read_bytes()
        if mode == "corrupt":
            body = body[:100] + bytes([body[100] ^ 0xFF]) + body[101:]
        if mode == "endless":  # the file, then zeros until the client hangs up
            self.send_response(200)
            self.end_headers()
            with contextlib.suppress(OSError):
                self.wfile.write(body)
                for _ in range(10_000):
                    self.wfile.write(bytes(1 << 16))
            return
        start = 0
        ranged = self.headers.get("Range")
        if (
            ranged and mode == "misrange"
        ):  # a resume answered from byte 0 as if it had been asked for
            self.send_response(206)
            self.send_header("Content-Range", f"bytes 0-{len(body) - 1}/{len(body)}")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        if ranged and self.server.honour_range:
            start = int(ranged.split("=")[1].split("-")[0])
            if start >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        if mode in ("drop-once", "drop-then-misrange"):
            self.server.behaviour[name] = "ok" if mode == "drop-once" else "misrange"
            self.wfile.write(body[start : start + (len(body) - start) // 2])
            self.wfile.flush()
            self.connection.shutdown(2)
            return
        self.wfile.write(body[start:])


@pytest.fixture
def file_server() -> Iterator[Callable[[Path], FileServer]]:
    """Start real HTTP servers on 127.0.0.1 serving a directory; stopped after the test."""
    servers: list[FileServer] = []

    def start(root: Path) -> FileServer:
        server = FileServer(root)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        with contextlib.suppress(Exception):
            server.shutdown()
            server.server_close()
