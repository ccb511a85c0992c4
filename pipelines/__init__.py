"""pipelines: tf.data input over mnist_data's outputs, and the reference trainers."""
