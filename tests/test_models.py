"""The architectures and the pieces of the classic recipes, pinned layer by layer."""

from __future__ import annotations

import keras
import numpy as np

from mnist_data import resolve_source
from pipelines.training.config import get_config
from pipelines.training.models import build_model, kernels


def layer_summary(net) -> list[tuple]:
    rows = []
    for layer in net.layers:
        config = layer.get_config()
        rows.append(
            (
                type(layer).__name__,
                config.get("filters") or config.get("units") or config.get("pool_size"),
                config.get("padding"),
                config.get("activation"),
            )
        )
    return rows


def test_lenet_seed_is_the_tutorial_network():
    assert layer_summary(build_model("lenet", "seed", 10)) == [
        ("Conv2D", 6, "same", "linear"),
        ("AveragePooling2D", (2, 2), "valid", None),
        ("Activation", None, None, "sigmoid"),
        ("Conv2D", 16, "same", "linear"),
        ("MaxPooling2D", (2, 2), "valid", None),
        ("Conv2D", 120, "same", "linear"),
        ("Flatten", None, None, None),
        ("Dense", 84, None, "sigmoid"),
        ("Dense", 10, None, "linear"),
    ]


def test_mlp_is_784_500_10_relu_and_softmax_is_one_dense_layer():
    for preset in ("seed", "modern"):
        mlp = build_model("mlp", preset, 10)
        assert [tuple(v.shape) for v in mlp.trainable_variables] == [
            (784, 500),
            (500,),
            (500, 10),
            (10,),
        ]
        assert layer_summary(mlp)[1] == ("Dense", 500, None, "relu")
        softmax = build_model("softmax", preset, 10)
        assert [tuple(v.shape) for v in softmax.trainable_variables] == [(784, 10), (10,)]


def test_every_model_has_one_output_a_class():
    for model in ("softmax", "mlp", "lenet"):
        for preset in ("seed", "modern"):
            assert build_model(model, preset, 47).output_shape == (None, 47)


def test_seed_initialisers_are_the_tutorials():
    keras.utils.set_random_seed(0)
    weights = build_model("softmax", "seed", 10).trainable_variables[0].numpy()
    assert abs(weights.std() - 1.0) < 0.03 and abs(weights.mean()) < 0.03  # W ~ N(0, 1)
    assert not build_model("softmax", "modern", 10).trainable_variables[0].numpy().any()  # zeros
    kernel, bias = (v.numpy() for v in build_model("mlp", "seed", 10).trainable_variables[:2])
    assert (
        np.abs(kernel).max() <= 0.2 + 1e-6 and 0.08 < kernel.std() < 0.1
    )  # truncated at 2 stddev of 0.1
    np.testing.assert_allclose(bias, 0.1)


def test_l2_takes_the_kernels_only():
    net = build_model("lenet", "seed", 10)
    assert [v.path.rsplit("/", 1)[-1] for v in kernels(net)] == ["kernel"] * 5
    assert len(net.trainable_variables) == 10


def test_moving_average_follows_the_classic_rule():
    from pipelines.training.step import create_state, update_averages

    config = get_config("mlp", "seed", epochs=1)
    trainer = create_state(config, resolve_source("mnist-sample"), need_train=False)
    for average in trainer.ema:
        average.assign(np.zeros(average.shape, np.float32))
    for variable in trainer.model.trainable_variables:
        variable.assign(np.ones(variable.shape, np.float32))
    for step, decay in ((0, min(0.99, 1 / 10)), (990, min(0.99, 991 / 1000))):
        trainer.optimizer.iterations.assign(step)
        before = trainer.ema[0].numpy().copy()
        update_averages(trainer)
        np.testing.assert_allclose(trainer.ema[0].numpy(), decay * before + (1 - decay), rtol=1e-6)
