"""OUT/manifest.json, which a converter writes last: reading it, and checking that it has the
shape every reader relies on (a hand-edited one gets an error naming what is off)."""

from __future__ import annotations

import json
from pathlib import Path

from mnist_data.errors import DatasetError

MANIFEST = "manifest.json"
FORMATS = ("tfrecord", "png")


def read_manifest(directory: Path) -> dict:
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
        isinstance(image, dict)
        and all(_whole(image.get(k)) and image[k] > 0 for k in ("height", "width"))
    ):
        return "'image' needs whole 'height' and 'width'"
    for split, entry in manifest["splits"].items():
        if not isinstance(entry, dict) or not _whole(entry.get("records")):
            return f"split {split!r} needs a whole 'records' count"
        if manifest["format"] != "tfrecord":
            continue
        shards = entry.get("shards")
        if not isinstance(shards, list):
            return f"split {split!r} needs a 'shards' list"
        for shard in shards:
            if not isinstance(shard, dict):
                return f"split {split!r}: a shard entry is not a table: {shard!r}"
            for key, kind in (("file", str), ("bytes", int), ("sha256", str), ("records", int)):
                if not isinstance(shard.get(key), kind):
                    return (
                        f"split {split!r}: shard {shard.get('file', '?')} "
                        f"has no {kind.__name__} {key!r}"
                    )
        if sum(shard["records"] for shard in shards) != entry["records"]:
            return f"split {split!r}: its shards' records do not add up to its {entry['records']}"
    return None


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
