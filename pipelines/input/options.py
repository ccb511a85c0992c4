"""How the tf.data stages of every pipeline run: the switches and their tf.data.Options."""

from __future__ import annotations

from dataclasses import dataclass

import tensorflow as tf

from mnist_data.checks import is_whole
from mnist_data.errors import DatasetError

AUTOTUNE = tf.data.AUTOTUNE


@dataclass(frozen=True)
class PipelineOptions:
    """How the tf.data stages run; the defaults are what measured fastest here."""

    parallel_calls: int = AUTOTUNE
    prefetch: int = AUTOTUNE
    deterministic: bool = True
    private_threadpool: int = 0  # 0: tf.data's shared pool
    interleave_cycle: int = 4
    # tf.data's default graph rewrites cost ~10 ms per iterator and gain nothing here: these
    # pipelines are fused and parallel by hand.
    static_optimizations: bool = False

    def __post_init__(self) -> None:
        """Refuse settings tf.data would reject only once a pipeline runs, naming the setting."""
        for name, low in (("parallel_calls", 1), ("prefetch", 0), ("interleave_cycle", 1)):
            value = getattr(self, name)
            if not (is_whole(value, low) or (is_whole(value, -1) and value == AUTOTUNE)):
                raise DatasetError(
                    f"PipelineOptions.{name} must be a whole number >= {low} or AUTOTUNE (-1), "
                    f"got {value!r}"
                )
        if not is_whole(self.private_threadpool, 0):
            raise DatasetError(
                "PipelineOptions.private_threadpool must be a whole number >= 0, "
                f"got {self.private_threadpool!r}"
            )


def tf_options(options: PipelineOptions) -> tf.data.Options:
    """The tf.data.Options that `options` stand for."""
    result = tf.data.Options()
    result.deterministic = options.deterministic
    result.experimental_optimization.apply_default_optimizations = options.static_optimizations
    if options.private_threadpool:
        result.threading.private_threadpool_size = options.private_threadpool
    return result
