"""A dataset's files in a directory: under their published names (gzipped or not, dashed or
dotted), or as members of its zip archive, read where they lie and never extracted."""

from __future__ import annotations

import hashlib
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import NamedTuple

from mnist_data.errors import DatasetError
from mnist_data.fs import file_digest


@dataclass(frozen=True)
class Member:
    """A file inside a zip archive."""

    archive: Path
    member: str

    @property
    def name(self) -> str:
        return PurePosixPath(self.member).name

    @property
    def parent(self) -> Path:
        return self.archive

    def __str__(self) -> str:
        return f"{self.archive}:{self.member}"


DataFile = Path | Member


class SplitFiles(NamedTuple):
    images: DataFile
    labels: DataFile


def find(directory: Path, published: str, archive: str | None = None) -> DataFile | None:
    """`published` (a file name, or a member path of `archive`) as found in `directory`."""
    name = PurePosixPath(published).name
    stem = name.removesuffix(".gz").removesuffix(".xz")
    dotted, packed = stem.replace("-idx", ".idx"), name[len(stem) :]
    for candidate in dict.fromkeys((name, stem, dotted + packed, dotted)):
        if (directory / candidate).is_file():
            return directory / candidate
    if archive and (directory / archive).is_file():
        return Member(directory / archive, published)
    return None


def open_archive(path: Path) -> zipfile.ZipFile:
    """The zip at `path`; refused if a member's name could climb out of a folder."""
    try:
        archive = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise DatasetError(f"{path}: not a readable zip archive ({exc})") from None
    for name in archive.namelist():
        if name.startswith("/") or ".." in PurePosixPath(name).parts:
            archive.close()
            raise DatasetError(f"{path}: member {name!r} climbs out of its folder: refusing it")
    return archive


def read_bytes(file: DataFile) -> bytes:
    """The bytes of a file or archive member; DatasetError naming it if missing or damaged."""
    if isinstance(file, Path):
        return file.read_bytes()
    with open_archive(file.archive) as archive:
        try:
            return archive.read(file.member)
        except KeyError:
            raise DatasetError(f"{file.archive}: no member {file.member}") from None
        except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
            raise DatasetError(f"{file}: damaged in its archive ({exc})") from None


def size(file: DataFile) -> int:
    if isinstance(file, Path):
        return file.stat().st_size
    with open_archive(file.archive) as archive:
        return archive.getinfo(file.member).file_size


def digest(file: DataFile, algorithm: str = "sha256") -> str:
    if isinstance(file, Path):
        return file_digest(file, algorithm)
    return hashlib.new(algorithm, read_bytes(file)).hexdigest()


def read_mapping(file: DataFile) -> tuple[tuple[str, ...], tuple[int, ...]]:
    """Class names and the label each stands for, from an EMNIST mapping file: lines of a label
    and the ASCII codes of its characters ("1 65 97": label 1 is "Aa")."""
    names, labels = [], []
    for number, line in enumerate(read_bytes(file).decode("ascii", "replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            label, *codes = map(int, line.split())
            name = "".join(map(chr, codes))
        except (ValueError, OverflowError):
            codes = []
        if not codes or not 0 <= label < 256 or label in labels:
            raise DatasetError(f"{file}: line {number} is not a label and ASCII codes: {line!r}")
        names.append(name)
        labels.append(label)
    if not labels:
        raise DatasetError(f"{file}: empty, expected a line per class")
    return tuple(names), tuple(labels)
