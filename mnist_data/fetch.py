"""Download a catalog dataset: mirrors in order, resumable, checksummed, atomic.

A download goes to a hidden `.NAME.part` file beside the target; an interrupted one is
resumed with an HTTP Range request where the server allows it, and the file is renamed
to its final name only once its MD5 matches the catalog.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Iterator, Sequence
from http.client import HTTPException
from pathlib import Path

from mnist_data.catalog import ROLES, SPLITS, RemoteFile, get_dataset
from mnist_data.errors import FetchError
from mnist_data.fs import file_digest, first_missing_folder, locked, publish, remove_empty_folders
from mnist_data.locate import user_cache_dir

CHUNK = 1 << 16
MIN_RATE = 1024  # bytes/s a mirror must keep up, on average, once the timeout has passed
ATTEMPTS_PER_MIRROR = 3


def md5_of(path: Path) -> str:
    return file_digest(path, "md5")


def part_path(target: Path) -> Path:
    return target.with_name(f".{target.name}.part")


def fetch(
    dataset: str,
    data_dir: str | os.PathLike | None = None,
    *,
    mirrors: Sequence[str] | None = None,
    splits: Iterable[str] = SPLITS,
    progress: bool = True,
    timeout: float = 30.0,
) -> Path:
    """Make sure the dataset's files for `splits` are in `data_dir`, downloading what is missing.

    Returns the directory. Raises FetchError, naming the files and where to put them,
    when some file cannot be had from any mirror.
    """
    spec = get_dataset(dataset)
    directory = Path(data_dir) if data_dir is not None else user_cache_dir() / spec.name
    urls = tuple(mirrors) if mirrors else spec.mirrors
    for url in urls:
        try:
            scheme = urllib.parse.urlsplit(url).scheme
        except ValueError as exc:
            raise FetchError(f"mirror {url!r}: not a URL ({exc})") from None
        if scheme not in ("http", "https", "file", "ftp"):
            raise FetchError(
                f"mirror {url!r}: expected a URL starting with http://, https://, ftp:// or file://"
            )
    if not urls:
        raise FetchError(
            f"{spec.name} has no mirrors: it is embedded in the package and needs no download"
        )
    missing = [
        remote
        for remote in (spec.file(split, role) for split in splits for role in ROLES)
        if not _present(directory / remote.name, remote)
    ]
    if not missing:
        return directory
    created = first_missing_folder(directory)
    with _downloading(directory):
        try:
            for remote in missing:
                _fetch_missing(
                    remote,
                    directory,
                    directory / remote.name,
                    urls,
                    progress=progress,
                    timeout=timeout,
                )
        except BaseException:  # still holding the folder: no waiting download can be in it
            if created is not None:
                remove_empty_folders(directory, created)
            raise
    return directory


def _present(target: Path, remote: RemoteFile) -> bool:
    return target.is_file() and md5_of(target) == remote.md5


@contextlib.contextmanager
def _downloading(directory: Path) -> Iterator[None]:
    """One download at a time into `directory`: several processes loading the same dataset into
    a shared cache take turns, rather than appending to one another's part file."""
    while True:
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise _LocalWriteError(
                f"{directory}: cannot download into it: {exc.strerror or exc}"
            ) from None
        with locked(directory):
            if directory.is_dir():  # the one waited on may have failed and removed it
                yield
                return


def _fetch_missing(
    remote: RemoteFile,
    directory: Path,
    target: Path,
    mirrors: Sequence[str],
    *,
    progress: bool,
    timeout: float,
) -> Path:
    present = md5_of(target) if target.is_file() else None
    if present == remote.md5:  # another process fetched it while this one waited
        return target
    failures, unreachable = [], False
    for mirror in mirrors:
        url = mirror.rstrip("/") + "/" + remote.name
        try:
            _download_verified(url, remote, target, progress=progress, timeout=timeout)
            return target
        except _LocalWriteError:
            raise
        except _Unreachable as exc:
            failures.append(f"{url}: {exc}")
            unreachable = True
        except FetchError as exc:
            failures.append(f"{url}: {exc}")
    found = (
        f"; {target} is there but its md5 is {present}, not the published one" if present else ""
    )
    advice = (
        " Offline? Place the published files (train-images-idx3-ubyte.gz, "
        "train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz) "
        f"in {directory} and run again."
        if unreachable
        else ""
    )
    raise FetchError(
        f"could not download {remote.name} (md5 {remote.md5}) from any mirror "
        f"({'; '.join(failures)}){found}.{advice}"
    )


class _Unreachable(FetchError):
    """The mirror could not be reached or dropped every attempt (rather than refusing the file)."""


class _LocalWriteError(FetchError):
    """The download cannot be stored here (disk full, no permission): no mirror can help."""


