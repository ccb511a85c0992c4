"""What a run leaves besides checkpoints: curves and digit-grid PNGs, and the serving SavedModel.

Figures are drawn with Pillow (already a dependency) rather than matplotlib.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from mnist_data.atomic import atomic_path, remove_stale_temps
from pipelines.config import TrainError

_COLOURS = {"loss": (200, 60, 40), "test_loss": (120, 40, 160), "train_accuracy": (40, 90, 200),
            "test_accuracy": (30, 150, 60)}


def _save_png(image: Any, path: Path) -> None:
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")


def _panel(draw: Any, box: tuple[int, int, int, int], series: dict[str, Sequence[float]], label: str) -> None:
    """One line chart in `box` (left, top, right, bottom), y range fitted to the data."""
    left, top, right, bottom = box
    draw.rectangle(box, outline=(0, 0, 0))
    values = [v for ys in series.values() for v in ys]
    low, high = min(values), max(values)
    high = high if high > low else low + 1.0
    count = max(len(ys) for ys in series.values())
    for y_tick in (low, (low + high) / 2, high):
        y = bottom - (y_tick - low) / (high - low) * (bottom - top)
        draw.text((4, y - 6), f"{y_tick:.3f}", fill=(0, 0, 0))
    for name, ys in series.items():
        points = [(left + (i / max(count - 1, 1)) * (right - left), bottom - (v - low) / (high - low) * (bottom - top))
                  for i, v in enumerate(ys)]
        if len(points) > 1:
            draw.line(points, fill=_COLOURS[name], width=2)
        for x, y in points:
            draw.ellipse((x - 2, y - 2, x + 2, y + 2), fill=_COLOURS[name])
    legend = top + 4  # beside the chart, where no line can run under it
    for name in series:
        draw.text((right + 8, legend), name, fill=_COLOURS[name])
        legend += 12
    draw.text((left, bottom + 4), f"{label} / epoch 1..{count}", fill=(0, 0, 0))


def plot_curves(history: list[dict], path: str | os.PathLike, *, title: str = "") -> Path:
    """PNG of the per-epoch train/test loss (top) and train/test accuracy (bottom)."""
    from PIL import Image, ImageDraw

    path = Path(path)
    image = Image.new("RGB", (640, 480), "white")
    draw = ImageDraw.Draw(image)
    draw.text((60, 6), title, fill=(0, 0, 0))
    if history:
        _panel(draw, (60, 24, 520, 220), {k: [r[k] for r in history] for k in ("loss", "test_loss")}, "loss")
        _panel(draw, (60, 256, 520, 452), {k: [r[k] for r in history] for k in ("train_accuracy", "test_accuracy")},
               "accuracy")
    _save_png(image, path)
    return path


def digit_grid(images: np.ndarray, labels: np.ndarray, predicted: np.ndarray, path: str | os.PathLike,
               *, columns: int = 8, scale: int = 3) -> Path:
    """PNG grid of digits captioned "predicted/true", mistakes framed and captioned in red."""
    from PIL import Image, ImageDraw

    path = Path(path)
    cell, caption = 28 * scale, 14
    rows = max(1, -(-len(images) // columns))
    grid = Image.new("RGB", (columns * (cell + 4), rows * (cell + caption + 4)), "white")
    draw = ImageDraw.Draw(grid)
    for i, (pixels, true, guess) in enumerate(zip(images, labels, predicted)):
        x, y = (i % columns) * (cell + 4) + 2, (i // columns) * (cell + caption + 4) + 2
        digit = Image.fromarray(255 - np.asarray(pixels, np.uint8), "L").resize((cell, cell), Image.NEAREST)
        grid.paste(digit.convert("RGB"), (x, y))
        wrong = int(true) != int(guess)
        colour = (220, 0, 0) if wrong else (0, 0, 0)
        if wrong:
            draw.rectangle((x - 2, y - 2, x + cell + 1, y + cell + 1), outline=colour, width=2)
        draw.text((x + 2, y + cell + 1), f"{int(guess)}/{int(true)}" + ("  x" if wrong else ""), fill=colour)
    _save_png(grid, path)
    return path


def _serving_module(model: Any) -> Any:
    """A tf.Module around `model` whose `serve` takes raw uint8 digits (the class is built here so
    importing this module does not import TensorFlow)."""
    import tensorflow as tf

    class Serving(tf.Module):
        def __init__(self, net: Any) -> None:
            super().__init__()
            self.net = net

        @tf.function(input_signature=[tf.TensorSpec([None, 28, 28], tf.uint8, name="images")])
        def serve(self, images: Any) -> dict:
            def probabilities() -> Any:
                pixels = tf.cast(images, tf.float32)[..., None] / 255.0
                return tf.nn.softmax(tf.cast(self.net(pixels, training=False), tf.float32))

            # An empty batch gets an empty answer: TensorFlow's CPU convolution fails on none.
            classes = int(self.net.outputs[0].shape[-1])
            return {"probabilities": tf.cond(tf.shape(images)[0] > 0, probabilities,
                                             lambda: tf.zeros([0, classes], tf.float32))}

    return Serving(model)


def export_saved_model(model: Any, path: str | os.PathLike) -> Path:
    """SavedModel whose serving signature maps uint8 [N,28,28] to class probabilities [N,10].

    Written under a temporary name and renamed, so `path` is never a half-written model; an
    earlier model is moved aside to `.NAME.previous` just before and deleted just after, and
    put back if the export fails or was killed in between.
    """
    import tensorflow as tf

    path = Path(path)
    previous = path.with_name(f".{path.name}.previous")
    if previous.exists() and not path.exists():
        os.replace(previous, path)  # a killed export had moved it aside
    module = _serving_module(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with atomic_path(path, durable=False) as tmp:
            tf.saved_model.save(module, str(tmp), signatures={"serving_default": module.serve})
            shutil.rmtree(previous, ignore_errors=True)
            if path.exists():
                os.replace(path, previous)
    except BaseException:
        if previous.exists() and not path.exists():
            os.replace(previous, path)
        raise
    shutil.rmtree(previous, ignore_errors=True)
    remove_stale_temps(path.parent)  # temporaries of exports killed earlier
    return path


def read_digit(path: str | os.PathLike) -> np.ndarray:
    """An image file as an MNIST-style uint8 [28,28] digit: light strokes on black, resized if needed.

    Why: users photograph or draw digits dark on light, in colour, at 16 bits or on a transparent
    canvas; the models only know MNIST's look. Strokes drawn as opacity count as ink, and an
    image is inverted when both its median grey and that of its outermost pixels are light: a
    digit on paper is, while neither a light frame around a digit on black nor a large light
    garment on black (as Fashion-MNIST draws it) is.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image.load()
            gray = _ink(ImageOps.exif_transpose(image))  # a phone photo as its viewer shows it, upright
    except Image.DecompressionBombError as exc:
        raise TrainError(f"{path}: too large to read safely ({exc})") from None
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise TrainError(f"{path}: not a readable image ({exc})") from None
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    if np.median(gray) > 0.5 and np.median(border) > 0.5:
        gray = 1.0 - gray
    if gray.shape != (28, 28):
        gray = np.asarray(Image.fromarray(gray.astype(np.float32), "F").resize((28, 28), Image.BILINEAR))
    return np.round(np.clip(gray, 0.0, 1.0) * 255).astype(np.uint8)


