"""`bench pipeline`: every pipeline it compares reads the same examples, and the report adds up."""

from __future__ import annotations

import mnist_data
from pipelines.bench_input import bench_pipeline, format_report


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
