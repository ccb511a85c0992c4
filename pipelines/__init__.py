"""pipelines: tf.data input over mnist_data's outputs, and the reference trainers.

`make_dataset` is imported on first use so that `import pipelines` stays light.
"""

from __future__ import annotations

from typing import Any

FORMATS = (
    "idx",
    "tfrecord",
    "png",
)  # what make_dataset reads: IDX files, or to_tfrecord/to_png output


def make_dataset(*args: Any, **kwargs: Any):
    """See pipelines.input.make_dataset."""
    from pipelines.input import make_dataset as build

    return build(*args, **kwargs)
