"""File formats read and written without TensorFlow: IDX, gzip, TFRecord, PNG."""
