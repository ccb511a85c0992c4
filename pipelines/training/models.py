"""The three reference architectures as Keras models: float32 [B,28,28,1] to logits [B, classes]
(the loss and the SavedModel's signature apply the softmax)."""

from __future__ import annotations

from typing import Any


def build_model(model: str, preset: str, num_classes: int, *, dtype: Any = None) -> Any:
    """A built `keras.Sequential` for `model` as `preset` has it, with `num_classes` outputs;
    `dtype`: a layer policy."""
    import keras
    from keras import initializers, layers

    def dense(units: int, activation: str | None = None, **kw: Any) -> Any:
        return layers.Dense(units, activation=activation, dtype=dtype, **kw)

    def conv(filters: int, activation: str | None, padding: str = "same") -> Any:
        return layers.Conv2D(filters, 5, padding=padding, activation=activation, dtype=dtype)

    seed, flat = preset == "seed", layers.Flatten(dtype=dtype)
    if model == "softmax":
        init = initializers.RandomNormal(0.0, 1.0) if seed else "zeros"
        body = [flat, layers.Dense(num_classes, kernel_initializer=init)]
    elif model == "mlp":
        trunc = dict(
            kernel_initializer=initializers.TruncatedNormal(stddev=0.1),
            bias_initializer=initializers.Constant(0.1),
        )
        hidden = dense(500, "relu", **(trunc if seed else dict(kernel_initializer="he_normal")))
        body = [flat, hidden, layers.Dense(num_classes, **(trunc if seed else {}))]
    elif model == "lenet" and seed:
        body = [conv(6, None), layers.AveragePooling2D(2, dtype=dtype)]
        body += [layers.Activation("sigmoid", dtype=dtype), conv(16, None)]
        body += [layers.MaxPooling2D(2, dtype=dtype), conv(120, None), flat, dense(84, "sigmoid")]
        body += [layers.Dense(num_classes)]
    elif model == "lenet":
        body = [conv(6, "relu"), layers.MaxPooling2D(2, dtype=dtype), conv(16, "relu", "valid")]
        body += [layers.MaxPooling2D(2, dtype=dtype), flat, dense(120, "relu")]
        body += [layers.Dropout(0.25, dtype=dtype), dense(84, "relu"), layers.Dense(num_classes)]
    else:
        from pipelines.training.config import MODELS, TrainError

        raise TrainError(f"unknown model {model!r}: expected one of {', '.join(MODELS)}")
    return keras.Sequential([keras.Input((28, 28, 1)), *body], name=f"{model}_{preset}")


def kernels(net: Any) -> list:
    """The weight matrices and filters (not biases): what L2 regularisation applies to."""
    return [v for v in net.trainable_variables if "kernel" in v.path]
