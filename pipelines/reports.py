"""What a run leaves besides checkpoints: training-curve and prediction-grid figures (matplotlib,
imported only when a figure is drawn), and the serving SavedModel."""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mnist_data.fs import atomic_path, remove_stale_temps
from pipelines.config import TrainError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

WRONG = "tab:red"


def save_png(figure: Figure, path: str | os.PathLike) -> Path:
    """Render `figure` with Agg to a PNG at `path`, atomically (a reader never sees half a PNG)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(figure)
    path = Path(path)
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=figure.dpi)
    return path


def curves_figure(history: list[dict], title: str = "") -> Figure:
    """Loss (left) and accuracy (right) per epoch, train and test, as a 1000x400 px figure.

    Epochs are integer ticks with half an epoch of margin, so a one-epoch run shows its
    points in the middle of each panel rather than on an edge."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    figure = Figure(figsize=(10, 4), dpi=100, layout="constrained")
    epochs = [record["epoch"] for record in history]
    panels = (("loss", "loss", "test_loss"), ("accuracy", "train_accuracy", "test_accuracy"))
    for ax, (name, train, test) in zip(figure.subplots(1, 2), panels):
        ax.plot(epochs, [r[train] for r in history], "o-", markersize=5, label="train")
        ax.plot(epochs, [r[test] for r in history], "s-", markersize=5, label="test")
        ax.set(xlabel="epoch", ylabel=name, xlim=(0.5, max(epochs, default=1) + 0.5))
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        figure.suptitle(title)
    return figure


def caption(true: int, predicted: int, names: Sequence[str] | None = None) -> str:
    """Two caption lines saying which class is the model's answer and which the label."""

    def name(c: int) -> str:
        return names[c] if names and 0 <= c < len(names) else str(c)

    return f"pred: {name(predicted)}\ntrue: {name(true)}"


def predictions_figure(
    images: np.ndarray,
    labels: np.ndarray,
    predicted: np.ndarray,
    names: Sequence[str] | None = None,
    *,
    columns: int = 8,
) -> Figure:
    """The images as the data holds them (0 black, 255 white), each captioned with the predicted
    and true class (by name when `names` are given); mistakes are captioned and framed in red."""
    from matplotlib.figure import Figure

    columns = max(1, min(columns, len(images)))
    rows = max(1, -(-len(images) // columns))
    mistakes = int(np.sum(np.asarray(labels) != np.asarray(predicted)))
    figure = Figure(figsize=(1.3 * columns, 1.65 * rows + 0.4), dpi=100, layout="constrained")
    figure.suptitle(f"{len(images)} test images: {mistakes} predicted wrong (in red)")
    for ax, pixels, true, guess in zip(
        figure.subplots(rows, columns, squeeze=False).flat, images, labels, predicted
    ):
        ax.imshow(pixels, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
        wrong = true != guess
        ax.set_title(
            caption(int(true), int(guess), names), fontsize=8, color=WRONG if wrong else "black"
        )
        ax.set(xticks=[], yticks=[])
        for spine in ax.spines.values():
            spine.set(color=WRONG if wrong else "black", linewidth=2.5 if wrong else 0.5)
    for ax in figure.axes[len(images) :]:
        ax.set_axis_off()
    return figure


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
            return {
                "probabilities": tf.cond(
                    tf.shape(images)[0] > 0,
                    probabilities,
                    lambda: tf.zeros([0, classes], tf.float32),
                )
            }

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
    """An image as an MNIST-style uint8 [28,28] digit: light strokes on black, resized as needed.

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
            gray = _ink(
                ImageOps.exif_transpose(image)
            )  # a phone photo as its viewer shows it, upright
    except Image.DecompressionBombError as exc:
        raise TrainError(f"{path}: too large to read safely ({exc})") from None
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise TrainError(f"{path}: not a readable image ({exc})") from None
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    if np.median(gray) > 0.5 and np.median(border) > 0.5:
        gray = 1.0 - gray
    if gray.shape != (28, 28):
        gray = np.asarray(
            Image.fromarray(gray.astype(np.float32), "F").resize((28, 28), Image.BILINEAR)
        )
    return np.round(np.clip(gray, 0.0, 1.0) * 255).astype(np.uint8)


def _ink(image: Any) -> np.ndarray:
    """Grey levels in [0, 1] of any Pillow image, transparency composited onto a background:
    the contrasting colour when the opaque pixels are a few strokes, else their own colour
    (a card on a transparent margin)."""
    if image.mode in ("F", "I") or image.mode.startswith("I;"):
        values = np.asarray(image, np.float64)
        if not np.isfinite(
            values
        ).all():  # a NaN or infinite pixel: no ink there, and no peak from it
            values = np.where(np.isfinite(values), values, 0.0)
        top = values.max(initial=0.0)
        # The usual bit depths; beyond 16 bits no depth is usual, so the image's own peak is white.
        full = (
            1.0
            if top <= 1.0 and image.mode == "F"
            else next((2.0**bits - 1 for bits in (8, 10, 12, 16) if top <= 2.0**bits - 1), top)
        )
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
