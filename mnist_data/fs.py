"""Atomic output (write a hidden temporary, then rename: no partial file ever has its final
name) and one directory lock, so that two processes at once take turns or refuse each other."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import shutil
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

TEMP_MARKER = ".tmp-"


def file_digest(path: str | os.PathLike, algorithm: str = "sha256") -> str:
    """The hex digest of a file, read in 1 MiB blocks."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def temp_name_for(final: Path) -> Path:
    """A hidden sibling of `final` unique to this writer, marked temporary by TEMP_MARKER."""
    return final.with_name(f".{final.name}{TEMP_MARKER}{os.getpid()}-{secrets.token_hex(4)}")


def write_many_atomic(files: Iterable[tuple[str, bytes]]) -> None:
    """Write many small files, each under a temporary name then renamed, without syncing them.
    Bare os calls on str paths: for a small PNG, Path and context-manager overhead costs as much
    as encoding it (docs/BENCHMARKS.md, converters)."""
    suffix = f"{TEMP_MARKER}{os.getpid()}-{secrets.token_hex(4)}"
    for final, blob in files:
        folder, _, name = final.rpartition("/")
        tmp = f"{folder}/.{name}{suffix}"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                view = memoryview(blob)
                while view:  # a write may take less than it was given (a size limit, a signal)
                    view = view[os.write(fd, view) :]
            finally:
                os.close(fd)
            os.replace(tmp, final)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise OSError(exc.errno, exc.strerror, final) from None


def is_temp_name(path: Path) -> bool:
    return path.name.startswith(".") and TEMP_MARKER in path.name


def final_name_of(path: str | os.PathLike) -> Path:
    """The file a temporary name stands for (errors should name that), else `path` itself."""
    path = Path(path)
    if not is_temp_name(path):
        return path
    return path.with_name(path.name[1:].rsplit(TEMP_MARKER, 1)[0])


def publish(tmp: str | os.PathLike, final: str | os.PathLike, *, durable: bool = True) -> None:
    """Give a complete temporary file its final name (after fsync, if `durable`)."""
    if durable:
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    os.replace(tmp, final)


@contextlib.contextmanager
def atomic_path(final: str | os.PathLike, *, durable: bool = True) -> Iterator[Path]:
    """Yield a temporary path and rename it to `final` on success; on failure remove it, and
    name `final` in an OSError about the temporary (or about no file: a full disk)."""
    final = Path(final)
    tmp = temp_name_for(final)
    try:
        yield tmp
        publish(tmp, final, durable=durable)
    except BaseException as exc:
        if tmp.is_dir():  # a directory output, such as a SavedModel
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        if isinstance(exc, OSError) and exc.errno and exc.filename in (None, os.fspath(tmp)):
            raise OSError(exc.errno, exc.strerror, os.fspath(final)) from None
        raise


def write_bytes_atomic(
    final: str | os.PathLike, data: bytes | memoryview, *, durable: bool = True
) -> Path:
    """Write `data` to `final` atomically and return the final path."""
    with atomic_path(final, durable=durable) as tmp:
        tmp.write_bytes(data)
    return Path(final)


def write_json_atomic(final: str | os.PathLike, value: object, *, sort_keys: bool = False) -> Path:
    """Write `value` as JSON (and a newline) to `final` atomically, making missing folders."""
    Path(final).parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(value, indent=2, sort_keys=sort_keys) + "\n"
    return write_bytes_atomic(final, text.encode())


def remove_stale_temps(directory: str | os.PathLike, *, recursive: bool = False) -> int:
    """Delete (and count) the temporaries killed writers left in `directory` (or below it)."""
    removed = 0
    for entry in Path(directory).iterdir():
        folder = entry.is_dir() and not entry.is_symlink()
        if not is_temp_name(entry):
            removed += remove_stale_temps(entry, recursive=True) if recursive and folder else 0
        elif folder:
            shutil.rmtree(entry, ignore_errors=True)
            removed += 1
        else:
            with contextlib.suppress(FileNotFoundError):
                entry.unlink()
                removed += 1
    return removed


def first_missing_folder(path: Path) -> Path | None:
    """The outermost of `path` and its parents that does not exist yet."""
    return next((p for p in reversed([path, *path.parents]) if not p.exists()), None)


def remove_empty_folders(deepest: Path, top: Path) -> None:
    """rmdir `deepest` and its parents up to and including `top` while they are empty."""
    for folder in [deepest, *deepest.parents]:
        if top not in (folder, *folder.parents):
            return
        try:
            folder.rmdir()  # only if empty
        except OSError:
            return


@contextlib.contextmanager
def locked(path: str | os.PathLike, busy: Exception | None = None) -> Iterator[None]:
    """Hold an exclusive lock on `path` (a directory, or a lock file made if missing) while the
    block runs; if another process holds it, raise `busy`, or (None) say so and wait. The OS
    releases it if the process dies; a file system without locks runs the block unguarded."""
    import fcntl

    path = Path(path)
    flags = os.O_RDONLY | os.O_DIRECTORY if path.is_dir() else os.O_RDWR | os.O_CREAT
    held = os.open(path, flags, 0o644)
    try:
        try:
            fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if busy is not None:
                raise busy from None
            print(f"mnist-data: waiting for another process using {path}", file=sys.stderr)
            fcntl.flock(held, fcntl.LOCK_EX)
        except OSError:
            pass
        yield
    finally:
        os.close(held)
