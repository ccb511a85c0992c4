"""`contact_sheet`: random examples of every class of any source in one PNG, a row per class and
a block per split, to see at a glance that a conversion holds the right images, the right way up.
IDX data and PNG trees are read without TensorFlow; TFRecords through `read_arrays`."""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

import mnist_data
from mnist_data.checks import check_whole
from mnist_data.conversion.verify import png_listing
from mnist_data.errors import DatasetError
from mnist_data.fs import write_bytes_atomic
from mnist_data.sources.catalog import ALL_SPLITS, SPLITS
from mnist_data.sources.load import class_count, class_list, describe_output
from mnist_data.sources.source import Source, files_in

SCALE = 2  # each pixel drawn as SCALE x SCALE: nearest neighbour, no smoothing
GAP = 2  # between tiles, in the background colour
SPLIT_GAP = 24  # between the train and test blocks
MARGIN = 10
HEADER = 84  # title, counts and the splits' names above the tiles
LABEL_PAD = 8  # between a class name and its row
BACKGROUND, INK = 255, 0  # the sheet's paper and text; the tiles keep the data's own pixels
FONT_SIZE = 15


def check_per_class(per_class: int) -> None:
    """The one check of `per_class`, from Python or from the command line."""
    check_whole("per_class", per_class, 1, error=DatasetError)


def contact_sheet(
    source: str | os.PathLike | Source,
    out: str | os.PathLike,
    *,
    per_class: int = 10,
    seed: int = 0,
    splits: Sequence[str] | None = None,
) -> Path:
    """Draw `per_class` random examples (fewer if a class has fewer) of each class, per split
    (default: those the source has), into the PNG file `out`; returns its path."""
    check_per_class(per_class)
    check_whole("seed", seed, 0, error=DatasetError)
    splits = [splits] if isinstance(splits, str) else splits
    source = mnist_data.resolve_source(source, splits=splits or SPLITS)
    if not splits:  # none held: reading train says what is missing
        held = ALL_SPLITS if source.manifest else SPLITS  # in that order
        splits = [split for split in held if _holds(source, split)] or ["train"]
    rng, blocks = np.random.default_rng(seed), {}
    read = [(split, *_examples(source, split)) for split in splits]
    rows = class_count(source, [labels for _, labels, _ in read])
    names = class_list(source, rows)
    for split, labels, pixels in read:
        blocks[split] = [
            [pixels(i) for i in _pick(labels == label, per_class, rng)] for label in range(rows)
        ]
    title = str(source)
    if source.manifest:  # a conversion: which, and of what
        title += f" ({source.kind} of {describe_output(source)['converted_from']})"
    counts = ", ".join(f"{split}: {len(labels):,} examples" for split, labels, _ in read)
    header = (title, f"{counts}; up to {per_class} of each class at random (seed {seed})")
    sheet = _draw(header, names, blocks, per_class)
    buffer = io.BytesIO()
    sheet.save(buffer, format="PNG")
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    return write_bytes_atomic(out, buffer.getbuffer())


def _holds(source: Source, split: str) -> bool:
    if source.manifest:
        return split in source.manifest["splits"]
    return files_in(source.path, split, source.dataset) is not None


def _examples(source: Source, split: str) -> tuple[np.ndarray, Callable[[int], np.ndarray]]:
    """A split's labels, and how to get the pixels of its i-th example: a PNG tree decodes only
    the files drawn, with Pillow."""
    if source.kind == "png":
        files, labels, _ = png_listing(source, split)
        return labels, lambda i: _decoded(files[i])
    if source.kind == "idx":
        images, labels = mnist_data.load(source, split)
    else:
        from pipelines.input.readers import read_arrays  # imports TensorFlow

        images, labels = read_arrays(source, split)
    return labels, images.__getitem__


def _decoded(file: str) -> np.ndarray:
    with Image.open(file) as image:
        return np.asarray(image.convert("L"))


def _pick(members: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """Up to `count` of the indices where `members` is true, chosen at random, in source order."""
    found = np.flatnonzero(members)
    return np.sort(rng.choice(found, min(count, len(found)), replace=False))


def _draw(header: tuple[str, str], names: list[str], blocks: dict, per_class: int) -> Image.Image:
    """The sheet: header, class names, and each split's tiles scaled up, grid at the bottom
    right (so that the tiles' places follow from the sheet's size)."""
    tiles = [tile for block in blocks.values() for row in block for tile in row]
    height, width = np.max([tile.shape for tile in tiles] or [(28, 28)], axis=0)
    pitch_x, pitch_y = width * SCALE + GAP, height * SCALE + GAP
    block_w = per_class * pitch_x - GAP
    grid_w, grid_h = len(blocks) * (block_w + SPLIT_GAP) - SPLIT_GAP, len(names) * pitch_y - GAP
    font, bold = ImageFont.load_default(FONT_SIZE), ImageFont.load_default(FONT_SIZE + 3)
    label_w = max(font.getlength(name) for name in names) + LABEL_PAD
    header_w = max(bold.getlength(header[0]), font.getlength(header[1]))
    sheet_w = MARGIN + max(label_w + grid_w, header_w) + MARGIN
    sheet_w, sheet_h = int(np.ceil(sheet_w)), HEADER + grid_h + MARGIN
    canvas = np.full((sheet_h, sheet_w), BACKGROUND, np.uint8)
    left, top = sheet_w - MARGIN - grid_w, HEADER
    for number, block in enumerate(blocks.values()):
        x0 = left + number * (block_w + SPLIT_GAP)
        for row, row_tiles in enumerate(block):
            for column, tile in enumerate(row_tiles):
                y, x = top + row * pitch_y, x0 + column * pitch_x
                big = tile.repeat(SCALE, 0).repeat(SCALE, 1)
                canvas[y : y + big.shape[0], x : x + big.shape[1]] = big
    sheet = Image.fromarray(canvas)
    draw = ImageDraw.Draw(sheet)
    draw.text((MARGIN, MARGIN), header[0], fill=INK, font=bold)
    draw.text((MARGIN, MARGIN + 24), header[1], fill=INK, font=font)
    for number, split in enumerate(blocks):
        x0 = left + number * (block_w + SPLIT_GAP)
        draw.text((x0 + block_w / 2, top - 6), split, fill=INK, font=bold, anchor="md")
    for row, name in enumerate(names):
        y = top + row * pitch_y + height * SCALE / 2
        draw.text((left - LABEL_PAD, y), name, fill=INK, font=font, anchor="rm")
    return sheet
