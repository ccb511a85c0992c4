"""How the tf.data stages of every pipeline run: the switches and their tf.data.Options."""

from __future__ import annotations

from dataclasses import dataclass

import tensorflow as tf


@dataclass(frozen=True)
class PipelineOptions:
    """How the tf.data stages run; the defaults measured fastest here; tf.data checks values."""

    parallel_calls: int = tf.data.AUTOTUNE
    prefetch: int = tf.data.AUTOTUNE
    deterministic: bool = True
    private_threadpool: int = 0  # 0: tf.data's shared pool
    interleave_cycle: int = 4
    # tf.data's default graph rewrites cost ~10 ms per iterator and gain nothing here: these
    # pipelines are fused and parallel by hand.
    static_optimizations: bool = False


def tf_options(options: PipelineOptions) -> tf.data.Options:
    """The tf.data.Options that `options` stand for."""
    result = tf.data.Options()
    result.deterministic = options.deterministic
    result.experimental_optimization.apply_default_optimizations = options.static_optimizations
    if options.private_threadpool:
        result.threading.private_threadpool_size = options.private_threadpool
    return result
