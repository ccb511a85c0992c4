"""File-system helpers: atomic output and one directory lock.

Atomic output writes under a temporary name in the same directory, then renames, so a reader
(or a resumed run) never sees a partial file under its final name, whatever moment the writer
is killed at. The lock lets two processes at once take turns or refuse each other.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

TEMP_MARKER = ".tmp-"


def file_digest(path: str | os.PathLike, algorithm: str = "sha256") -> str:
    """The hex digest of a file, read in 1 MiB blocks."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def temp_suffix() -> str:
    """A suffix that makes a hidden name unique to this writer and marks it as temporary."""
    return f"{TEMP_MARKER}{os.getpid()}-{secrets.token_hex(4)}"


def temp_name_for(final: Path) -> Path:
    """A unique hidden sibling of `final`, recognisable as temporary by TEMP_MARKER."""
    return final.with_name(f".{final.name}{temp_suffix()}")


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
    """Yield a temporary path; on success fsync it (if `durable`) and rename it to `final`.

    On any exception the temporary file is removed and `final` is left untouched; an OSError
    about the temporary names `final` instead.
    """
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
        if (
            isinstance(exc, OSError)
            and exc.errno is not None
            and exc.filename in (None, os.fspath(tmp))
        ):
            # Named by what the caller asked for, not the temporary (or nothing, for a full disk).
            raise OSError(exc.errno, exc.strerror, os.fspath(final)) from None
        raise


def write_bytes_atomic(
    final: str | os.PathLike, data: bytes | memoryview, *, durable: bool = True
) -> Path:
    """Write `data` to `final` atomically and return the final path."""
    final = Path(final)
    with atomic_path(final, durable=durable) as tmp:
        with open(tmp, "wb") as handle:
            handle.write(data)
    return final


def write_json_atomic(final: str | os.PathLike, value: object, *, sort_keys: bool = False) -> Path:
    """Write `value` as JSON to `final` atomically, creating missing parent folders (a summary
    is often asked for inside the output folder the command itself creates)."""
    import json

    Path(final).parent.mkdir(parents=True, exist_ok=True)
    return write_bytes_atomic(
        final, (json.dumps(value, indent=2, sort_keys=sort_keys) + "\n").encode()
    )


def remove_stale_temps(directory: str | os.PathLike, *, recursive: bool = False) -> int:
    """Delete temporary files and folders left by a killed writer in `directory` (and, if
    `recursive`, in its subfolders); return how many."""
    removed = 0
    for entry in Path(directory).iterdir():
        if not is_temp_name(entry):
            if recursive and entry.is_dir() and not entry.is_symlink():
                removed += remove_stale_temps(entry, recursive=True)
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
            removed += 1
        else:
            with contextlib.suppress(FileNotFoundError):
                entry.unlink()
                removed += 1
    return removed


def writer_is_gone(temp: Path) -> bool:
    """Whether the process whose id is in a temporary's name has ended (a temporary of a live
    writer, perhaps another process storing the same file right now, must stay)."""
    try:
        pid = int(temp.name.rsplit(TEMP_MARKER, 1)[1].split("-", 1)[0])
        os.kill(pid, 0)
    except (IndexError, ValueError, OverflowError, ProcessLookupError):
        return True
    except PermissionError:  # alive, another user's
        return False
    return False


def first_missing_folder(path: Path) -> Path | None:
    """The outermost of `path` and its parents that does not exist yet: what making `path`
    creates, and what a failure should take away again."""
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
    block runs; the OS releases it if the process dies. If another process holds it, raise
    `busy`, or with `busy` None say so on stderr and wait. A file system without locks (some
    network mounts) runs the block unguarded."""
    import fcntl

    path = Path(path)
    if path.is_dir():
        held = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    else:
        held = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
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
