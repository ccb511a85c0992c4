"""A run's answers outside training: its SavedModel, `evaluate`, and `predict` for images."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from mnist_data.checks import check_whole
from mnist_data.fs import atomic_path, remove_stale_temps
from mnist_data.sources.source import Source, resolve_source
from pipelines.training import run_dir as rd
from pipelines.training import step
from pipelines.training.config import TrainError


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
        empty = lambda: tf.zeros([0, model.output_shape[-1]], tf.float32)  # noqa: E731
        return {"probabilities": tf.cond(tf.shape(images)[0] > 0, probabilities, empty)}

    module.serve = serve
    return module


def export_saved_model(model: Any, path: str | os.PathLike) -> Path:
    """SavedModel mapping uint8 [N,28,28] to probabilities [N, classes]; never half-written."""
    import tensorflow as tf

    path, module = Path(path), _serving_module(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path, durable=False) as tmp:
        tf.saved_model.save(module, str(tmp), signatures={"serving_default": module.serve})
        shutil.rmtree(path, ignore_errors=True)  # a rename cannot replace a full directory
    remove_stale_temps(path.parent)  # temporaries of exports killed earlier
    return path


def evaluate(
    run_dir: str | os.PathLike,
    data: str | os.PathLike | Source | None = None,
    *,
    format: str | None = None,
) -> dict:
    """Test accuracy of RUN_DIR's latest checkpoint on `data` (default: the run's)."""
    import tensorflow as tf

    run_dir = Path(run_dir)
    config = rd.load_run_config(run_dir)
    recorded = data is None
    if recorded:
        data, recorded_format = rd.run_data(run_dir)
        format = format or recorded_format
    source = resolve_source(data)
    if recorded:
        advice = f"give --data {data} to evaluate on them as they are now"
        rd.check_unchanged(run_dir, source, advice)
    latest = tf.train.latest_checkpoint(str(run_dir / rd.CHECKPOINTS))
    if latest is None:
        raise TrainError(f"{run_dir / rd.CHECKPOINTS}: no checkpoint to evaluate")
    classes = rd.run_classes(run_dir)
    state = step.create_state(config, source, format, need_train=False, classes=classes)
    step.restore(state, latest, partial=True)
    test_loss, test_acc = step.evaluate(state)
    result = dict(run_dir=str(run_dir), data=rd.portable_data(source), model=config.model)
    result |= dict(preset=config.preset, epochs=int(state.epoch.numpy()), checkpoint=latest)
    return result | dict(test_loss=test_loss, test_accuracy=test_acc, device=state.device)


def predict(
    run_dir: str | os.PathLike, images: list[str | os.PathLike], top: int = 1
) -> list[dict]:
    """Per image file: `{"image", "predictions": [{"class", "probability", "name"?}]}` (the `top`
    likeliest), or `{"image", "error"}`, so one bad file costs no other answers."""
    import tensorflow as tf

    check_whole("top", top, 1, error=TrainError)
    path = Path(run_dir) / rd.SAVED_MODEL
    if not path.is_dir():
        if tf.train.latest_checkpoint(str(Path(run_dir) / rd.CHECKPOINTS)):
            raise TrainError(
                f"{path}: no SavedModel yet: the run stopped before its end; finish it with "
                f"`mnist-data train MODEL --data SRC --out {run_dir} --resume`"
            )
        raise TrainError(f"{path}: no SavedModel (train first)")
    try:
        serve = tf.saved_model.load(str(path)).signatures["serving_default"]
    except Exception as exc:  # TensorFlow's errors for a damaged model are of many kinds
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TrainError(f"{path}: not a readable SavedModel (damaged?): {detail}") from None
    names = rd.shown_names(rd.run_classes(Path(run_dir)))
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


def read_digit(path: str | os.PathLike) -> np.ndarray:
    """An image as an MNIST-style uint8 [28,28] digit, light on black; inverted when it and its
    border are light (a digit on paper), not for a light frame or garment on black."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image.load()
            gray = _ink(ImageOps.exif_transpose(image))  # a phone photo upright, as shown
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
    """Grey levels in [0, 1], transparency over a background that sets the ink off."""
    if image.mode in ("F", "I") or image.mode.startswith("I;"):  # 16-bit, 32-bit or float
        values = np.nan_to_num(np.asarray(image, np.float64), nan=0.0, posinf=0.0, neginf=0.0)
        return np.clip(values / max(values.max(), 1e-12), 0.0, 1.0)  # its peak is white
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
