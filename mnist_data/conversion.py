"""Bookkeeping shared by the converters: what a run is, refusing to mix runs, resuming.

A run is identified by its kind, the SHA-256 of its source files and its options. That
identity is written to OUT/.mnist-data-run.json before any output; a later run into the
same OUT continues only if its identity is the same (that is how a killed run resumes),
and otherwise stops with a clear error unless `overwrite` is set.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from mnist_data.checks import is_whole, summary_clash
from mnist_data.checksum import file_digest
from mnist_data.errors import ConvertError
from mnist_data.fs import (
    is_temp_name,
    locked,
    remove_stale_temps,
    write_json_atomic,
)
from mnist_data.sources.catalog import SPLITS
from mnist_data.sources.load import resolve
from mnist_data.sources.source import MANIFEST

RUN_FILE = ".mnist-data-run.json"
PROGRESS_DIR = ".progress"  # to_png's markers: one empty file per finished chunk
SHARD_NAME = re.compile(rf"^({'|'.join(SPLITS)})-\d{{5}}-of-\d{{5}}\.tfrecord(\.gz)?$")


def sha256_of(path: Path) -> str:
    return file_digest(path, "sha256")


def describe_source(source: str | os.PathLike, splits: Iterable[str]) -> dict:
    """Name and per-file SHA-256 of the IDX files a conversion reads."""
    files = {}
    for split in splits:
        found = resolve(source, split, fallback=False)
        for path in (found.images, found.labels):
            files[path.name] = sha256_of(path)
    return {"name": os.fspath(source), "files": files}


def image_size(source: str | os.PathLike, arrays: dict) -> dict:
    """The manifest's image size: height and width, which every split must share."""
    sizes = {split: tuple(images.shape[1:3]) for split, (images, _) in arrays.items()}
    if len(set(sizes.values())) > 1:
        found = ", ".join(f"{split} {h}x{w}" for split, (h, w) in sizes.items())
        raise ConvertError(
            f"{source}: the splits differ in image size ({found}); convert them separately"
        )
    ((height, width),) = set(sizes.values())
    return {"height": int(height), "width": int(width), "channels": 1}


@contextlib.contextmanager
def claimed_output(out: Path, identity: dict, overwrite: bool) -> Iterator[None]:
    """Hold OUT for this run, and make it ours: new, resumed from the same run, or cleared with
    `overwrite`. A second conversion into OUT is refused while this one runs, so neither sweeps
    the other's files."""
    if out.exists() and not out.is_dir():
        raise ConvertError(f"{out}: exists and is not a directory, so it cannot hold the output")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConvertError(f"{out}: cannot write output: {exc.strerror or exc}") from None
    busy = ConvertError(
        f"{out}: another conversion is writing here; wait for it to end, or choose another OUT"
    )
    with locked(out, busy):
        _claim(out, identity, overwrite)
        yield


def _claim(out: Path, identity: dict, overwrite: bool) -> None:
    try:
        marker = out / RUN_FILE
        ours = marker.exists() or _is_our_manifest(out / MANIFEST)
        if (
            any(not is_temp_name(p) for p in out.iterdir()) and not ours
        ):  # never clear what we did not write
            raise ConvertError(
                f"{out} is not empty and holds no mnist-data output; "
                "choose a new or empty directory"
            )
        if overwrite:
            foreign = _foreign_entries(out)
            if foreign:
                shown = ", ".join(foreign[:3]) + (
                    f" and {len(foreign) - 3} more" if len(foreign) > 3 else ""
                )
                raise ConvertError(
                    f"{out}: --overwrite clears only mnist-data output, and this directory also "
                    f"holds {shown}; move them away or choose another OUT"
                )
            _clear(out)
        elif marker.exists():
            previous = _read_run_file(marker)
            if previous != identity:
                raise ConvertError(
                    f"{out} holds output of a different run ({_difference(previous, identity)}); "
                    "use --overwrite to replace it"
                )
        remove_stale_temps(out, recursive=True)  # a killed run's, in OUT and its class folders
        write_json_atomic(marker, identity, sort_keys=True)
    except OSError as exc:
        raise ConvertError(f"{out}: cannot write output: {exc.strerror or exc}") from None


def _is_our_manifest(path: Path) -> bool:
    """Whether `path` is a manifest a converter wrote (a file of that name alone proves nothing)."""
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return (
        isinstance(manifest, dict)
        and manifest.get("format") in ("png", "tfrecord")
        and isinstance(manifest.get("splits"), dict)
        and "version" in manifest
    )


def _read_run_file(marker: Path) -> dict:
    try:
        return json.loads(marker.read_text())
    except ValueError as exc:
        raise ConvertError(
            f"{marker}: corrupt run file ({exc}); use --overwrite to start over"
        ) from None


def requested_splits(splits: str | Iterable[str]) -> list[str]:
    """The splits to convert, each once, in the catalog's order: the order or repetition a
    caller gives them in does not make a different run."""
    wanted = [splits] if isinstance(splits, str) else list(splits)  # "train" means ["train"]
    unknown = [split for split in wanted if split not in SPLITS]
    if unknown:
        raise ConvertError(f"unknown split {unknown[0]!r}: expected {' and/or '.join(SPLITS)}")
    return [split for split in SPLITS if split in wanted]