def _ink(image: Any) -> np.ndarray:
    """Grey levels in [0, 1] of any Pillow image, transparency composited onto a background:
    the contrasting colour when the opaque pixels are a few strokes, else their own colour
    (a card on a transparent margin)."""
    if image.mode in ("F", "I") or image.mode.startswith("I;"):
        values = np.asarray(image, np.float64)
        if not np.isfinite(values).all():  # a NaN or infinite pixel: no ink there, and no peak from it
            values = np.where(np.isfinite(values), values, 0.0)
        top = values.max(initial=0.0)
        # The usual bit depths; beyond 16 bits no depth is usual, so the image's own peak is white.
        full = 1.0 if top <= 1.0 and image.mode == "F" else next(
            (2.0**bits - 1 for bits in (8, 10, 12, 16) if top <= 2.0**bits - 1), top)
        return np.clip(values / full, 0.0, 1.0)
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        alpha = np.asarray(rgba.getchannel("A"), np.float64) / 255.0
        gray = np.asarray(rgba.convert("L"), np.float64) / 255.0
        opaque = alpha > 0.5
        if not opaque.any():
            return alpha  # nothing but opacity: it is the drawing
        colour = float(np.median(gray[opaque]))
        if opaque.mean() < 0.5:  # a few strokes: put them on the colour that sets them off
            colour = 1.0 if colour < 0.5 else 0.0
        return gray * alpha + colour * (1.0 - alpha)
    return np.asarray(image.convert("L"), np.float64) / 255.0
