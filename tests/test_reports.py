"""Run outputs: digits read for prediction the way MNIST draws them, SavedModel replacement, and
the curves and predictions figures, read back from their PNGs."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import mnist_data
from pipelines.training.config import TrainError
from pipelines.training.export import export_saved_model, read_digit


@pytest.fixture(scope="module")
def digit() -> np.ndarray:
    return mnist_data.load("mnist-sample", "test")[0][0]


def test_an_mnist_digit_reads_back_unchanged(tmp_path, digit):
    Image.fromarray(digit).save(tmp_path / "d.png")
    np.testing.assert_array_equal(read_digit(tmp_path / "d.png"), digit)


def test_dark_on_light_colour_16_bit_and_transparent_digits_read_as_mnist_does(tmp_path, digit):
    ink = digit.astype(np.float64) / 255
    Image.fromarray(255 - digit).convert("RGB").save(tmp_path / "inverted.png")
    Image.fromarray(np.round(ink * 65535).astype(np.uint16)).save(tmp_path / "deep.png")
    strokes = np.zeros(
        (28, 28, 4), np.uint8
    )  # black strokes drawn as opacity on a transparent canvas
    strokes[..., 3] = digit
    Image.fromarray(strokes, "RGBA").save(tmp_path / "canvas.png")
    with Image.open(tmp_path / "deep.png") as deep:
        assert deep.mode.startswith("I")
    Image.fromarray(np.round(ink * 4095).astype(np.uint16)).save(tmp_path / "twelve-bit.png")
    Image.fromarray(ink.astype(np.float32), "F").save(tmp_path / "float.tiff")
    Image.fromarray(np.round(ink * 255000).astype(np.int32), "I").save(
        tmp_path / "wide.tiff"
    )  # no usual depth
    card = np.zeros(
        (28, 28, 4), np.uint8
    )  # a dark digit on a white card, inside a transparent margin
    card[..., :3] = (255 - digit)[..., None]
    card[2:26, 2:26, 3] = 255
    card[digit > 0, 3] = 255  # the card covers the whole digit
    Image.fromarray(card, "RGBA").save(tmp_path / "card.png")
    framed = digit.copy()
    framed[0, :] = framed[-1, :] = framed[:, 0] = framed[:, -1] = 255  # a white frame around it
    Image.fromarray(framed).save(tmp_path / "framed.png")
    for name in (
        "inverted.png",
        "deep.png",
        "canvas.png",
        "twelve-bit.png",
        "float.tiff",
        "wide.tiff",
        "card.png",
    ):
        read = read_digit(tmp_path / name).astype(int)
        assert np.abs(read - digit).max() <= 1, name
    np.testing.assert_array_equal(read_digit(tmp_path / "framed.png"), framed)  # not inverted
    holed = ink.astype(np.float32)
    holed[0, 0], holed[0, 1] = (
        np.nan,
        np.inf,
    )  # two bad pixels in a float image: the digit is still there
    Image.fromarray(holed, "F").save(tmp_path / "holed.tiff")
    assert np.abs(read_digit(tmp_path / "holed.tiff").astype(int) - digit).max() <= 1
    garment = np.zeros(
        (28, 28), np.uint8
    )  # a light coat filling most of a black square, as Fashion-MNIST draws it
    garment[2:27, 4:24] = 180
    Image.fromarray(garment).save(tmp_path / "coat.png")
    np.testing.assert_array_equal(read_digit(tmp_path / "coat.png"), garment)  # not inverted either


def test_a_large_digit_is_resized_and_garbage_is_refused(tmp_path, digit):
    Image.fromarray(digit).resize((280, 280), Image.NEAREST).save(tmp_path / "big.png")
    read = read_digit(tmp_path / "big.png")
    assert read.shape == (28, 28) and np.abs(read.astype(int) - digit).mean() < 8
    (tmp_path / "bad.png").write_bytes(b"\x89PNG but not really")
    with pytest.raises(TrainError, match="bad.png: not a readable image"):
        read_digit(tmp_path / "bad.png")


def test_saved_model_is_replaced_whole_and_stale_temporaries_go(tmp_path):
    import keras

    from mnist_data.fs import temp_name_for

    net = keras.Sequential(
        [keras.Input((28, 28, 1)), keras.layers.Flatten(), keras.layers.Dense(10)]
    )
    final = tmp_path / "saved_model"
    export_saved_model(net, final)
    stale = temp_name_for(final)
    stale.mkdir()
    (stale / "saved_model.pb").write_bytes(b"half")  # what a killed export leaves
    export_saved_model(net, final)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["saved_model"]
    assert (final / "saved_model.pb").stat().st_size > 100


def test_a_failed_export_keeps_the_earlier_model(tmp_path, monkeypatch):
    import keras
    import tensorflow as tf

    net = keras.Sequential(
        [keras.Input((28, 28, 1)), keras.layers.Flatten(), keras.layers.Dense(10)]
    )
    final = tmp_path / "saved_model"
    export_saved_model(net, final)
    before = (final / "saved_model.pb").read_bytes()
    save = tf.saved_model.save

    def full_disk(module, where, **kwargs):
        save(module, where, **kwargs)  # most of it is written, then the disk is full
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(tf.saved_model, "save", full_disk)
    with pytest.raises(OSError, match="No space left"):
        export_saved_model(net, final)
    assert (final / "saved_model.pb").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["saved_model"]


def _history(epochs: int) -> list[dict]:
    return [
        {
            "epoch": e,
            "loss": 1.0 / e,
            "test_loss": 1.2 / e,
            "train_accuracy": 1 - 0.5 / e,
            "test_accuracy": 1 - 0.6 / e,
        }
        for e in range(1, epochs + 1)
    ]


def _epoch_ticks(ax) -> list[float]:
    low, high = ax.get_xlim()
    return [t for t in ax.get_xticks() if low <= t <= high]


def _png_pixels(path, size: tuple[int, int]) -> np.ndarray:
    with Image.open(path) as image:
        assert (image.format, image.size) == ("PNG", size)
        return np.asarray(image.convert("RGB")).astype(int)


def test_a_one_epoch_run_shows_its_points_in_the_middle_of_each_panel(tmp_path):
    from matplotlib.colors import to_rgb

    from pipelines.training.reports import curves_figure, save_png

    figure = curves_figure(_history(1), "lenet / modern")
    pixels = _png_pixels(save_png(figure, tmp_path / "curves.png"), (1000, 400))
    assert [ax.get_ylabel() for ax in figure.axes] == ["loss", "accuracy"]
    for ax in figure.axes:
        box = ax.get_window_extent()
        assert _epoch_ticks(ax) == [1]
        assert [t.get_text() for t in ax.get_legend().get_texts()] == ["train", "test"]
        for line in ax.get_lines():
            x, y = ax.transData.transform(line.get_xydata()[0])
            assert abs(x - (box.x0 + box.x1) / 2) < 1  # centred, not on an edge
            colour = np.round(np.array(to_rgb(line.get_color())) * 255)
            marker = pixels[round(400 - y) - 2 : round(400 - y) + 3, round(x) - 2 : round(x) + 3]
            # a visible point, not a pixel
            assert (np.abs(marker - colour).max(-1) <= 2).sum() >= 20, line.get_label()


def test_a_longer_run_has_a_tick_per_epoch_and_a_grid(tmp_path):
    from pipelines.training.reports import curves_figure, save_png

    figure = curves_figure(_history(5))
    pixels = _png_pixels(save_png(figure, tmp_path / "curves.png"), (1000, 400))
    for ax in figure.axes:
        assert _epoch_ticks(ax) == [1, 2, 3, 4, 5]
        assert all(line.get_visible() for line in ax.get_xgridlines())
        assert [len(line.get_xdata()) for line in ax.get_lines()] == [5, 5]
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 50  # lines, markers, text: not empty


def test_predictions_show_the_images_as_the_data_holds_them(tmp_path, digit):
    from matplotlib.colors import to_rgb

    from pipelines.training.reports import WRONG, predictions_figure, save_png

    figure = predictions_figure(np.stack([digit, digit]), np.array([3, 3]), np.array([3, 5]))
    size = tuple(round(v) for v in figure.get_size_inches() * figure.dpi)
    pixels = _png_pixels(save_png(figure, tmp_path / "predictions.png"), size)
    red = np.round(np.array(to_rgb(WRONG)) * 255)
    for ax, wrong in zip(figure.axes, (False, True)):
        box = ax.get_window_extent()
        left, top, right, bottom = (
            round(box.x0),
            round(size[1] - box.y1),
            round(box.x1),
            round(size[1] - box.y0),
        )
        cell = pixels[top:bottom, left:right]
        shown = Image.fromarray(cell.min(-1).astype(np.uint8)).resize((28, 28), Image.BOX)
        shown = np.asarray(shown, int)[2:-2, 2:-2]  # inside the frame
        inner = digit[2:-2, 2:-2].astype(int)
        assert shown[inner > 200].mean() > 200 and shown[inner == 0].mean() < 30  # white on black
        assert np.corrcoef(shown.ravel(), inner.ravel())[0, 1] > 0.95
        around = pixels[top - 4 : bottom + 4, left - 4 : right + 4]
        reds = (np.abs(around - red).max(-1) <= 2).sum()
        assert reds >= 2 * (cell.shape[0] + cell.shape[1]) if wrong else reds == 0  # all round
    assert [ax.get_title() for ax in figure.axes] == ["pred: 3\ntrue: 3", "pred: 5\ntrue: 3"]


def test_captions_say_which_class_is_predicted_and_name_it():
    from pipelines.training.reports import caption

    names = mnist_data.class_names("fashion-mnist")
    assert caption(5, 7, names) == "pred: Sneaker\ntrue: Sandal"
    assert caption(5, 7) == "pred: 7\ntrue: 5"
    assert caption(11, 7, names) == "pred: Sneaker\ntrue: 11"  # past the names: its number


def test_importing_the_pipelines_does_not_import_matplotlib():
    import subprocess
    import sys

    code = "import sys, pipelines.training.export, pipelines.training.train\n"
    code += "print('matplotlib' in sys.modules)"
    assert (
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout.strip()
        == "False"
    )


def test_an_image_too_large_to_read_safely_is_named(tmp_path, digit, monkeypatch):
    Image.fromarray(digit).resize((280, 280)).save(tmp_path / "big.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # Pillow refuses above twice this
    with pytest.raises(TrainError, match="big.png: too large to read safely"):
        read_digit(tmp_path / "big.png")


def test_a_photo_stored_rotated_with_an_orientation_tag_reads_upright(tmp_path, digit):
    stored = Image.fromarray(
        np.rot90(digit, k=1).copy()
    )  # as a phone stores it: pixels turned, a tag to undo it
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: turn 90 degrees clockwise to view
    stored.save(tmp_path / "photo.jpg", exif=exif, quality=100, subsampling=0)
    read = read_digit(tmp_path / "photo.jpg").astype(int)
    assert np.abs(read - digit).mean() < 3  # upright, within JPEG's loss
    assert (
        np.abs(np.rot90(digit, k=1).astype(int) - digit).mean() > 20
    )  # which a turned digit is not
