"""Bookkeeping shared by the converters. A run's identity (kind, source files' SHA-256, options)
is written to OUT/.mnist-data-run.json first; a later run into OUT resumes only if it is the
same run, and otherwise stops with a clear error unless `overwrite` is set."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from tqdm import tqdm

from mnist_data.checks import check_whole
from mnist_data.errors import ConvertError, DatasetError
from mnist_data.fs import is_temp_name, locked, remove_stale_temps, write_json_atomic
from mnist_data.sources.catalog import ALL_SPLITS, CATALOG, STANDARD_SPLITS
from mnist_data.sources.files import digest
from mnist_data.sources.load import class_count, class_list, load_splits
from mnist_data.sources.source import MANIFEST, Source, read_manifest, resolve_source, split_files

RUN_FILE = ".mnist-data-run.json"
PROGRESS_DIR = ".progress"  # to_png's markers: one empty file per finished chunk
SHARD_NAME = re.compile(rf"^({'|'.join(ALL_SPLITS)})-\d{{5}}-of-\d{{5}}\.tfrecord(\.gz)?$")
COUNTS = ("examples", "files", "bytes", "resumed_files", "resumed_examples")


def load_source(
    source: str | os.PathLike, splits: str | Iterable[str], workers: int | None, num_classes
) -> tuple[Source, dict, list[str]]:
    """The resolved source, the requested splits' arrays (once each, in the catalog's order) and
    the names of its classes (`num_classes` of them, else as many as the source has)."""
    wanted = [splits] if isinstance(splits, str) else list(splits)
    if not isinstance(source, Source) and os.fspath(source) not in CATALOG:
        source = resolve_source(source)  # a directory: its layout tells its splits
    dataset = source.dataset if isinstance(source, Source) else CATALOG[os.fspath(source)]
    known = dataset.splits if dataset else STANDARD_SPLITS
    unknown = [split for split in wanted if split not in known]
    if unknown:
        raise ConvertError(f"unknown split {unknown[0]!r}: expected {' and/or '.join(known)}")
    if workers is not None:
        check_whole("workers", workers, 1, error=ConvertError)
    if num_classes is not None:
        check_whole("num_classes", num_classes, 1, error=ConvertError)
    ordered = [split for split in known if split in wanted]
    source = resolve_source(source, splits=ordered, fallback=False)
    arrays = load_splits(source, ordered, num_classes=num_classes)
    count = num_classes or class_count(source, [labels for _, labels in arrays.values()])
    return source, arrays, class_list(source, count)


def describe_source(source: str | os.PathLike | Source, splits: Iterable[str]) -> dict:
    """Name and per-file SHA-256 of the IDX files a conversion reads."""
    splits = list(splits)
    source = resolve_source(source, splits=splits, fallback=False)
    files = [path for split in splits for path in split_files(source, split)]
    return {"name": os.fspath(source), "files": {p.name: digest(p) for p in files}}


def convert(
    kind: str,
    source: Source,
    out: str | os.PathLike,
    arrays: dict,
    options: dict,
    manifest: dict,
    convert_split: Callable[..., dict],
    workers: int | None,
    overwrite: bool,
) -> dict:
    """Claim OUT, convert each split with `convert_split(pool, split, images, labels, counts)`
    (which returns its manifest entry), write the manifest last (it marks OUT complete)."""
    out = Path(out)
    sizes = {split: images.shape[1:3] for split, (images, _) in arrays.items()}
    if len(set(sizes.values())) > 1:
        found = ", ".join(f"{split} {h}x{w}" for split, (h, w) in sizes.items())
        raise ConvertError(
            f"{source}: the splits differ in image size ({found}); convert them separately"
        )
    ((height, width),) = set(sizes.values())
    identity = {"kind": kind, "source": describe_source(source, arrays), "options": options}
    manifest = {**manifest, "format": kind, "version": 2, "source": identity["source"]}
    image = {"height": int(height), "width": int(width), "channels": 1}
    manifest.update(options=options, image=image, splits={})
    started, counts = time.perf_counter(), Counter({key: 0 for key in COUNTS})
    # Threads: the work runs largely outside the GIL, and processes must be spawned once TF is
    # loaded. On an error, chunks not started are cancelled and running ones finish first.
    pool = ThreadPoolExecutor(workers or os.cpu_count(), "mnist-data")
    with _claimed(out, identity, overwrite), pool:
        try:
            for split, (images, labels) in arrays.items():
                manifest["splits"][split] = convert_split(pool, split, images, labels, counts)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        write_json_atomic(out / MANIFEST, manifest, sort_keys=True)
    seconds = time.perf_counter() - started
    converted = counts["examples"] - counts["resumed_examples"]  # not those an earlier run did
    return {
        "kind": f"to-{kind}",
        "out": str(out),
        **counts,
        "seconds": round(seconds, 3),
        "examples_per_second": round(converted / seconds if seconds else 0.0, 1),
    }


def line(summary: dict) -> str:
    resumed = f" ({summary['resumed_files']} already done)" if summary["resumed_files"] else ""
    return (
        f"{summary['kind']}: {summary['files']} files{resumed}, {summary['bytes'] / 1e6:.1f} MB, "
        f"{summary['examples']} examples in {summary['seconds']:.2f} s "
        f"({summary['examples_per_second']:,.0f} examples/s) -> {summary['out']}"
    )


def wait_all(jobs: list[tuple[int, Future]], total: int, done: int, desc: str, progress: bool):
    """The results of (examples, future) pairs, behind a bar drawn only on a terminal."""
    shown = progress and sys.stderr.isatty()
    with tqdm(total=total, initial=done, desc=desc, disable=not shown, leave=False) as bar:
        results = []
        for count, job in jobs:
            results.append(job.result())
            bar.update(count)
    return results


@contextlib.contextmanager
def _claimed(out: Path, identity: dict, overwrite: bool) -> Iterator[None]:
    """Hold OUT for this run (a second conversion into it is refused meanwhile) and make it
    ours: new, resumed from the same run, or cleared with `overwrite`."""
    busy = ConvertError(
        f"{out}: another conversion is writing here; wait for it to end, or choose another OUT"
    )
    marker = out / RUN_FILE
    with contextlib.ExitStack() as held:
        try:
            out.mkdir(parents=True, exist_ok=True)
            held.enter_context(locked(out, busy))
            if not (marker.exists() or _has_our_manifest(out)) and any(
                not is_temp_name(p) for p in out.iterdir()
            ):
                raise ConvertError(  # never clear what we did not write
                    f"{out} is not empty and holds no mnist-data output; "
                    "choose a new or empty directory"
                )
            if overwrite:
                _clear(out)
            elif marker.exists():
                try:
                    previous = json.loads(marker.read_text())
                except ValueError as exc:
                    raise ConvertError(
                        f"{marker}: corrupt run file ({exc}); use --overwrite to start over"
                    ) from None
                if previous != identity:
                    raise ConvertError(
                        f"{out} holds output of a different run "
                        f"({_difference(previous, identity)}); use --overwrite to replace it"
                    )
            remove_stale_temps(out, recursive=True)  # a killed run's, in OUT and class folders
            write_json_atomic(marker, identity, sort_keys=True)
        except FileExistsError:
            raise ConvertError(f"{out}: exists and is not a directory") from None
        except OSError as exc:
            raise ConvertError(f"{out}: cannot write output: {exc.strerror or exc}") from None
        yield


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
    """What in OUT no converter writes (a split folder's files other than PNGs included)."""
    ours = {RUN_FILE, MANIFEST, PROGRESS_DIR, *(f"{split}.csv" for split in ALL_SPLITS)}
    foreign = []
    for entry in sorted(out.iterdir()):
        if entry.name in ours or is_temp_name(entry) or SHARD_NAME.match(entry.name):
            continue
        if entry.name in ALL_SPLITS and entry.is_dir() and not entry.is_symlink():
            foreign += [
                p.relative_to(out).as_posix()
                for p in entry.rglob("*")
                if not (p.is_dir() or p.suffix == ".png" or is_temp_name(p))
            ]
        else:
            foreign.append(entry.name)
    return foreign


def _clear(out: Path) -> None:
    """Delete the last run's output (refusing if OUT holds more): manifest first, run file kept."""
    foreign = _foreign_entries(out)
    if foreign:
        more = f" and {len(foreign) - 3} more" if len(foreign) > 3 else ""
        raise ConvertError(
            f"{out}: --overwrite clears only mnist-data output, and this directory also "
            f"holds {', '.join(foreign[:3])}{more}; move them away or choose another OUT"
        )
    for entry in sorted(out.iterdir(), key=lambda e: e.name != MANIFEST):
        if entry.name == RUN_FILE:
            continue
        shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()


def _has_our_manifest(out: Path) -> bool:
    """A finished output copied without its run file is still ours to overwrite."""
    try:
        return bool(read_manifest(out))
    except DatasetError:
        return False
