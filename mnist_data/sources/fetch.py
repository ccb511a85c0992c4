"""Download a catalog dataset: mirrors in order, one at a time, into a hidden `.NAME.part` file
that a cut download resumes (HTTP Range) and that is renamed once its MD5 matches the catalog."""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request
from collections.abc import Iterable, Sequence
from http.client import HTTPException
from pathlib import Path

from tqdm import tqdm

from mnist_data.errors import FetchError
from mnist_data.fs import file_digest, locked, publish
from mnist_data.sources.catalog import SPLITS, RemoteFile, check_split, get_dataset, user_cache_dir

CHUNK = 1 << 16
ATTEMPTS_PER_MIRROR = 3


class _Unreachable(FetchError):
    """The mirror could not be reached or cut every attempt (rather than refusing the file)."""


def part_path(target: Path) -> Path:
    return target.with_name(f".{target.name}.part")


def fetch(
    dataset: str | os.PathLike,
    data_dir: str | os.PathLike | None = None,
    *,
    mirrors: Sequence[str] | None = None,
    splits: Iterable[str] = SPLITS,
    progress: bool = True,
    timeout: float = 30.0,
) -> Path:
    """Download what is missing of `splits` into `data_dir` (default: the user cache); return it."""
    spec = get_dataset(os.fspath(dataset))
    directory = Path(data_dir) if data_dir is not None else user_cache_dir() / spec.folder
    urls = tuple(mirrors or spec.mirrors)
    if not urls:
        raise FetchError(f"{spec.name} has no mirrors: it is embedded and needs no download")
    wanted = spec.remote_files([check_split(split, spec) for split in splits])
    directory.mkdir(parents=True, exist_ok=True)  # an OSError here names the directory
    with locked(directory):  # processes fetching into one directory take turns
        for remote in wanted:
            _fetch_file(remote, directory, urls, wanted, progress=progress, timeout=timeout)
    return directory


def _fetch_file(
    remote: RemoteFile,
    directory: Path,
    mirrors: Sequence[str],
    wanted: list[RemoteFile],
    *,
    progress: bool,
    timeout: float,
) -> None:
    """Download one file from the first mirror that has it; FetchError naming every failure."""
    target = directory / remote.name
    present = file_digest(target, "md5") if target.is_file() else None
    if present == remote.md5:  # there already, or fetched by another process while we waited
        return
    failures, unreachable = [], False
    for mirror in mirrors:
        url = mirror.rstrip("/") + "/" + remote.name
        try:
            _download(url, remote, part_path(target), progress=progress, timeout=timeout)
            publish(part_path(target), target)
            return
        except ValueError as exc:
            raise FetchError(f"mirror {mirror!r}: not a URL ({exc})") from None
        except FetchError as exc:
            failures.append(f"{url}: {exc}")
            unreachable |= isinstance(exc, _Unreachable)
    found = f"; {target} is there but its md5 is {present}, not the published one"
    names = ", ".join(file.name for file in wanted)
    advice = f" Offline? Place the published files ({names}) in {directory} and run again."
    raise FetchError(
        f"could not download {remote.name} (md5 {remote.md5}) from any mirror "
        f"({'; '.join(failures)}){found if present else ''}.{advice if unreachable else ''}"
    )


def _download(url: str, remote: RemoteFile, part: Path, *, progress: bool, timeout: float) -> None:
    """Bring `part` to the whole, checksummed file from `url`, resuming a cut connection or an
    earlier run's part file (dropped if it proves to be another file's)."""
    error, kept = "no attempt made", part.is_file() and part.stat().st_size > 0
    for _ in range(ATTEMPTS_PER_MIRROR):
        try:
            _append(url, part, remote.size, progress=progress, timeout=timeout)
        except urllib.error.HTTPError as exc:
            raise FetchError(f"HTTP {exc.code} {' '.join(str(exc.reason).split())}") from None
        except (urllib.error.URLError, HTTPException, ConnectionError, TimeoutError) as exc:
            error = " ".join(str(getattr(exc, "reason", exc)).split()) or type(exc).__name__
            continue
        if remote.size and part.stat().st_size < remote.size:
            error = "connection closed before the end of the file"
            continue
        found = file_digest(part, "md5")
        if found == remote.md5:
            return
        part.unlink()
        if not kept:
            raise FetchError(f"checksum mismatch: expected md5 {remote.md5}, found {found}")
        kept = False  # the bytes kept from before were not this file's: once more, from byte 0
    raise _Unreachable(error)


def _append(url: str, part: Path, size: int | None, *, progress: bool, timeout: float) -> None:
    """Append the rest of `url` to `part`, never beyond the file's `size` bytes (if known; a cut
    transfer is then told by http.client, from the response's length)."""
    have = part.stat().st_size if part.is_file() else 0
    request = urllib.request.Request(url, headers={"User-Agent": "mnist-data"})
    if have:
        request.add_header("Range", f"bytes={have}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # nothing left to send: the part file is already whole
            return
        raise
    with response:
        if response.status != 206:
            have = 0  # the server ignored the Range header: start over
        elif not response.headers.get("Content-Range", "").startswith(f"bytes {have}-"):
            part.unlink()  # these bytes do not continue ours: the next attempt starts at 0
            raise ConnectionResetError(f"the server resumed elsewhere than at byte {have}")
        shown = progress and sys.stderr.isatty()  # no carriage returns in a log
        bar = tqdm(total=size, initial=have, unit="B", unit_scale=True, disable=not shown)
        with open(part, "ab" if have else "wb") as sink, bar:
            while block := response.read(CHUNK):
                have += len(block)
                if size and have > size:
                    raise FetchError(f"the server sent more than the {size} bytes of the file")
                sink.write(block)  # a full disk raises OSError: no mirror can help
                bar.update(len(block))
