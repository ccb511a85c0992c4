"""A run's charts: training curves and a grid of predictions (matplotlib, imported only when a
figure is drawn)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mnist_data.fs import atomic_path

if TYPE_CHECKING:
    from matplotlib.figure import Figure

WRONG = "tab:red"


def save_png(figure: Figure, path: str | os.PathLike) -> Path:
    """Render `figure` with Agg to a PNG at `path`, atomically (a reader never sees half a PNG)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(figure)
    path = Path(path)
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=figure.dpi)
    return path


def curves_figure(history: list[dict], title: str = "") -> Figure:
    """Loss and accuracy per epoch, train and test, as a 1000x400 px figure."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    figure = Figure(figsize=(10, 4), dpi=100, layout="constrained")
    epochs = [record["epoch"] for record in history]
    panels = (("loss", "loss", "test_loss"), ("accuracy", "train_accuracy", "test_accuracy"))
    for ax, (name, train, test) in zip(figure.subplots(1, 2), panels):
        ax.plot(epochs, [r[train] for r in history], "o-", markersize=5, label="train")
        ax.plot(epochs, [r[test] for r in history], "s-", markersize=5, label="test")
        ax.set(xlabel="epoch", ylabel=name, xlim=(0.5, max(epochs, default=1) + 0.5))
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        figure.suptitle(title)
    return figure


def caption(true: int, predicted: int, names: Sequence[str] | None = None) -> str:
    """Two caption lines saying which class is the model's answer and which the label."""

    def name(c: int) -> str:
        return names[c] if names and 0 <= c < len(names) else str(c)

    return f"pred: {name(predicted)}\ntrue: {name(true)}"


def predictions_figure(
    images: np.ndarray,
    labels: np.ndarray,
    predicted: np.ndarray,
    names: Sequence[str] | None = None,
    *,
    columns: int = 8,
) -> Figure:
    """The images captioned with predicted and true class; mistakes in red."""
    from matplotlib.figure import Figure

    columns = max(1, min(columns, len(images)))
    rows = max(1, -(-len(images) // columns))
    mistakes = int(np.sum(np.asarray(labels) != np.asarray(predicted)))
    figure = Figure(figsize=(1.3 * columns, 1.65 * rows + 0.4), dpi=100, layout="constrained")
    figure.suptitle(f"{len(images)} test images: {mistakes} predicted wrong (in red)")
    for ax, pixels, true, guess in zip(
        figure.subplots(rows, columns, squeeze=False).flat, images, labels, predicted
    ):
        ax.imshow(pixels, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
        wrong = true != guess
        ax.set_title(
            caption(int(true), int(guess), names), fontsize=8, color=WRONG if wrong else "black"
        )
        ax.set(xticks=[], yticks=[])
        for spine in ax.spines.values():
            spine.set(color=WRONG if wrong else "black", linewidth=2.5 if wrong else 0.5)
    for ax in figure.axes[len(images) :]:
        ax.set_axis_off()
    return figure
