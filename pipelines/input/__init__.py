"""The input side: tf.data pipelines over IDX arrays, TFRecord shards and PNG trees
(`dataset`), their file readers, options, tf.data service servers and benchmark."""
