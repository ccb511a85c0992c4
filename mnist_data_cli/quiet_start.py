"""Starting TensorFlow without its start-up chatter on the terminal (for the command and the
main job alike)."""

from __future__ import annotations

import os
import re
import sys


def _is_start_up_chatter(line: str) -> bool:
    """TensorFlow's start-up lines: INFO and WARNING records, absl's notice, and CUDA's absence on
    a machine without a GPU (the run goes on on the CPU and says so)."""
    return (
        re.match(r"[IW]\d{4} \d\d:\d\d:\d\d", line) is not None
        or line.startswith(
            (
                "WARNING: All log messages before absl::InitializeLog()",
                "To enable the following instructions:",
            )
        )
        or (re.match(r"E\d{4} ", line) is not None and "failed call to cuInit" in line)
    )


def start_tensorflow_quietly() -> None:
    """Import TensorFlow and find its devices with file descriptor 2 sent to a file, then pass on
    everything but its start-up chatter. Why: TensorFlow writes those lines before its logging
    is set up, where TF_CPP_MIN_LOG_LEVEL cannot hide them (TF_CPP_MIN_LOG_LEVEL=0 shows them)."""
    import tempfile

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # later INFO and WARNING records
    if os.environ["TF_CPP_MIN_LOG_LEVEL"] == "0" or "tensorflow" in sys.modules:
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow as tf

            tf.config.list_physical_devices("GPU")
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            lines = captured.read().decode(errors="replace").splitlines(keepends=True)
            sys.stderr.write("".join(line for line in lines if not _is_start_up_chatter(line)))
            sys.stderr.flush()
