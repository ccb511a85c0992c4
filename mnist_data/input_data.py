"""The TensorFlow 1 tutorial API, `input_data.read_data_sets`, which TF2 removed.

Old tutorials do ``mnist = input_data.read_data_sets("MNIST_data/", one_hot=True)`` and
then loop on ``mnist.train.next_batch(100)``; this module keeps that code running,
with the same shapes, scaling, validation split and epoch-boundary semantics.
"""

from __future__ import annotations

import collections
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from mnist_data.catalog import SPLITS
from mnist_data.errors import DatasetError, FetchError
from mnist_data.fetch import fetch
from mnist_data.load import FALLBACK_DATASET, load_splits
from mnist_data.locate import files_in

Datasets = collections.namedtuple("Datasets", ["train", "validation", "test"])
DEFAULT_VALIDATION_SIZE = 5000
NUM_CLASSES = 10


def dense_to_one_hot(labels: np.ndarray, num_classes: int = NUM_CLASSES) -> np.ndarray:
    """Integer labels [N] to float one-hot rows [N, num_classes]."""
    one_hot = np.zeros((len(labels), num_classes), dtype=np.float64)
    one_hot[np.arange(len(labels)), labels] = 1.0
    return one_hot


class DataSet:
    """One split with the tutorial's `next_batch`; images [N, 784] (or [N, 28, 28, 1])."""

    def __init__(
        self,
        images: np.ndarray,
        labels: np.ndarray,
        *,
        dtype: Any = np.float32,
        reshape: bool = True,
        seed: int | None = None,
    ) -> None:
        dtype = np.dtype(getattr(dtype, "as_numpy_dtype", dtype))
        if dtype not in (np.dtype(np.uint8), np.dtype(np.float32)):
            raise TypeError(f"invalid image dtype {dtype}: expected uint8 or float32")
        if len(images) != len(labels):
            raise ValueError(f"images.shape: {images.shape} labels.shape: {labels.shape}")
        pixels = int(np.prod(images.shape[1:]))
        images = (
            images.reshape(len(images), pixels) if reshape else images.reshape(*images.shape[:3], 1)
        )
        if dtype == np.float32:
            images = images.astype(np.float32) * np.float32(1.0 / 255.0)
        self._images, self._labels = images, labels
        self._num_examples = len(images)
        self._epochs_completed = 0
        self._index_in_epoch = 0
        self._rng = np.random.RandomState(seed)

    @property
    def images(self) -> np.ndarray:
        return self._images

    @property
    def labels(self) -> np.ndarray:
        return self._labels

    @property
    def num_examples(self) -> int:
        return self._num_examples

    @property
    def epochs_completed(self) -> int:
        return self._epochs_completed

    def _shuffle(self) -> None:
        order = self._rng.permutation(self._num_examples)
        self._images, self._labels = self._images[order], self._labels[order]

    def next_batch(
        self, batch_size: int, fake_data: bool = False, shuffle: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """The next `batch_size` examples; a batch that crosses an epoch end takes the
        rest of this epoch plus the start of the next (reshuffled) one."""
        if fake_data:
            raise ValueError(
                "fake_data is not supported: use the embedded sample (mnist-sample) instead"
            )
        start = self._index_in_epoch
        if self._epochs_completed == 0 and start == 0 and shuffle:
            self._shuffle()
        if start + batch_size > self._num_examples:
            self._epochs_completed += 1
            rest_images, rest_labels = self._images[start:], self._labels[start:]
            if shuffle:
                self._shuffle()
            self._index_in_epoch = batch_size - len(rest_images)
            end = self._index_in_epoch
            return (
                np.concatenate((rest_images, self._images[:end]), axis=0),
                np.concatenate((rest_labels, self._labels[:end]), axis=0),
            )
        self._index_in_epoch += batch_size
        return self._images[start : self._index_in_epoch], self._labels[
            start : self._index_in_epoch
        ]


def read_data_sets(
    train_dir: str | os.PathLike,
    fake_data: bool = False,
    one_hot: bool = False,
    dtype: Any = np.float32,
    reshape: bool = True,
    validation_size: int | None = None,
    seed: int | None = None,
    source_url: str | None = None,
) -> Datasets:
    """Load MNIST from `train_dir`, downloading the four files into it when missing.

    Offline, it falls back to the embedded 2,000-digit sample with a warning; there the
    default validation split is 10% of train instead of 5,000.
    """
    if fake_data:
        raise ValueError(
            "fake_data is not supported: use the embedded sample (mnist-sample) instead"
        )
    source = _source_for(train_dir, source_url)
    arrays = load_splits(source, SPLITS)
    (train_images, train_labels), (test_images, test_labels) = arrays["train"], arrays["test"]
    if validation_size is None:
        validation_size = (
            DEFAULT_VALIDATION_SIZE if source != FALLBACK_DATASET else len(train_labels) // 10
        )
    if not 0 <= validation_size <= len(train_images):
        raise ValueError(
            f"validation size should be between 0 and {len(train_images)}. "
            f"Received: {validation_size}."
        )
    if one_hot:
        train_labels, test_labels = dense_to_one_hot(train_labels), dense_to_one_hot(test_labels)
    options = dict(dtype=dtype, reshape=reshape, seed=seed)
    return Datasets(
        train=DataSet(train_images[validation_size:], train_labels[validation_size:], **options),
        validation=DataSet(
            train_images[:validation_size], train_labels[:validation_size], **options
        ),
        test=DataSet(test_images, test_labels, **options),
    )


def _source_for(train_dir: str | os.PathLike, source_url: str | None) -> str:
    """`train_dir` if it holds (or can be given) the files, else the embedded sample."""
    directory = os.fspath(train_dir)
    if all(files_in(Path(directory), split) for split in SPLITS):
        return directory
    try:
        fetch("mnist", directory, mirrors=[source_url] if source_url else None)
        return directory
    except (FetchError, DatasetError) as exc:
        warnings.warn(f"{exc}\nUsing the embedded 2,000-digit MNIST sample instead.", stacklevel=3)
        return FALLBACK_DATASET
