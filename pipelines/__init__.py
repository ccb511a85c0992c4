"""pipelines: tf.data input over mnist_data's outputs, and the reference trainers.

`make_dataset`, `train`, `evaluate` and `predict` are imported on first use, so that
`import pipelines` does not import TensorFlow.
"""

from __future__ import annotations

import importlib
from typing import Any

FORMATS = ("idx", "tfrecord", "png")  # what make_dataset reads: IDX, to_tfrecord or to_png output
_LAZY = {
    "make_dataset": "pipelines.input.dataset",
    "train": "pipelines.training.train",
    "evaluate": "pipelines.training.export",
    "predict": "pipelines.training.export",
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'pipelines' has no attribute {name!r}")
    try:
        module = importlib.import_module(_LAZY[name])
    except ModuleNotFoundError:  # the trainers before their move into pipelines.training
        module = importlib.import_module("pipelines.train")
    return getattr(module, name)