def _writable(part: Path, append: bool):
    """The part file opened for writing, never through a symlink planted in its place (which
    would point the download at some other file)."""
    if part.is_symlink():
        part.unlink()
    flags = (
        os.O_WRONLY
        | os.O_CREAT
        | (os.O_APPEND if append else os.O_TRUNC)
        | getattr(os, "O_NOFOLLOW", 0)
    )
    try:
        return os.fdopen(os.open(part, flags, 0o644), "ab" if append else "wb")
    except OSError as exc:
        raise _LocalWriteError(f"{part}: cannot write: {exc.strerror or exc}") from None


def _download_verified(
    url: str, remote: RemoteFile, target: Path, *, progress: bool, timeout: float
) -> None:
    part = part_path(target)
    last_error = "no attempt made"
    kept = (
        part.is_file() and part.stat().st_size > 0
    )  # an earlier run's: resumed, unless it proves bad
    for _ in range(ATTEMPTS_PER_MIRROR):
        try:
            complete = _download_to(url, part, remote.size, progress=progress, timeout=timeout)
        except urllib.error.HTTPError as exc:
            raise FetchError(f"HTTP {exc.code} {_one_line(exc.reason)}") from None
        except (urllib.error.URLError, HTTPException, OSError) as exc:
            last_error = _describe(exc)
            if isinstance(exc, urllib.error.URLError) and not part.exists():
                break  # the host cannot be reached at all: no point retrying
            continue  # connection dropped: resume from what we have
        if complete:
            found = md5_of(part)
            if found != remote.md5:
                part.unlink(missing_ok=True)
                if (
                    kept
                ):  # the bytes kept from before were not this file's: once more, from the start
                    kept = False
                    continue
                raise FetchError(f"checksum mismatch: expected md5 {remote.md5}, found {found}")
            publish(part, target)
            return
        last_error = "connection closed before the end of the file"
    raise _Unreachable(last_error)


def _download_to(url: str, part: Path, size: int, *, progress: bool, timeout: float) -> bool:
    """Append the rest of `url` to `part`; True when it holds the file's `size` bytes.

    A mirror that sends more than `size` bytes, says it will, resumes at another byte than
    asked, or trickles slower than MIN_RATE once `timeout` has passed is given up on: no
    misbehaving server can fill the disk or hold the download (and its lock) forever.
    """
    if part.exists() and not part.is_file() and not part.is_symlink():
        raise _LocalWriteError(f"{part}: cannot write: something other than a file has that name")
    have = part.stat().st_size if part.is_file() and not part.is_symlink() else 0
    request = urllib.request.Request(url, headers={"User-Agent": "mnist-data"})
    if have:
        request.add_header("Range", f"bytes={have}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # nothing left to send: the part file is already whole
            return True
        raise
    with response:
        if response.status != 206:
            have = 0  # the server ignored the Range header: start over
        elif _range_start(response.headers.get("Content-Range")) != have:
            part.unlink(
                missing_ok=True
            )  # these bytes do not continue ours: next attempt from byte 0
            raise ConnectionResetError(f"the server resumed elsewhere than at byte {have}")
        length = _content_length(response.headers.get("Content-Length"))
        if length is not None and have + length > size:
            raise FetchError(f"the server announces {have + length} bytes; the file has {size}")
        from tqdm import tqdm

        started, received = time.monotonic(), 0
        with (
            _writable(part, append=bool(have)) as sink,
            tqdm(
                total=size,
                initial=have,
                unit="B",
                unit_scale=True,
                desc=part.name[1:-5],
                disable=not progress,
                leave=False,
            ) as bar,
        ):
            while True:
                block = response.read(CHUNK)
                if not block:
                    break
                received += len(block)
                if have + received > size:
                    sink.close()
                    part.unlink(missing_ok=True)
                    raise FetchError(f"the server sent more than the {size} bytes of the file")
                try:
                    sink.write(block)
                except OSError as exc:
                    raise _LocalWriteError(f"{part}: cannot write: {exc.strerror or exc}") from None
                bar.update(len(block))
                elapsed = time.monotonic() - started
                if elapsed > timeout and received / elapsed < MIN_RATE:
                    raise ConnectionResetError(
                        f"slower than {MIN_RATE // 1024} KiB/s for {elapsed:.0f} s"
                    )
        written = part.stat().st_size
    return written >= size


def _content_length(header: str | None) -> int | None:
    """The Content-Length, also when a proxy repeats it ("N, N"); FetchError if not a number."""
    if header is None:
        return None
    values = {value.strip() for value in header.split(",")}
    if len(values) != 1 or not next(iter(values)).isdigit():
        raise FetchError(f"unusable Content-Length header {header!r}")
    return int(values.pop())


def _range_start(header: str | None) -> int | None:
    """The first byte a 206 answer holds, from its Content-Range ("bytes START-END/TOTAL")."""
    found = re.match(r"bytes (\d+)-", header or "")
    return int(found.group(1)) if found else None


def _describe(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None)
    return _one_line(reason if reason is not None else exc) or type(exc).__name__


def _one_line(reason: object) -> str:
    return " ".join(str(reason).split())
