"""The TF1 tutorial API on the embedded sample, including a real tutorial training loop."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from mnist_data import input_data


@pytest.fixture
def mnist_dir(tmp_path: Path, sample_dir: Path) -> Path:
    directory = tmp_path / "MNIST_data"
    directory.mkdir()
    for path in sample_dir.glob("*.gz"):
        shutil.copy(path, directory / path.name)
    return directory


def test_shapes_scaling_and_validation_split(mnist_dir: Path) -> None:
    mnist = input_data.read_data_sets(str(mnist_dir), one_hot=True, validation_size=100)
    assert mnist.train.images.shape == (1500, 784) and mnist.train.images.dtype == np.float32
    assert mnist.validation.num_examples == 100 and mnist.test.labels.shape == (400, 10)
    assert 0.0 <= mnist.train.images.min() and mnist.train.images.max() == pytest.approx(1.0)
    plain = input_data.read_data_sets(
        str(mnist_dir), reshape=False, dtype=np.uint8, validation_size=100
    )
    assert plain.train.images.shape == (1500, 28, 28, 1) and plain.train.images.dtype == np.uint8
    np.testing.assert_array_equal(
        plain.validation.images[:, :, :, 0].reshape(100, -1),
        (mnist.validation.images * 255).round().astype(np.uint8),
    )
    np.testing.assert_array_equal(mnist.validation.labels.argmax(1), plain.validation.labels)
    with pytest.raises(ValueError, match="validation size"):
        input_data.read_data_sets(str(mnist_dir), validation_size=5000)


def test_next_batch_epoch_boundary_semantics() -> None:
    images = np.arange(10, dtype=np.uint8).reshape(10, 1, 1).repeat(28, 1).repeat(28, 2)
    data = input_data.DataSet(images, np.arange(10, dtype=np.uint8), dtype=np.uint8, seed=3)
    seen = [data.next_batch(4)[1] for _ in range(2)]
    assert data.epochs_completed == 0
    crossing = data.next_batch(4)[1]  # 2 left in epoch 0, then 2 from the reshuffled epoch 1
    assert data.epochs_completed == 1
    first_epoch = np.concatenate(seen + [crossing[:2]])
    assert sorted(first_epoch.tolist()) == list(range(10))
    unshuffled = input_data.DataSet(images, np.arange(10, dtype=np.uint8), dtype=np.uint8)
    assert unshuffled.next_batch(3, shuffle=False)[1].tolist() == [0, 1, 2]
    seeded = [
        input_data.DataSet(images, np.arange(10, dtype=np.uint8), seed=7).next_batch(5)[1].tolist()
        for _ in range(2)
    ]
    assert seeded[0] == seeded[1]
    long = input_data.DataSet(
        np.zeros((100, 28, 28), np.uint8), np.arange(100) % 256, dtype=np.uint8, seed=7
    )
    epochs = [np.concatenate([long.next_batch(20)[1] for _ in range(5)]) for _ in range(2)]
    for order in epochs:  # each epoch a permutation, not the stored order; the second one new
        assert sorted(order.tolist()) == list(range(100)) and order.tolist() != list(range(100))
    assert epochs[0].tolist() != epochs[1].tolist()


def test_seed_tutorial_softmax_regression_trains(mnist_dir: Path) -> None:
    """The classic `mnist.train.next_batch(100)` softmax loop, in TF2 eager."""
    import tensorflow as tf

    mnist = input_data.read_data_sets(str(mnist_dir), one_hot=True, validation_size=0, seed=0)
    W = tf.Variable(tf.zeros([784, 10]))
    b = tf.Variable(tf.zeros([10]))
    optimizer = tf.keras.optimizers.SGD(0.5)
    for _ in range(300):
        batch_xs, batch_ys = mnist.train.next_batch(100)
        with tf.GradientTape() as tape:
            logits = tf.matmul(batch_xs, W) + b
            loss = tf.reduce_mean(
                tf.nn.softmax_cross_entropy_with_logits(labels=batch_ys, logits=logits)
            )
        optimizer.apply_gradients(zip(tape.gradient(loss, [W, b]), [W, b]))
    predictions = tf.argmax(tf.matmul(mnist.test.images, W) + b, 1)
    accuracy = float(
        tf.reduce_mean(tf.cast(tf.equal(predictions, tf.argmax(mnist.test.labels, 1)), tf.float32))
    )
    assert accuracy > 0.80
    assert mnist.train.epochs_completed >= 18


def test_offline_empty_dir_falls_back_to_sample(tmp_path: Path) -> None:
    with pytest.warns(UserWarning, match="embedded"):
        mnist = input_data.read_data_sets(
            str(tmp_path / "MNIST_data"), source_url="http://127.0.0.1:9/"
        )
    assert mnist.train.num_examples + mnist.validation.num_examples == 1600
    assert mnist.validation.num_examples == 160
