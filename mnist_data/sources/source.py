"""`Source`: what a dataset name or directory stands for, resolved once at the boundary: a
catalog dataset's local (or downloaded) files, IDX files, or a converter's output (manifest)."""

from __future__ import annotations

import json
import os
import sys
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from mnist_data.checks import is_whole
from mnist_data.errors import DatasetError, FetchError
from mnist_data.sources.catalog import (
    CATALOG,
    SPLITS,
    STANDARD_SPLITS,
    Dataset,
    check_split,
    get_dataset,
    search_dirs,
)
from mnist_data.sources.fetch import fetch
from mnist_data.sources.files import SplitFiles, find, read_mapping

MANIFEST = "manifest.json"
FORMATS = ("tfrecord", "png")
FALLBACK_DATASET = "mnist-sample"


@dataclass(frozen=True)
class Source:
    """A resolved data source: IDX files in `path` (laid out as `dataset`'s, when it is one of
    the catalog's), or a converter's output ("tfrecord", "png")."""

    kind: str
    path: Path
    dataset: Dataset | None = None
    manifest: dict | None = None
    classes: tuple[str, ...] | None = None
    fallback: bool = False  # the embedded sample standing in for an unavailable MNIST
    name: str | None = None  # the catalog name it was resolved from
    label_values: tuple[int, ...] | None = None  # the stored label of each class (EMNIST)
    data_dir: str | None = None  # where the name was looked for first, when given

    def __fspath__(self) -> str:
        """The catalog name, else the directory: what resolves to this source again (with
        `data_dir`)."""
        return self.name or str(self.path)

    __str__ = __fspath__


def resolve_source(
    spec: str | os.PathLike | Source,
    data_dir: str | os.PathLike | None = None,
    *,
    splits: Iterable[str] = SPLITS,
    download: bool = True,
    fallback: bool = True,
    mirrors: Sequence[str] | None = None,
) -> Source:
    """The Source a catalog name or directory stands for, downloading missing splits; MNIST that
    cannot be had becomes the sample unless not `fallback`. A Source is returned as it is."""
    if isinstance(spec, Source):
        return spec
    name = os.fspath(spec)
    if name not in CATALOG:
        return _directory_source(name)
    dataset = CATALOG[name]
    splits = [check_split(split, dataset) for split in splits]
    dirs = search_dirs(dataset, data_dir)
    found = next((d for d in dirs if all(files_in(d, s, dataset) for s in splits)), None)
    failure = None
    if found is None and download:
        try:
            found = fetch(name, data_dir, splits=splits, mirrors=mirrors)
        except (FetchError, OSError) as exc:  # OSError: the files cannot be stored here
            failure = exc
    if found is not None:
        where = data_dir and str(Path(data_dir).resolve())
        return idx_source(found, dataset, name=name, data_dir=where)
    missing = [split for split in splits if not any(files_in(d, split, dataset) for d in dirs)]
    if name == "mnist" and fallback:
        why = f"could not be downloaded ({failure})" if failure else "downloading is off"
        were = "split is" if len(missing) == 1 else "splits are"
        warnings.warn(
            f"MNIST's {' and '.join(missing)} {were} not available locally and {why}: using the "
            "embedded 2,000-digit sample (mnist-sample) instead, for every split loaded with it",
            stacklevel=_first_outside_package(),
        )
        sample = CATALOG[FALLBACK_DATASET]
        return idx_source(sample.embedded_dir, sample, name=sample.name, fallback=True)
    hint = f": {failure}" if failure else f"; run `mnist-data fetch --dataset {name}`"
    raise DatasetError(f"dataset {name!r} ({', '.join(missing)}) was not found locally{hint}")


def idx_source(directory: Path, dataset: Dataset | None, **more: object) -> Source:
    """IDX files laid out as `dataset`'s, with its class names (from its mapping file, if any)."""
    if dataset is None:
        return Source("idx", directory, **more)
    classes, values = dataset.classes, None
    if dataset.mapping:
        mapping = find(directory, dataset.mapping, dataset.archive)
        if mapping is None:
            raise DatasetError(f"{directory}: no {dataset.mapping.rsplit('/', 1)[-1]} here")
        classes, values = read_mapping(mapping)
    return Source("idx", directory, dataset, classes=classes, label_values=values, **more)