def check_summary_path(
    out: Path, json_path: str | os.PathLike | None, role: str = "the output this command writes in"
) -> None:
    """Refuse a --json summary that would replace one of a converter's files in `out` (its OUT,
    or converted data a command reads), before any work."""
    own = {RUN_FILE, MANIFEST, PROGRESS_DIR, *SPLITS, *(f"{split}.csv" for split in SPLITS)}
    clash = summary_clash(json_path, out, own, role)
    if clash or (json_path is not None and SHARD_NAME.match(Path(json_path).name)):
        raise ConvertError(clash or f"{json_path}: a shard's name; give the summary another name")


def check_workers(workers: int | None) -> int | None:
    if workers is not None and not is_whole(workers, 1):
        raise ConvertError(f"workers must be a whole number, at least 1, found {workers!r}")
    return workers


@contextlib.contextmanager
def worker_pool(workers: int | None) -> Iterator[ThreadPoolExecutor]:
    """A pool of `workers` threads (default: one per core) for a converter's chunks.

    Threads, not processes: a process pool must spawn its workers once TensorFlow is loaded
    (fork is unsafe under TensorFlow's threads), and a spawned worker re-runs the caller's
    script, which converts again when it has no main guard. The work runs largely outside
    the GIL (file writes, zlib, numpy copies); docs/BENCHMARKS.md has the comparison. On an
    error or Ctrl-C the chunks not yet started are cancelled and the running ones finish
    before the error propagates, so nothing writes into OUT after the call returns.
    """
    workers = check_workers(workers) or os.cpu_count() or 1
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mnist-data")
    try:
        yield pool
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _difference(previous: dict, identity: dict, within: str = "") -> str:
    """What differs between two run identities, named down to the setting or source file."""
    changes = []
    for key in sorted(set(previous) | set(identity)):
        old, new = previous.get(key), identity.get(key)
        if old == new or (key == "files" and previous.get("name") != identity.get("name")):
            continue  # another source's files differ as a matter of course
        if key not in previous or key not in identity:
            changes.append(f"{within}{key} {'added' if key in identity else 'removed'}")
        elif isinstance(old, dict) and isinstance(new, dict):
            changes.append(_difference(old, new, f"{within}{key}."))
        elif within.endswith("files."):
            changes.append(f"{within}{key} changed")
        else:
            changes.append(f"{within}{key} {old!r} -> {new!r}")
    return ", ".join(changes)


def _foreign_entries(out: Path) -> list[str]:
    """What in OUT no converter writes: anything but the run file, the manifest, the progress
    markers, temporaries, shards, listings, and split folders holding only PNGs."""
    foreign = []
    for entry in sorted(out.iterdir()):
        name = entry.name
        if (
            name in (RUN_FILE, MANIFEST, PROGRESS_DIR)
            or is_temp_name(entry)
            or SHARD_NAME.match(name)
            or (name.endswith(".csv") and name[:-4] in SPLITS)
            or _is_our_summary(entry)
        ):
            continue
        if name in SPLITS and entry.is_dir() and not entry.is_symlink():
            foreign += [
                p.relative_to(out).as_posix()
                for p in entry.rglob("*")
                if not (p.is_dir() or p.suffix == ".png" or is_temp_name(p))
            ]
            continue
        foreign.append(name)
    return foreign


def _is_our_summary(path: Path) -> bool:
    """Whether `path` is a converter's --json summary (which may be asked for inside OUT)."""
    if path.suffix != ".json" or not path.is_file():
        return False
    try:
        summary = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return (
        isinstance(summary, dict)
        and summary.get("kind") in ("to-png", "to-tfrecord")
        and "examples_per_second" in summary
    )


def _clear(out: Path) -> None:
    """Delete a previous run's output. The manifest goes last and the run file stays (the new
    run's replaces it), so OUT is still known as ours if this is interrupted."""
    for entry in sorted(out.iterdir(), key=lambda e: e.name == MANIFEST):
        if entry.name == RUN_FILE:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


@dataclass
class RunSummary:
    """The one-line summary a converter prints, and writes with --json."""

    kind: str
    out: str
    examples: int = 0
    files: int = 0
    bytes: int = 0
    resumed_files: int = 0
    resumed_examples: int = 0  # in files an earlier run finished: not converted by this one
    started: float = field(default_factory=time.perf_counter)
    seconds: float = 0.0

    def finish(self) -> dict:
        self.seconds = time.perf_counter() - self.started
        converted = self.examples - self.resumed_examples
        rate = converted / self.seconds if self.seconds else 0.0
        return {
            "kind": self.kind,
            "out": self.out,
            "examples": self.examples,
            "files": self.files,
            "bytes": self.bytes,
            "resumed_files": self.resumed_files,
            "resumed_examples": self.resumed_examples,
            "seconds": round(self.seconds, 3),
            "examples_per_second": round(rate, 1),
        }


def line(summary: dict) -> str:
    resumed = f" ({summary['resumed_files']} already done)" if summary["resumed_files"] else ""
    return (
        f"{summary['kind']}: {summary['files']} files{resumed}, {summary['bytes'] / 1e6:.1f} MB, "
        f"{summary['examples']} examples in {summary['seconds']:.2f} s "
        f"({summary['examples_per_second']:,.0f} examples/s) -> {summary['out']}"
    )


def publish_manifest(
    out: Path, manifest: dict, summary: dict, json_path: str | os.PathLike | None
) -> None:
    write_json_atomic(out / MANIFEST, manifest, sort_keys=True)
    if json_path:
        write_json_atomic(json_path, summary)
