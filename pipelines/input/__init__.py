"""The input side: tf.data pipelines, their readers, options, service servers and benchmark."""
