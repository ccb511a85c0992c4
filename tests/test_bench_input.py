"""`bench pipeline`: every pipeline it compares reads the same examples, and the report adds up."""

from __future__ import annotations

import mnist_data
from pipelines.input.bench import bench_pipeline, format_report


def test_compare_on_a_png_tree_runs_every_baseline_on_the_same_examples(tmp_path):
    mnist_data.to_png("mnist-sample", tmp_path / "png", progress=False)
    report = bench_pipeline(str(tmp_path / "png"), batch_size=100, epochs=2, compare=True, repeat=1)
    assert report["format"] == "png" and report["examples"] == 1600
    names = [row["name"] for row in report["results"]]
    assert [name.split()[0] for name in names] == ["tutorial", "tfds-like", "ceiling", "ours"]
    for row in report["results"]:
        assert row["epoch_examples"] == [1600, 1600], row["name"]
        seconds = row["epoch_seconds"][0]
        assert row["examples_per_second_first_epoch"] == round(1600 / seconds[0])
        assert row["examples_per_second_later_epochs"] == round(1600 / seconds[1])
    text = format_report(report)
    assert "1600 examples" in text and text.count("x ") >= 3  # a ratio against each baseline


def test_every_baseline_yields_the_examples_of_the_source(tmp_path):
    """Not only as many: the same images with the same labels, whatever each pipeline's order."""
    import hashlib

    import numpy as np

    from pipelines.input import bench
    from pipelines.input.readers import read_arrays

    mnist_data.to_png("mnist-sample", tmp_path / "png", progress=False)
    source = str(tmp_path / "png")
    images, labels = read_arrays(source, "train", format="png")
    mnist_data.to_tfrecord("mnist-sample", tmp_path / "tfr", splits=["train"], progress=False)
    mnist_data.to_tfrecord(
        "mnist-sample",
        tmp_path / "tfr-gz",
        splits=["train"],
        compression="gzip",
        encoding="png",
        progress=False,
    )

    def examples(batches) -> list[str]:
        found = []
        for x, y in batches:
            pixels = np.rint(np.asarray(x) * 255).astype(np.uint8).reshape(len(x), -1)
            classes = np.asarray(y).argmax(-1) if np.asarray(y).ndim == 2 else np.asarray(y)
            found += [
                hashlib.md5(p.tobytes() + bytes([c])).hexdigest() for p, c in zip(pixels, classes)
            ]
        return sorted(found)

    expected = sorted(
        hashlib.md5(p.tobytes() + bytes([c])).hexdigest()
        for p, c in zip(images.reshape(len(images), -1), labels)
    )
    builders = {
        "tutorial": bench.tutorial(images, labels),
        "tfds-like": bench.tfds_like(mnist_data.resolve_source(tmp_path / "tfr"), 100),
        "tfds-like, gzip png": bench.tfds_like(mnist_data.resolve_source(tmp_path / "tfr-gz"), 100),
        "ours": bench.ours(source, 100, len(labels), format="png"),
    }
    for name, build in builders.items():
        for epoch in build(2):
            assert examples(epoch) == expected, name


def test_one_epoch_has_no_later_rate_rather_than_zero():
    report = bench_pipeline("mnist-sample", batch_size=100, epochs=1, repeat=1)
    assert report["results"][-1]["examples_per_second_later_epochs"] is None
    ours = format_report(report).splitlines()[2]
    assert ours.startswith("ours (idx)") and ours.split()[-1] == "-"


def test_every_pipeline_counts_the_split_once_per_epoch_and_an_empty_split_is_refused(tmp_path):
    import numpy as np
    import pytest

    report = bench_pipeline(
        "mnist-sample", batch_size=300, epochs=2, compare=True, repeat=1
    )  # 1600 = 5 x 300 + 100
    assert {row["name"].split()[0]: row["epoch_examples"] for row in report["results"]} == {
        "tutorial": [1600, 1600],
        "tfds-like": [1600, 1600],
        "ceiling": [1600, 1600],
        "ours": [1600, 1600],
    }
    empty = tmp_path / "empty"
    empty.mkdir()
    for prefix in ("train", "t10k"):
        mnist_data.write_idx(
            empty / f"{prefix}-images-idx3-ubyte.gz", np.zeros((0, 28, 28), np.uint8)
        )
        mnist_data.write_idx(empty / f"{prefix}-labels-idx1-ubyte.gz", np.zeros(0, np.uint8))
    with pytest.raises(
        mnist_data.DatasetError, match="the train split holds no examples to measure"
    ):
        bench_pipeline(str(empty), compare=True, repeat=1)
