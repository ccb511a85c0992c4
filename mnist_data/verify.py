"""`verify`: re-read a converter's output and check it against its manifest.

TFRecord shards: existence, byte size, SHA-256 and CRC32C, every record's two CRCs, record counts.
PNG trees: every listed file exists, decodes to the declared size and holds the pixels whose
CRC-32 the listing records (listings written before that column are checked without it);
no unlisted file sits in a split's folders; counts match.
Each problem names the file (and the record, for TFRecords).
"""

from __future__ import annotations

import csv
import json
import os
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from google_crc32c import value as crc32c

from mnist_data.conversion import RUN_FILE, sha256_of
from mnist_data.errors import ConvertError
from mnist_data.sources.source import MANIFEST, manifest_problem
from mnist_data.tfrecord import count_records


@dataclass
class VerifyReport:
    """What was checked and every problem found."""

    out: str
    format: str
    files: int = 0
    records: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(out: str | os.PathLike) -> VerifyReport:
    """Check a TFRecord directory or PNG tree written by to_tfrecord / to_png."""
    out = Path(out)
    if not out.is_dir():
        raise ConvertError(f"{out}: not a directory; verify takes the OUT of to-tfrecord or to-png")
    if not (out / MANIFEST).exists():
        if (out / RUN_FILE).exists():
            raise ConvertError(
                f"{out}: an unfinished conversion (no {MANIFEST} yet); run the same command "
                "again to complete it"
            )
        raise ConvertError(
            f"{out}: no {MANIFEST}: not a directory written by to-tfrecord or to-png"
        )
    try:
        manifest = json.loads((out / MANIFEST).read_text())
    except (OSError, ValueError) as exc:
        raise ConvertError(f"{out / MANIFEST}: cannot read the manifest: {exc}") from None
    splits = manifest.get("splits") if isinstance(manifest, dict) else None
    if not isinstance(splits, dict):
        raise ConvertError(
            f"{out / MANIFEST}: not a manifest written by mnist-data (no 'splits' table)"
        )
    report = VerifyReport(str(out), manifest.get("format", "?"))
    check = {"tfrecord": _verify_tfrecords, "png": _verify_png_tree}.get(report.format)
    if check is None:
        raise ConvertError(f"{out / MANIFEST}: unknown format {report.format!r}")
    problem = manifest_problem(manifest)
    if problem:
        raise ConvertError(f"{out / MANIFEST}: not as mnist-data wrote it: {problem}")
    check(out, manifest, report)
    return report


def _verify_tfrecords(out: Path, manifest: dict, report: VerifyReport) -> None:
    gzipped = manifest.get("compression") == "gzip"
    for entry in manifest["splits"].values():
        for shard in entry["shards"]:
            path = out / shard["file"]
            report.files += 1
            if not path.is_file():
                report.problems.append(f"{shard['file']}: missing")
                continue
            size = path.stat().st_size
            if size != shard["bytes"]:
                report.problems.append(
                    f"{shard['file']}: size {size} bytes, manifest says {shard['bytes']}"
                )
            if sha256_of(path) != shard["sha256"]:
                report.problems.append(f"{shard['file']}: SHA-256 differs from the manifest")
            elif "crc32c" in shard and crc32c(path.read_bytes()) != shard["crc32c"]:
                report.problems.append(f"{shard['file']}: CRC32C differs from the manifest")
            count, problem = count_records(path, gzipped)
            if problem:
                report.problems.append(f"{path.name}: {problem}")
            report.records += count
            if count != shard["records"]:
                report.problems.append(
                    f"{shard['file']}: {count} valid records, manifest says {shard['records']}"
                )


def _unlisted_files(out: Path, split: str, rows: list[dict], listing: str) -> list[str]:
    """Files in OUT/<split>/ the listing does not name (a class-folder reader would read them)."""
    listed = {row["file"] for row in rows}
    found = (p.relative_to(out).as_posix() for p in (out / split).rglob("*") if p.is_file())
    return [f"{name}: not listed in {listing}" for name in sorted(found) if name not in listed]


def _verify_png_tree(out: Path, manifest: dict, report: VerifyReport) -> None:
    from PIL import Image

    shape = manifest.get("image", {"height": 28, "width": 28})
    size = (shape["width"], shape["height"])
    for split, entry in manifest["splits"].items():
        listing = out / f"{split}.csv"
        try:
            with open(listing, newline="") as handle:
                reader = csv.DictReader(handle)
                numbered = [
                    (reader.line_num, row) for row in reader
                ]  # blank lines are skipped, not counted
                rows = [row for _, row in numbered]
        except OSError as exc:
            report.problems.append(f"{listing.name}: cannot read: {exc.strerror}")
            continue
        if len(rows) != entry["records"]:
            report.problems.append(
                f"{listing.name}: {len(rows)} rows, manifest says {entry['records']}"
            )
        missing = [
            column
            for column in ("file", "label", "index")
            if column not in (rows[0] if rows else {})
        ]
        if rows and missing:
            report.problems.append(
                f"{listing.name}: no column {', '.join(map(repr, missing))} in its header"
            )
            continue
        report.problems += _unlisted_files(out, split, rows, listing.name)
        classes = manifest.get("classes", [])
        for line_number, row in numbered:
            report.files += 1
            try:
                label, folder, _ = (
                    int(row["label"]),
                    Path(row["file"]).parent.name,
                    int(row["index"]),
                )
                crc = int(row["pixels_crc32"], 16) if row.get("pixels_crc32") is not None else None
            except (TypeError, ValueError):
                report.problems.append(f"{listing.name}: line {line_number}: bad row {row}")
                continue
            if classes and not 0 <= label < len(classes):
                report.problems.append(
                    f"{listing.name}: line {line_number}: label {label} is not one of the "
                    f"{len(classes)} classes of the manifest"
                )
            elif classes and folder != classes[label]:
                report.problems.append(
                    f"{row['file']}: in folder {folder!r}, "
                    f"but its label {label} is {classes[label]!r}"
                )
            try:
                with Image.open(out / row["file"]) as image:
                    image.load()
                    if image.mode != "L":
                        report.problems.append(
                            f"{row['file']}: mode {image.mode}, expected 8-bit grayscale (L)"
                        )
                    if image.size != size:
                        report.problems.append(
                            f"{row['file']}: {image.size[0]}x{image.size[1]}, "
                            f"expected {size[0]}x{size[1]}"
                        )
                    elif (
                        image.mode == "L" and crc is not None and zlib.crc32(image.tobytes()) != crc
                    ):
                        report.problems.append(
                            f"{row['file']}: its pixels differ from the image the listing records"
                        )
            except (OSError, ValueError, SyntaxError) as exc:
                report.problems.append(f"{row['file']}: {exc}")
                continue
            report.records += 1
