"""How the tf.data stages of every pipeline run: the switches and their tf.data.Options."""

from __future__ import annotations

from dataclasses import dataclass

import tensorflow as tf

AUTOTUNE = tf.data.AUTOTUNE


@dataclass(frozen=True)
class PipelineOptions:
    """How the tf.data stages run; the defaults are what measured fastest here. Values tf.data
    refuses (parallel_calls=0, say) are refused by tf.data as the pipeline is built."""

    parallel_calls: int = AUTOTUNE
    prefetch: int = AUTOTUNE
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
