"""A run's answers outside training: its SavedModel (written and served), `evaluate` on the
test split, and `predict` for image files a user brings."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from mnist_data.fs import atomic_path, remove_stale_temps
from pipelines.training import run_dir as rd
from pipelines.training import step
from pipelines.training.config import TrainError
from pipelines.training.models import CLASSES


def _serving_module(model: Any) -> Any:
    """A tf.Module holding `model`, whose `serve` takes raw uint8 digits."""
    import tensorflow as tf

    module = tf.Module()
    module.net = model

    @tf.function(input_signature=[tf.TensorSpec([None, 28, 28], tf.uint8, name="images")])
    def serve(images: Any) -> dict:
        def probabilities() -> Any:
            pixels = tf.cast(images, tf.float32)[..., None] / 255.0
            return tf.nn.softmax(tf.cast(model(pixels, training=False), tf.float32))

        # An empty batch gets an empty answer: TensorFlow's CPU convolution fails on none.
        empty = lambda: tf.zeros([0, CLASSES], tf.float32)  # noqa: E731
        return {"probabilities": tf.cond(tf.shape(images)[0] > 0, probabilities, empty)}

    module.serve = serve
    return module


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


def evaluate(
    run_dir: str | os.PathLike, data: str | os.PathLike | None = None, *, format: str | None = None
) -> dict:
    """Restore RUN_DIR's latest checkpoint and measure test accuracy as training did, on `data`
    (default: the data the run was trained on)."""
    import tensorflow as tf

    run_dir = Path(run_dir)
    config = rd.load_run_config(run_dir)
    if data is None:
        data, recorded_format = rd.run_data(run_dir)
        format = format or recorded_format
        rd.check_unchanged(run_dir, data, f"give --data {data} to evaluate on them as they are now")
    latest = tf.train.latest_checkpoint(str(run_dir / rd.CHECKPOINTS))
    if latest is None:
        raise TrainError(f"{run_dir / rd.CHECKPOINTS}: no checkpoint to evaluate")
    state = step.create_state(config, data, format, need_train=False)
    step.restore(state, latest, partial=True)
    test_loss, test_acc = step.evaluate(state)
    result = dict(run_dir=str(run_dir), data=rd.portable_data(data), model=config.model)
    result |= dict(preset=config.preset, epochs=int(state.epoch.numpy()), checkpoint=latest)
    return result | dict(test_loss=test_loss, test_accuracy=test_acc, device=state.device)


def predict(
    run_dir: str | os.PathLike, images: list[str | os.PathLike], top: int = 1
) -> list[dict]:
    """Per image file, in order: `{"image", "predictions": [{"class", "probability", "name"?}]}`
    with its `top` likeliest classes, or `{"image", "error"}` for a file that cannot be read, so
    one bad file costs no other answers."""
    import tensorflow as tf

    serve = _serving(Path(run_dir))
    names = rd.class_names_of_run(Path(run_dir))
    digits, answers = [], []
    for path in images:
        answers.append({"image": os.fspath(path)})
        try:
            digits.append(read_digit(path))
        except TrainError as exc:
            answers[-1]["error"] = str(exc)
    batch = np.stack(digits) if digits else np.zeros((0, 28, 28), np.uint8)
    readable = iter(serve(images=tf.constant(batch))["probabilities"].numpy())
    for answer in answers:
        if "error" not in answer:
            chances = next(readable)
            answer["predictions"] = [
                {"class": int(c), "probability": float(chances[c])}
                | ({"name": names[c]} if names else {})
                for c in chances.argsort()[::-1][:top]
            ]
    return answers


def _serving(run_dir: Path) -> Any:
    """RUN_DIR's SavedModel serving function, or a TrainError saying why there is none."""
    import tensorflow as tf

    path = run_dir / rd.SAVED_MODEL
    if not path.is_dir():
        if tf.train.latest_checkpoint(str(run_dir / rd.CHECKPOINTS)):
            raise TrainError(
                f"{path}: no SavedModel yet: the run stopped before its end; finish it with "
                f"`mnist-data train MODEL --data SRC --out {run_dir} --resume`"
            )
        raise TrainError(f"{path}: no SavedModel (train first)")
    try:
        return tf.saved_model.load(str(path)).signatures["serving_default"]
    except Exception as exc:  # TensorFlow's errors for a damaged model are of many kinds
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TrainError(f"{path}: not a readable SavedModel (damaged?): {detail}") from None


def read_digit(path: str | os.PathLike) -> np.ndarray:
    """An image as an MNIST-style uint8 [28,28] digit: light strokes on black, resized.

    Why: users bring digits dark on light, in colour, at 16 bits or on a transparent canvas. An
    image is inverted when both its median grey and that of its border are light: a digit on
    paper is; a light frame around a digit, or a light garment (Fashion-MNIST), on black is not.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image.load()
            # a phone photo as its viewer shows it, upright
            gray = _ink(ImageOps.exif_transpose(image))
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
        # a NaN or infinite pixel: no ink there, and no peak from it
        values = np.where(np.isfinite(values), values, 0.0)
        top = values.max(initial=0.0)
        # The usual bit depths; beyond 16 bits no depth is usual, so the image's own peak is white.
        depths = [1.0] * (image.mode == "F") + [2.0**bits - 1 for bits in (8, 10, 12, 16)]
        full = next((depth for depth in depths if top <= depth), top)
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
