"""`verify`: re-read a converter's output (every shard's checksums and record CRCs, every
listed PNG's size and pixels' CRC-32, no unlisted file) and check it against its manifest."""

from __future__ import annotations

import csv
import os
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from google_crc32c import value as crc32c
from PIL import Image

from mnist_data.conversion.run import RUN_FILE
from mnist_data.errors import ConvertError, DatasetError
from mnist_data.formats.tfrecord import count_records
from mnist_data.fs import file_digest
from mnist_data.sources.source import MANIFEST, Source, read_manifest


@dataclass
class VerifyReport:
    out: str
    format: str
    files: int = 0
    records: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def read_listing(directory: str | os.PathLike, split: str) -> list[tuple[int, dict]]:
    """The rows of a PNG tree's <split>.csv with their line numbers; OSError if unreadable."""
    with open(Path(directory) / f"{split}.csv", newline="") as handle:
        reader = csv.DictReader(handle)
        return [(reader.line_num, row) for row in reader]


def png_listing(source: Source, split: str) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Paths, labels and source indices from OUT/<split>.csv, checked against the manifest."""
    listing, numbered = source.path / f"{split}.csv", read_listing(source.path, split)
    expected = source.manifest["splits"][split]["records"]
    classes = len(source.manifest.get("classes", []))
    if len(numbered) != expected:
        raise DatasetError(f"{listing}: {len(numbered)} rows, manifest says {expected}")
    files, labels, index = [], np.zeros(expected, np.int64), np.zeros(expected, np.int64)
    for i, (line, row) in enumerate(numbered):
        try:
            files.append(str(source.path / row["file"]))
            labels[i], index[i] = int(row["label"]), int(row["index"])
        except (KeyError, TypeError, ValueError, OverflowError):
            raise DatasetError(
                f"{listing}: line {line}: not a row of file, label and index: {row}"
            ) from None
        if not 0 <= labels[i] < classes:
            raise DatasetError(
                f"{listing}: line {line}: label {labels[i]} is not one of the "
                f"{classes} classes of the manifest"
            )
    if not np.array_equal(np.sort(index), np.arange(expected)):
        raise DatasetError(
            f"{listing}: its indices are not 0..{expected - 1}, each once (a row copied?)"
        )
    return files, labels, index


def verify(out: str | os.PathLike) -> VerifyReport:
    """Check a TFRecord directory or PNG tree written by to_tfrecord / to_png."""
    out = Path(out)
    if not (out / MANIFEST).exists():
        if (out / RUN_FILE).exists():
            raise ConvertError(
                f"{out}: an unfinished conversion (no {MANIFEST} yet); run the same command "
                "again to complete it"
            )
        raise ConvertError(f"{out}: no {MANIFEST}: not the OUT of to-tfrecord or to-png")
    try:
        manifest = read_manifest(out)
    except DatasetError as exc:
        raise ConvertError(str(exc)) from None
    report = VerifyReport(str(out), manifest["format"])
    (_verify_tfrecords if report.format == "tfrecord" else _verify_png_tree)(out, manifest, report)
    return report


def _verify_tfrecords(out: Path, manifest: dict, report: VerifyReport) -> None:
    for entry in manifest["splits"].values():
        for shard in entry["shards"]:
            name, path = shard["file"], out / shard["file"]
            report.files += 1
            if not path.is_file():
                report.problems.append(f"{name}: missing")
                continue
            problems, size = [], path.stat().st_size
            if size != shard["bytes"]:
                problems.append(f"size {size} bytes, manifest says {shard['bytes']}")
            if file_digest(path) != shard["sha256"]:
                problems.append("SHA-256 differs from the manifest")
            elif "crc32c" in shard and crc32c(path.read_bytes()) != shard["crc32c"]:
                problems.append("CRC32C differs from the manifest")
            count, problem = count_records(path, manifest.get("compression") == "gzip")
            problems += [problem] if problem else []
            if count != shard["records"]:
                problems.append(f"{count} valid records, manifest says {shard['records']}")
            report.records += count
            report.problems += [f"{name}: {problem}" for problem in problems]


def _verify_png_tree(out: Path, manifest: dict, report: VerifyReport) -> None:
    image = manifest.get("image", {"height": 28, "width": 28})  # older manifests lack it
    size = (image["width"], image["height"])
    folders = manifest.get("folders", manifest.get("classes", []))  # version 1: in "classes"
    for split, entry in manifest["splits"].items():
        listing = f"{split}.csv"
        try:
            numbered = read_listing(out, split)
        except OSError as exc:
            report.problems.append(f"{listing}: cannot read: {exc.strerror}")
            continue
        if len(numbered) != entry["records"]:
            found = f"{len(numbered)} rows, manifest says {entry['records']}"
            report.problems.append(f"{listing}: {found}")
        listed = {row.get("file") for _, row in numbered}
        files = (p.relative_to(out).as_posix() for p in (out / split).rglob("*") if p.is_file())
        report.problems += [
            f"{f}: not listed in {listing}" for f in sorted(files) if f not in listed
        ]
        for line, row in numbered:
            where = f"{listing}: line {line}"
            report.problems += _row_problems(out, where, row, folders, size)
        report.files += len(numbered)
        report.records += len(numbered)


def _row_problems(out: Path, where: str, row: dict, folders: list, size: tuple) -> list[str]:
    """What is wrong with one listed PNG: its row, its folder, or the image in the file."""
    try:
        file, label, _ = row["file"], int(row["label"]), int(row["index"])
        crc = None if row.get("pixels_crc32") is None else int(row["pixels_crc32"], 16)
    except (KeyError, TypeError, ValueError):
        return [f"{where}: bad row {row}"]
    problems, folder = [], Path(file).parent.name
    if folders and not 0 <= label < len(folders):
        problems.append(f"{where}: label {label} is not one of the {len(folders)} classes")
    elif folders and folder != folders[label]:
        problems.append(
            f"{file}: in folder {folder!r}, but its label {label} is {folders[label]!r}"
        )
    try:
        with Image.open(out / file) as image:
            image.load()
            mode, found, pixels = image.mode, image.size, image.tobytes()
    except (OSError, ValueError, SyntaxError) as exc:
        return [*problems, f"{file}: {exc}"]
    if mode != "L":
        problems.append(f"{file}: mode {mode}, expected 8-bit grayscale (L)")
    elif found != size:
        problems.append(f"{file}: {found[0]}x{found[1]}, expected {size[0]}x{size[1]}")
    elif crc is not None and zlib.crc32(pixels) != crc:
        problems.append(f"{file}: its pixels differ from the image the listing records")
    return problems
