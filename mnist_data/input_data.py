"""The TensorFlow 1 tutorial API that TF2 removed (`read_data_sets`, `next_batch`), with the same
shapes, scaling, validation split and epoch-boundary semantics, so old tutorials keep running."""

from __future__ import annotations

import collections
import os
from typing import Any

import numpy as np

from mnist_data.sources.catalog import SPLITS
from mnist_data.sources.load import load_splits
from mnist_data.sources.source import resolve_source

Datasets = collections.namedtuple("Datasets", ["train", "validation", "test"])
DEFAULT_VALIDATION_SIZE = 5000
FAKE_DATA = "fake_data is not supported: use the embedded sample (mnist-sample) instead"


def dense_to_one_hot(labels: np.ndarray, num_classes: int = 10) -> np.ndarray:
    """Integer labels [N] to float one-hot rows [N, num_classes]."""
    return np.eye(num_classes)[labels]


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
        pixels = int(np.prod(images.shape[1:]))  # reshape(N, -1) fails for N == 0
        images = images.reshape(len(images), pixels) if reshape else images[..., None]
        if dtype == np.float32:
            images = images.astype(np.float32) * np.float32(1.0 / 255.0)
        self.images, self.labels = images, labels
        self.num_examples, self.epochs_completed = len(images), 0
        self._index_in_epoch = 0
        self._rng = np.random.RandomState(seed)

    def _shuffle(self) -> None:
        order = self._rng.permutation(self.num_examples)
        self.images, self.labels = self.images[order], self.labels[order]

    def next_batch(
        self, batch_size: int, fake_data: bool = False, shuffle: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """The next `batch_size` examples; a batch that crosses an epoch end takes the
        rest of this epoch plus the start of the next (reshuffled) one."""
        if fake_data:
            raise ValueError(FAKE_DATA)
        start = self._index_in_epoch
        if self.epochs_completed == 0 and start == 0 and shuffle:
            self._shuffle()
        end = start + batch_size
        if end <= self.num_examples:
            self._index_in_epoch = end
            return self.images[start:end], self.labels[start:end]
        self.epochs_completed += 1
        rest_images, rest_labels = self.images[start:], self.labels[start:]
        if shuffle:
            self._shuffle()
        self._index_in_epoch = end = batch_size - len(rest_images)
        return (
            np.concatenate((rest_images, self.images[:end])),
            np.concatenate((rest_labels, self.labels[:end])),
        )


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
    """Load MNIST from `train_dir`, downloading what is missing; offline, the embedded sample
    (with a warning), whose default validation split is 10% of train instead of 5,000."""
    if fake_data:
        raise ValueError(FAKE_DATA)
    source = resolve_source("mnist", train_dir, mirrors=[source_url] if source_url else None)
    arrays = load_splits(source, SPLITS)
    (images, labels), test = arrays["train"], arrays["test"]
    if validation_size is None:
        validation_size = len(labels) // 10 if source.fallback else DEFAULT_VALIDATION_SIZE
    if not 0 <= validation_size <= len(images):
        raise ValueError(
            f"validation size should be between 0 and {len(images)}. Received: {validation_size}."
        )
    cut, options = validation_size, dict(dtype=dtype, reshape=reshape, seed=seed)
    parts = (images[cut:], labels[cut:]), (images[:cut], labels[:cut]), test
    return Datasets(
        *(DataSet(x, dense_to_one_hot(y) if one_hot else y, **options) for x, y in parts)
    )