def _directory_source(name: str) -> Source:
    """IDX files (the standard names, or those of one catalog dataset), or a converter's output
    (told by its manifest)."""
    path = Path(name)
    if not path.is_dir():
        raise DatasetError(
            f"{name!r} is neither a known dataset ({', '.join(CATALOG)}) nor a directory"
        )
    if (path / MANIFEST).is_file():
        manifest = read_manifest(path)
        origin = manifest.get("source")
        dataset = CATALOG.get(str(origin.get("name"))) if isinstance(origin, dict) else None
        # Version 1 named no classes (a PNG tree's "classes" were its folders): the catalog's.
        recorded = manifest.get("version") != 1 and manifest.get("classes")
        names = recorded or (dataset and dataset.classes)
        return Source(manifest["format"], path, None, manifest, tuple(names) if names else None)
    if any(files_in(path, split) for split in SPLITS):
        return Source("idx", path)
    held = [d for d in CATALOG.values() if any(files_in(path, s, d) for s in d.splits)]
    if len(held) > 1:  # EMNIST's zip holds six
        names = ", ".join(d.name for d in held)
        raise DatasetError(
            f"{path} holds the files of several datasets ({names}): name one and give this "
            f"folder as its data dir (`--data-dir {path}`; Python: "
            f"resolve_source({held[0].name!r}, {str(path)!r}))"
        )
    return idx_source(path, held[0] if held else None)


def _first_outside_package() -> int:
    """The warnings stacklevel of the first frame outside this package: the user's line."""
    package, frame, level = str(Path(__file__).parents[1]) + os.sep, sys._getframe(1), 1
    while frame is not None and frame.f_code.co_filename.startswith(package):
        frame, level = frame.f_back, level + 1
    return level


def split_files(source: Source, split: str) -> SplitFiles:
    """The IDX files of one split; the one error for a converter's output where IDX is read."""
    check_split(split, source.dataset)
    if source.kind != "idx":
        raise DatasetError(
            f"{source.path} holds converted output ({source.kind}; see its {MANIFEST}), not IDX "
            f"files: `mnist-data verify {source.path}` checks it, make_dataset reads it"
        )
    found = files_in(source.path, split, source.dataset)
    if found is None:
        names = (source.dataset.splits if source.dataset else STANDARD_SPLITS)[split]
        wanted = " and ".join(name.rsplit("/", 1)[-1] for name in names[:2])
        raise DatasetError(f"{source.path}: no {split} split here: expected {wanted}")
    return found


def files_in(directory: Path, split: str, dataset: Dataset | None = None) -> SplitFiles | None:
    """The split's files in `directory` (as `dataset` lays them out), or None."""
    names = (dataset.splits if dataset else STANDARD_SPLITS).get(split)
    if names is None:
        return None
    archive = dataset.archive if dataset else None
    found = [find(directory, name, archive) for name in names[:2]]
    return None if None in found else SplitFiles(*found)


def locate(name: str, split: str, data_dir: str | os.PathLike | None = None) -> SplitFiles | None:
    """A catalog dataset's files of one split, from the first directory holding them, or None."""
    dataset = get_dataset(name)
    found = (files_in(directory, split, dataset) for directory in search_dirs(dataset, data_dir))
    return next(filter(None, found), None)


def read_manifest(directory: str | os.PathLike) -> dict:
    """The manifest of a converter's OUT; DatasetError naming it if unreadable or malformed."""
    path = Path(directory) / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{path}: cannot read the manifest: {exc}") from None
    problem = manifest_problem(manifest)
    if problem:
        raise DatasetError(f"{path}: not as mnist-data wrote it: {problem}")
    return manifest


def manifest_problem(manifest: object) -> str | None:
    """What keeps the readers from trusting a manifest, if anything."""
    if not isinstance(manifest, dict) or not isinstance(manifest.get("splits"), dict):
        return "no 'splits' table"
    if manifest.get("format") not in FORMATS:
        return f"'format' is {manifest.get('format')!r}, not one of {', '.join(FORMATS)}"
    image = manifest.get("image", {"height": 28, "width": 28})
    if not (
        isinstance(image, dict) and all(is_whole(image.get(k), 1) for k in ("height", "width"))
    ):
        return "'image' needs whole 'height' and 'width'"
    classes = manifest.get("classes", [])
    if not (isinstance(classes, list) and all(isinstance(name, str) for name in classes)):
        return "'classes' needs a list of class names"
    for split, entry in manifest["splits"].items():
        if not isinstance(entry, dict) or not is_whole(entry.get("records"), 0):
            return f"split {split!r} needs a whole 'records' count"
        if manifest["format"] == "png":
            continue
        shards = entry.get("shards")
        if not isinstance(shards, list):
            return f"split {split!r} needs a 'shards' list"
        for shard in shards:
            if not isinstance(shard, dict):
                return f"split {split!r}: a shard entry is not a table: {shard!r}"
            for key, kind in (("file", str), ("bytes", int), ("sha256", str), ("records", int)):
                if not isinstance(shard.get(key), kind):
                    name = shard.get("file", "?")
                    return f"split {split!r}: shard {name} has no {kind.__name__} {key!r}"
        if sum(shard["records"] for shard in shards) != entry["records"]:
            return f"split {split!r}: its shards' records do not add up to its {entry['records']}"
    return None
