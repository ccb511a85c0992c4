"""mnist-data: MNIST-style IDX files in, arrays, PNG folders and TFRecords out.

Importing this package does not import TensorFlow; only the functions that need it do.
"""

from mnist_data.conversion.png import to_png
from mnist_data.conversion.tfrecord import to_tfrecord
from mnist_data.conversion.verify import verify
from mnist_data.errors import ConvertError, DatasetError, FetchError, IdxError, MnistDataError
from mnist_data.formats.idx import read_idx, write_idx
from mnist_data.sources.catalog import CATALOG, Dataset, get_dataset
from mnist_data.sources.fetch import fetch
from mnist_data.sources.load import class_names, load, load_splits
from mnist_data.sources.source import Source, resolve_source

__all__ = [
    "CATALOG",
    "ConvertError",
    "Dataset",
    "DatasetError",
    "FetchError",
    "IdxError",
    "MnistDataError",
    "Source",
    "class_names",
    "fetch",
    "get_dataset",
    "load",
    "load_splits",
    "read_idx",
    "resolve_source",
    "to_png",
    "to_tfrecord",
    "verify",
    "write_idx",
]
__version__ = "0.1.0"
