"""`to_png`: IDX splits to OUT/<split>/<class>/<index>.png. Workers write chunks, each PNG
atomically, then a `.done` marker: a resumed run redoes only chunks without one or with a file
gone. OUT/<split>.csv lists every file with its label, source index and pixels' CRC-32."""

from __future__ import annotations

import os
import zlib
from collections.abc import Sequence
from functools import partial
from pathlib import Path

import numpy as np

from mnist_data.checks import check_whole
from mnist_data.conversion.run import PROGRESS_DIR, convert, load_source, wait_all
from mnist_data.errors import ConvertError
from mnist_data.formats.png import encode_gray_pngs
from mnist_data.fs import write_bytes_atomic, write_many_atomic
from mnist_data.sources.catalog import SPLITS
from mnist_data.sources.load import class_names

CHUNK = 2000
LABELS_AS = ("digits", "names")
LISTING_HEADER = "file,label,index,pixels_crc32\n"


def check_choice(name: str, value: object, known: tuple[str, ...]) -> None:
    if value not in known:
        raise ConvertError(f"unknown {name} {value!r}: expected one of {', '.join(known)}")


def check_compress_level(compress_level: object) -> int:
    check_whole("compress_level", compress_level, 0, 9, ConvertError)
    return int(compress_level)


def folder_names(source: str | os.PathLike, labels_as: str, num_classes: int) -> list[str]:
    """Class folder names: the number (zero-padded past 10 classes, as Keras sorts folders by
    name), or the dataset's class name made safe for a path (after the number, if two names
    differ only in case)."""
    check_choice("labels_as", labels_as, LABELS_AS)
    if labels_as == "digits":
        return [f"{label:0{len(str(num_classes - 1))}d}" for label in range(num_classes)]
    names = class_names(source) or []
    if len(names) < num_classes:
        raise ConvertError(
            f"{source}: {len(names) or 'no'} class names known for {num_classes} classes; "
            "use digit labels (labels_as='digits', --labels-as digits)"
        )
    folders = [name.replace("/", "-").replace(" ", "_") for name in names]
    if len({folder.lower() for folder in folders}) < len(folders):  # EMNIST's "A" and "a"
        width = len(str(num_classes - 1))  # one folder each on a case-insensitive disk too
        return [f"{label:0{width}d}-{folder}" for label, folder in enumerate(folders)]
    return folders


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
) -> dict:
    """Export the splits of `source` as 8-bit grayscale PNGs in class folders; returns the summary.
    `num_classes`: labels are 0..num_classes - 1 (default: as many as the source has classes)."""
    compress_level = check_compress_level(compress_level)
    source, arrays, classes = load_source(source, splits, workers, num_classes)
    folders = folder_names(source, labels_as, len(classes))
    options = {"compress_level": compress_level, "labels_as": labels_as, "splits": list(arrays)}
    if labels_as == "digits" and len(classes) > 10:  # a tree of unpadded folders is another run
        options["digit_width"] = len(folders[0])
    writer = partial(_export_split, Path(out), folders, compress_level, progress)
    manifest = {"classes": classes, "folders": folders}
    return convert("png", source, out, arrays, options, manifest, writer, workers, overwrite)


def _export_split(out, folders, compress_level, progress, pool, split, images, labels, counts):
    width = max(5, len(str(len(labels) - 1)))
    paths = [
        f"{split}/{folders[label]}/{index:0{width}d}.png"
        for index, label in enumerate(labels.tolist())
    ]
    for folder in {folders[label] for label in labels.tolist()}:
        (out / split / folder).mkdir(parents=True, exist_ok=True)
    (out / PROGRESS_DIR).mkdir(exist_ok=True)
    jobs, done = [], 0
    for start in range(0, len(labels), CHUNK):
        chunk = slice(start, min(start + CHUNK, len(labels)))
        marker = out / PROGRESS_DIR / f"{split}-{start:06d}.done"
        try:  # finished by an earlier run, and all its files still there?
            kept = marker.exists() and sum((out / p).stat().st_size for p in paths[chunk])
        except FileNotFoundError:
            kept = False
        if kept is not False:
            counts.update(resumed_files=len(paths[chunk]), bytes=kept)
            done += len(paths[chunk])
        else:
            job = pool.submit(
                _write_chunk, out, paths[chunk], images[chunk], compress_level, marker
            )
            jobs.append((len(paths[chunk]), job))
    # The listing is built while the workers write (the CRCs take ~0.5 us an image).
    crcs = [zlib.crc32(image) for image in np.ascontiguousarray(images)]
    rows = (
        f"{p},{label},{i},{crc:08x}\n"
        for i, (p, label, crc) in enumerate(zip(paths, labels.tolist(), crcs))
    )
    listing = LISTING_HEADER + "".join(rows)
    counts["bytes"] += sum(wait_all(jobs, len(labels), done, f"to-png {split}", progress))
    write_bytes_atomic(out / f"{split}.csv", listing.encode())
    counts.update(examples=len(labels), files=len(labels), resumed_examples=done)
    return {"records": len(labels)}


def _write_chunk(out: Path, paths: list[str], images: np.ndarray, level: int, marker: Path) -> int:
    """Write one chunk's PNGs, each atomically, then its marker (one sync, not one a file)."""
    blobs = encode_gray_pngs(images, level)
    write_many_atomic((f"{out}/{relative}", blob) for relative, blob in zip(paths, blobs))
    os.sync()  # the chunk's files reach the disk before the marker that lets a rerun skip them
    write_bytes_atomic(marker, b"")
    return sum(map(len, blobs))
