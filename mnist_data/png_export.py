"""`to_png`: IDX splits to OUT/<split>/<class>/<index>.png, in parallel, atomic, resumable.

Workers take contiguous chunks of a split. Each PNG is written under a temporary name
and renamed, so no partial PNG ever carries a final name; when a chunk is complete its
worker drops a `.done` marker, and a resumed run redoes only the chunks without one, or
with a file gone since (rewriting the same bytes: encoding is deterministic).
OUT/<split>.csv lists every file with its label, its index in the source and the CRC-32
of its pixels.
"""

from __future__ import annotations

import contextlib
import os
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mnist_data.checks import is_whole
from mnist_data.conversion import (
    PROGRESS_DIR,
    RunSummary,
    check_summary_path,
    check_workers,
    claimed_output,
    describe_source,
    image_size,
    publish_manifest,
    requested_splits,
    worker_pool,
)
from mnist_data.errors import ConvertError
from mnist_data.fs import temp_suffix, write_bytes_atomic
from mnist_data.pngcodec import encode_gray_pngs
from mnist_data.sources.catalog import SPLITS
from mnist_data.sources.load import class_names, load_splits

CHUNK = 2000
LABELS_AS = ("digits", "names")
LISTING_HEADER = "file,label,index,pixels_crc32\n"


def pixel_crcs(images: np.ndarray) -> list[int]:
    """CRC-32 of each image's raw pixels: lets `verify` catch a valid PNG of the wrong image."""
    return [zlib.crc32(image) for image in np.ascontiguousarray(images)]


def folder_names(source: str | os.PathLike, labels_as: str, num_classes: int) -> list[str]:
    """Class folder names: the number, or the dataset's class name made safe for a path.

    Numbers are zero-padded past 10 classes ("00".."25"): Keras numbers class folders in
    sorted order, where "10" would come before "2".
    """
    if labels_as not in LABELS_AS:
        raise ConvertError(
            f"unknown labels_as {labels_as!r}: expected one of {', '.join(LABELS_AS)}"
        )
    if labels_as == "digits":
        width = len(str(num_classes - 1))
        return [f"{label:0{width}d}" for label in range(num_classes)]
    names = class_names(source)
    if names is None:
        raise ConvertError(
            f"{source}: no class names known for this source; use digit labels "
            "(labels_as='digits', --labels-as digits)"
        )
    if len(names) < num_classes:
        raise ConvertError(
            f"{source}: {len(names)} class names known for {num_classes} classes; "
            "use digit labels (labels_as='digits', --labels-as digits)"
        )
    return [name.replace("/", "-").replace(" ", "_") for name in names]


def _write_chunk(
    out: str, relative_paths: list[str], images: np.ndarray, compress_level: int, marker: str
) -> int:
    """Write one chunk's PNGs, each under a temporary name then renamed, and its marker."""
    written = 0
    suffix = temp_suffix()
    # Bare os calls on str paths rather than write_bytes_atomic: a file costs about as much
    # as encoding its PNG; durability comes from the one sync below.
    for relative, blob in zip(relative_paths, encode_gray_pngs(images, compress_level)):
        final = f"{out}/{relative}"
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
        written += len(blob)
    os.sync()  # the chunk's files reach the disk before the marker that lets a rerun skip them
    write_bytes_atomic(marker, b"")
    return written


def to_png(
    source: str | os.PathLike,
    out: str | os.PathLike,
    *,
    splits: Sequence[str] = SPLITS,
    workers: int | None = None,
    compress_level: int = 1,
    labels_as: str = "digits",
    num_classes: int | None = None,
    overwrite: bool = False,
    progress: bool = True,
    json_path: str | os.PathLike | None = None,
) -> dict:
    """Export the splits of `source` as 8-bit grayscale PNGs in class folders; returns the summary.

    `num_classes` admits labels up to num_classes - 1 for sets with more classes than the
    catalog knows of (default: the catalog's count, else 10).
    """
    if not (is_whole(compress_level, 0) and compress_level <= 9):
        raise ConvertError(f"compress_level must be 0..9, found {compress_level!r}")
    compress_level = int(compress_level)
    out = Path(out)
    splits = requested_splits(splits)
    check_summary_path(out, json_path)
    arrays = load_splits(source, splits, fallback=False, num_classes=num_classes)
    num_classes = num_classes or max(
        [10] + [int(labels.max()) + 1 for _, labels in arrays.values() if len(labels)]
    )
    folders = folder_names(source, labels_as, num_classes)
    options = {"compress_level": compress_level, "labels_as": labels_as, "splits": list(splits)}
    if (
        labels_as == "digits" and num_classes > 10
    ):  # zero-padded folders: a tree of unpadded ones is another run
        options["digit_width"] = len(folders[0])
    check_workers(workers)
    identity = {"kind": "png", "source": describe_source(source, splits), "options": options}
    manifest = {
        "format": "png",
        "version": 1,
        "source": identity["source"],
        "options": options,
        "classes": folders,
        "image": image_size(source, arrays),
        "splits": {},
    }
    with claimed_output(out, identity, overwrite), worker_pool(workers) as pool:
        summary = RunSummary("to-png", str(out))
        for split, (images, labels) in arrays.items():
            manifest["splits"][split] = _export_split(
                pool, out, split, images, labels, folders, compress_level, progress, summary
            )
        result = summary.finish()
        publish_manifest(out, manifest, result, json_path)
    return result


def _chunk_bytes(out: Path, relative_paths: list[str]) -> int | None:
    """The bytes of a finished chunk's files, or None if one has gone (then the chunk is redone)."""
    try:
        return sum((out / relative).stat().st_size for relative in relative_paths)
    except FileNotFoundError:
        return None


def _export_split(
    pool, out, split, images, labels, folders, compress_level, progress, summary
) -> dict:
    from tqdm import tqdm

    width = max(5, len(str(len(labels) - 1)))
    paths = [
        f"{split}/{folders[label]}/{index:0{width}d}.png"
        for index, label in enumerate(labels.tolist())
    ]
    for folder in set(folders[label] for label in labels.tolist()):
        (out / split / folder).mkdir(parents=True, exist_ok=True)
    (out / PROGRESS_DIR).mkdir(exist_ok=True)
    futures = []
    with tqdm(
        total=len(labels), desc=f"to-png {split}", unit="img", disable=not progress, leave=False
    ) as bar:
        for start in range(0, len(labels), CHUNK):
            stop = min(start + CHUNK, len(labels))
            marker = out / PROGRESS_DIR / f"{split}-{start:06d}.done"
            done_bytes = _chunk_bytes(out, paths[start:stop]) if marker.exists() else None
            if done_bytes is not None:  # finished by an earlier run, and all its files still there
                summary.resumed_files += stop - start
                summary.resumed_examples += stop - start
                summary.bytes += done_bytes
                bar.update(stop - start)
                continue
            futures.append(
                (
                    stop - start,
                    pool.submit(
                        _write_chunk,
                        str(out),
                        paths[start:stop],
                        images[start:stop],
                        compress_level,
                        str(marker),
                    ),
                )
            )
        # The listing is built while the workers write (the CRCs take ~0.5 us an image).
        rows = "".join(
            f"{path},{label},{index},{crc:08x}\n"
            for index, (path, label, crc) in enumerate(
                zip(paths, labels.tolist(), pixel_crcs(images))
            )
        )
        for count, future in futures:
            summary.bytes += future.result()
            bar.update(count)
    write_bytes_atomic(out / f"{split}.csv", (LISTING_HEADER + rows).encode())
    summary.examples += len(labels)
    summary.files += len(labels)
    return {"records": len(labels)}
