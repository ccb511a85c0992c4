"""mnist-data: MNIST-style IDX files in, arrays, PNG folders and TFRecords out.

Importing this package does not import TensorFlow; only the functions that need it do.
"""

from mnist_data.catalog import CATALOG, Dataset, get_dataset
from mnist_data.errors import DatasetError, FetchError, IdxError, MnistDataError
from mnist_data.fetch import fetch
from mnist_data.idx import read_idx, write_idx
from mnist_data.load import class_names, load, load_splits

__all__ = [
    "CATALOG",
    "Dataset",
    "DatasetError",
    "FetchError",
    "IdxError",
    "MnistDataError",
    "class_names",
    "fetch",
    "get_dataset",
    "load",
    "load_splits",
    "read_idx",
    "write_idx",
]
__version__ = "0.1.0"
