"""Training configuration as data: one frozen dataclass and one table of presets: `seed` ones
reproduce the classic TensorFlow tutorials, `modern` ones train the same architectures well."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from mnist_data.errors import MnistDataError

MODELS = ("softmax", "mlp", "lenet")
PRESETS = ("seed", "modern")
SCHEDULES = ("constant", "staircase", "cosine")
_LIMITS = [(name, ">=", 1) for name in ("batch_size", "epochs", "steps_per_call", "max_steps")]
_LIMITS += [("eval_batch_size", ">=", 1), ("op_threads", ">=", 0)]
_LIMITS += [("epochs", "<=", 10**6), ("op_threads", "<=", 1024)]


class TrainError(MnistDataError, ValueError):
    """A training run cannot start or continue: unknown model/preset, run directory conflict."""


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides what a training run computes (saved as RUN_DIR/config.json)."""

    model: str
    preset: str
    batch_size: int
    epochs: int
    optimizer: str  # "sgd" | "adam"
    learning_rate: float
    schedule: str = "constant"  # "constant" | "staircase" (x decay_rate per epoch) | "cosine"
    decay_rate: float = 1.0
    l2: float = 0.0  # coefficient on sum(tf.nn.l2_loss(kernel)), added to the loss
    ema_decay: float | None = None  # evaluate with exponential moving averages of the weights
    max_steps: int | None = None  # stop early once the global step reaches this
    seed: int = 0
    xla: bool = False
    deterministic: bool = True  # op determinism (bit-exact resume); XLA runs without it
    mixed_precision: bool | None = None  # bfloat16 compute; None: only where a GPU runs it
    resident: bool | None = None  # whole split as device tensors; None: only on GPU
    # Steps run by one call of the compiled loop, on one pipeline element stacking their batches
    steps_per_call: int = 50
    eval_batch_size: int = 1000
    # Threads TensorFlow runs ops on (inter- and intra-op), set before TensorFlow starts;
    # None: TensorFlow's default, one per core. See setup.use_op_threads.
    op_threads: int | None = None

    def __post_init__(self) -> None:
        """Refuse settings no run can use, naming the setting, before anything is written."""
        values = dataclasses.asdict(self) | dict(l2=self.l2 or 1.0)  # an l2 of zero is fine
        problems = [
            f"{name} must be {sign} {limit}, got {values[name]}"
            for name, sign, limit in _LIMITS
            if values[name] is not None and (values[name] - limit) * (1 if sign == "<=" else -1) > 0
        ]
        problems += [
            f"{name} must be {'>= 0' if name == 'l2' else '> 0'}, got {getattr(self, name)}"
            for name in ("learning_rate", "decay_rate", "l2")
            if not (values[name] > 0 and math.isfinite(values[name]))
        ]
        if self.ema_decay is not None and not 0 <= self.ema_decay < 1:  # NaN fails this too
            problems.append(f"ema_decay must be in [0, 1), got {self.ema_decay}")
        if not 0 <= self.seed < 2**32:
            problems.append(f"seed must be in 0..2**32-1, got {self.seed}")
        for name, allowed in (("optimizer", ("sgd", "adam")), ("schedule", SCHEDULES)):
            if getattr(self, name) not in allowed:
                problems.append(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")
        if problems:
            raise TrainError(f"{self.model}/{self.preset}: " + "; ".join(problems))

    def replace(self, **changes: object) -> TrainConfig:
        """A copy with the non-None `changes` applied (so CLI defaults of None mean 'preset')."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})


SEED, MODERN = dict(optimizer="sgd"), dict(optimizer="adam", schedule="cosine", batch_size=128)
_PRESETS: dict[tuple[str, str], dict] = {
    # Softmax regression's step is ~100 tiny ops: on one thread it runs 1.1-1.7x faster than on
    # two, and leaves the other cores to the input pipeline. The seed preset is a widely copied
    # TF1 example: W ~ N(0, 1), plain SGD 0.01, batch 100 (0.83 at 25 epochs).
    ("softmax", "seed"): SEED | dict(batch_size=100, epochs=25, learning_rate=0.01, op_threads=1),
    ("softmax", "modern"): MODERN | dict(epochs=10, learning_rate=0.003, op_threads=1),
    # 784-500-10 with L2, staircase decay x0.99 per epoch, EMA of the weights; 10,000 steps of 200.
    ("mlp", "seed"): SEED
    | dict(batch_size=200, epochs=34, learning_rate=0.1, decay_rate=0.99)
    | dict(schedule="staircase", l2=1e-4, ema_decay=0.99, max_steps=10_000),
    # XLA fuses Adam's and the moving average's element-wise passes: 1.4x here on a 2-core CPU
    # (it slows LeNet's convolutions down 3x, and softmax 1.5x, so only here).
    ("mlp", "modern"): MODERN
    | dict(epochs=15, learning_rate=0.001, l2=1e-5, ema_decay=0.999)
    | dict(xla=True),
    ("lenet", "seed"): SEED | dict(batch_size=64, epochs=10, learning_rate=0.1),
    # L2 1e-4 on the kernels: Fashion-MNIST 0.9135 against 0.9099 without (20 epochs); more
    # dropout, batch 64, a higher rate or 30 epochs did no better.
    ("lenet", "modern"): MODERN | dict(epochs=20, learning_rate=0.002, l2=1e-4, ema_decay=0.999),
}


def get_config(model: str, preset: str = "modern", **overrides: object) -> TrainConfig:
    """The preset for `model`, with the non-None `overrides` applied."""
    if (model, preset) not in _PRESETS:
        raise TrainError(
            f"unknown model/preset {model!r}/{preset!r}: expected a model in {MODELS} "
            f"and a preset in {PRESETS}"
        )
    values = _PRESETS[model, preset] | {k: v for k, v in overrides.items() if v is not None}
    return TrainConfig(model, preset, **values)


def config_from_dict(values: dict) -> TrainConfig:
    """Rebuild a config from RUN_DIR/config.json, ignoring keys a newer version may add."""
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    return TrainConfig(**{k: v for k, v in values.items() if k in known})
