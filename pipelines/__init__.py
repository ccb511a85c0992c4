"""pipelines: tf.data input over mnist_data's outputs, contact sheets of them, and the reference
trainers; imported on first use, so that `import pipelines` does not import TensorFlow."""

import importlib

FORMATS = ("idx", "tfrecord", "png")  # what make_dataset reads: IDX, to_tfrecord or to_png output
_HOMES = {
    "make_dataset": "pipelines.input.dataset",
    "contact_sheet": "pipelines.input.sheet",
    "train": "pipelines.training.train",
    "evaluate": "pipelines.training.export",
    "predict": "pipelines.training.export",
}


def __getattr__(name: str):
    if name not in _HOMES:
        raise AttributeError(f"module 'pipelines' has no attribute {name!r}")
    return getattr(importlib.import_module(_HOMES[name]), name)
