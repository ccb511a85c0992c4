"""Run outputs: digits read for prediction the way MNIST draws them, and SavedModel replacement."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import mnist_data
from pipelines.config import TrainError
from pipelines.reports import export_saved_model, read_digit


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
    strokes = np.zeros((28, 28, 4), np.uint8)  # black strokes drawn as opacity on a transparent canvas
    strokes[..., 3] = digit
    Image.fromarray(strokes, "RGBA").save(tmp_path / "canvas.png")
    with Image.open(tmp_path / "deep.png") as deep:
        assert deep.mode.startswith("I")
    Image.fromarray(np.round(ink * 4095).astype(np.uint16)).save(tmp_path / "twelve-bit.png")
    Image.fromarray(ink.astype(np.float32), "F").save(tmp_path / "float.tiff")
    Image.fromarray(np.round(ink * 255000).astype(np.int32), "I").save(tmp_path / "wide.tiff")  # no usual depth
    card = np.zeros((28, 28, 4), np.uint8)  # a dark digit on a white card, inside a transparent margin
    card[..., :3] = (255 - digit)[..., None]
    card[2:26, 2:26, 3] = 255
    card[digit > 0, 3] = 255  # the card covers the whole digit
    Image.fromarray(card, "RGBA").save(tmp_path / "card.png")
    framed = digit.copy()
    framed[0, :] = framed[-1, :] = framed[:, 0] = framed[:, -1] = 255  # a white frame around it
    Image.fromarray(framed).save(tmp_path / "framed.png")
    for name in ("inverted.png", "deep.png", "canvas.png", "twelve-bit.png", "float.tiff", "wide.tiff", "card.png"):
        read = read_digit(tmp_path / name).astype(int)
        assert np.abs(read - digit).max() <= 1, name
    np.testing.assert_array_equal(read_digit(tmp_path / "framed.png"), framed)  # not inverted
    holed = ink.astype(np.float32)
    holed[0, 0], holed[0, 1] = np.nan, np.inf  # two bad pixels in a float image: the digit is still there
    Image.fromarray(holed, "F").save(tmp_path / "holed.tiff")
    assert np.abs(read_digit(tmp_path / "holed.tiff").astype(int) - digit).max() <= 1
    garment = np.zeros((28, 28), np.uint8)  # a light coat filling most of a black square, as Fashion-MNIST draws it
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

    from mnist_data.atomic import temp_name_for

    net = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(), keras.layers.Dense(10)])
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

    import mnist_data.atomic

    net = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(), keras.layers.Dense(10)])
    final = tmp_path / "saved_model"
    export_saved_model(net, final)
    before = (final / "saved_model.pb").read_bytes()

    def full_disk(tmp, target, durable=True):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(mnist_data.atomic, "publish", full_disk)  # the rename of the new model fails
    with pytest.raises(OSError, match="No space left"):
        export_saved_model(net, final)
    assert (final / "saved_model.pb").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["saved_model"]


def test_a_model_moved_aside_by_a_killed_export_is_restored(tmp_path):
    import keras

    net = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(), keras.layers.Dense(10)])
    final = tmp_path / "new" / "run" / "saved_model"  # parents are created
    export_saved_model(net, final)
    final.rename(final.with_name(".saved_model.previous"))  # killed between the two renames
    export_saved_model(net, final)
    assert sorted(p.name for p in final.parent.iterdir()) == ["saved_model"]


def test_curves_draw_each_series_in_its_colour(tmp_path):
    from pipelines.reports import _COLOURS, plot_curves

    history = [{"loss": 1.0 / e, "test_loss": 1.2 / e, "train_accuracy": 1 - 0.5 / e, "test_accuracy": 1 - 0.6 / e}
               for e in range(1, 6)]
    with Image.open(plot_curves(history, tmp_path / "curves.png")) as image:
        colours = {colour for _, colour in image.convert("RGB").getcolors(1 << 16)}
    assert set(_COLOURS.values()) <= colours


def test_an_image_too_large_to_read_safely_is_named(tmp_path, digit, monkeypatch):
    Image.fromarray(digit).resize((280, 280)).save(tmp_path / "big.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # Pillow refuses above twice this
    with pytest.raises(TrainError, match="big.png: too large to read safely"):
        read_digit(tmp_path / "big.png")


def test_a_photo_stored_rotated_with_an_orientation_tag_reads_upright(tmp_path, digit):
    stored = Image.fromarray(np.rot90(digit, k=1).copy())  # as a phone stores it: pixels turned, a tag to undo it
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: turn 90 degrees clockwise to view
    stored.save(tmp_path / "photo.jpg", exif=exif, quality=100, subsampling=0)
    read = read_digit(tmp_path / "photo.jpg").astype(int)
    assert np.abs(read - digit).mean() < 3  # upright, within JPEG's loss
    assert np.abs(np.rot90(digit, k=1).astype(int) - digit).mean() > 20  # which a turned digit is not
