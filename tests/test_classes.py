"""Any number of classes, end to end: a dataset's class count and names travel from its files
through the converters, make_dataset and a training run to the SavedModel and predict."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

import mnist_data
import pipelines
from pipelines.training.config import TrainError, get_config
from pipelines.training.export import evaluate, predict
from pipelines.training.train import train

PREFIXES = {"train": "train", "test": "t10k"}


def write_set(directory: Path, arrays: dict) -> Path:
    """An IDX directory of `arrays`: split -> (images, labels)."""
    directory.mkdir(parents=True)
    for split, (images, labels) in arrays.items():
        mnist_data.write_idx(directory / f"{PREFIXES[split]}-images-idx3-ubyte.gz", images)
        mnist_data.write_idx(directory / f"{PREFIXES[split]}-labels-idx1-ubyte.gz", labels)
    return directory


def relabelled_sample(directory: Path, classes: int) -> Path:
    """The embedded sample's digits with labels 0..classes-1 in turn: each class in each split."""
    arrays = {split: mnist_data.load("mnist-sample", split)[0] for split in PREFIXES}
    labels = {split: (np.arange(len(x)) % classes).astype(np.uint8) for split, x in arrays.items()}
    return write_set(directory, {split: (arrays[split], labels[split]) for split in PREFIXES})


def few_steps(model: str):
    return get_config(model, "modern", epochs=1, max_steps=3)


def test_47_classes_travel_from_idx_files_to_the_saved_model_and_predict(tmp_path):
    idx = relabelled_sample(tmp_path / "idx", 47)
    numbers = [str(label) for label in range(47)]
    mnist_data.to_tfrecord(idx, tmp_path / "tfr", progress=False)
    mnist_data.to_png(idx, tmp_path / "png", progress=False)
    assert json.loads((tmp_path / "tfr" / "manifest.json").read_text())["classes"] == numbers
    manifest = json.loads((tmp_path / "png" / "manifest.json").read_text())
    assert manifest["classes"] == numbers
    assert manifest["folders"] == [f"{label:02d}" for label in range(47)]
    assert mnist_data.verify(tmp_path / "png").ok
    for data, cache in ((idx, True), (tmp_path / "tfr", False), (tmp_path / "png", True)):
        batches = pipelines.make_dataset(
            data, "test", 400, one_hot=True, shuffle=False, cache=cache
        )
        _, labels = next(iter(batches))
        assert labels.shape == (400, 47), data
        np.testing.assert_array_equal(labels.numpy().argmax(1), np.arange(400) % 47)

    run = tmp_path / "run"
    summary = train(few_steps("lenet"), str(tmp_path / "png"), run, progress=False)
    assert json.loads((run / "config.json").read_text())["classes"] == numbers
    serve = tf.saved_model.load(str(run / "saved_model")).signatures["serving_default"]
    images, _ = mnist_data.load("mnist-sample", "test")
    assert serve(images=tf.constant(images[:5]))["probabilities"].shape == (5, 47)
    assert serve(images=tf.zeros([0, 28, 28], tf.uint8))["probabilities"].shape == (0, 47)

    shutil.rmtree(tmp_path / "png")  # the run answers without the data it trained on
    Image.fromarray(images[0]).save(tmp_path / "digit.png")
    (answer,) = predict(run, [tmp_path / "digit.png"], top=47)
    assert sorted(p["class"] for p in answer["predictions"]) == list(range(47))
    assert all("name" not in p for p in answer["predictions"])  # numbers: nothing to name
    evaluated = evaluate(run, idx)  # the same examples as IDX files
    assert evaluated["test_accuracy"] == pytest.approx(summary["test_accuracy"])

    wide = relabelled_sample(tmp_path / "wide", 62)
    with pytest.raises(
        mnist_data.DatasetError,
        match=f"^{wide}: test labels go up to 61; the model has 47 outputs \\(classes 0..46\\)$",
    ):
        evaluate(run, wide)
    with pytest.raises(TrainError, match=r"resuming would not continue its run \(classes 47 -> 10"):
        train(few_steps("lenet"), "mnist-sample", run, resume=True, progress=False)


def test_fashion_names_travel_through_a_png_tree_to_predict(tmp_path, fashion_dir, monkeypatch):
    arrays = {}
    for split, count in (("train", 1000), ("test", 200)):
        images, labels = mnist_data.load("fashion-mnist", split, cache=False)
        arrays[split] = images[:count], labels[:count]
    # A slice of the real set where the catalog looks for it, so its class names are the catalog's
    write_set(tmp_path / "data" / "fashion-mnist", arrays)
    monkeypatch.setenv("MNIST_DATA_DIR", str(tmp_path / "data"))
    names = list(mnist_data.class_names("fashion-mnist"))

    png = tmp_path / "png"
    mnist_data.to_png("fashion-mnist", png, labels_as="names", progress=False)
    manifest = json.loads((png / "manifest.json").read_text())
    assert manifest["classes"] == names and manifest["folders"][0] == "T-shirt-top"
    _, labels = next(iter(pipelines.make_dataset(png, "test", 200, one_hot=True)))
    assert labels.shape == (200, 10)

    run = tmp_path / "run"
    train(few_steps("softmax"), str(png), run, progress=False)
    assert json.loads((run / "config.json").read_text())["classes"] == names
    shutil.rmtree(png)
    Image.fromarray(arrays["test"][0][0]).save(tmp_path / "garment.png")
    (answer,) = predict(run, [tmp_path / "garment.png"], top=10)
    assert [p["name"] for p in answer["predictions"]] == [
        names[p["class"]] for p in answer["predictions"]
    ]
    assert sorted(p["name"] for p in answer["predictions"]) == sorted(names)


def test_class_names_follow_a_dataset_through_its_conversion(tmp_path: Path, fashion_dir) -> None:
    converted = tmp_path / "converted"
    mnist_data.to_tfrecord("fashion-mnist", converted / "tfrecord", splits="test", progress=False)
    mnist_data.to_png("fashion-mnist", converted / "png", splits="test", progress=False)
    mnist_data.to_tfrecord("mnist-sample", converted / "digits", splits="test", progress=False)
    (converted / "damaged").mkdir()
    (converted / "damaged" / "manifest.json").write_text('{"source": {"name": ["fashion-mnist"]}}')
    manifest = json.loads((converted / "png" / "manifest.json").read_text())
    manifest.update(version=1, classes=manifest.pop("folders"))  # as version 1 wrote it
    (converted / "older").mkdir()
    (converted / "older" / "manifest.json").write_text(json.dumps(manifest))
    for data, first in (
        ("fashion-mnist", "T-shirt/top"),
        ("mnist-sample", "0"),
        (tmp_path, None),
        (converted / "tfrecord", "T-shirt/top"),
        (converted / "png", "T-shirt/top"),
        (converted / "digits", "0"),
        (converted / "damaged", None),
        (converted / "older", "T-shirt/top"),  # its "classes" were folders: the catalog's names
    ):
        found = mnist_data.class_names(data)
        assert (found[0] if found else None) == first, data


def test_a_folder_counts_the_classes_of_all_its_splits(tmp_path):
    from mnist_data import write_idx
    from pipelines import make_dataset

    images, labels = mnist_data.load("mnist-sample", "test")
    for prefix, top in (("train", 12), ("t10k", 9)):  # the test split lacks classes 10..12
        write_idx(tmp_path / f"{prefix}-images-idx3-ubyte.gz", images)
        write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte.gz", np.minimum(labels * 2, top))
    _, one_hot = next(iter(make_dataset(tmp_path, "test", batch_size=8, one_hot=True)))
    assert one_hot.shape == (8, 13)
