"""Figures of ``python -m bnbook``: learning curves and a grid of test predictions.

Both use the book's style and colours (:mod:`bnbook.plots`): a run without BN in
``COLORS['plain']``, a run with BN in ``COLORS['bn']``. The curves carry a
marker per epoch, so a run of one epoch still shows its point, and the epoch
axis has integer ticks. The grid puts ``predicted (true)`` above each test
image, green where they agree and red where they do not, as the review of
Ioffe and Szegedy that the LeNet chapter replicates does in its figures.
The Agg backend is selected, so no display is needed.
"""
import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from .plots import COLORS, plt, use_style  # noqa: E402

RIGHT, WRONG = "#1B7F3B", "#C62828"   # green, red of the prediction grid


def _color(history):
    return COLORS["bn" if history.get("bn") else "plain"]


def curves_figure(runs):
    """Loss and accuracy per epoch of every run: train dashed with circles, test solid.

    Parameters
    ----------
    runs : dict
        ``name -> history`` (the dict :func:`bnbook.train.fit` returns, with a
        ``bn`` flag); runs without a finished epoch are skipped.

    Returns
    -------
    matplotlib.figure.Figure
    """
    use_style()
    fig, axes = plt.subplots(1, 2, figsize=(6.9, 3.3))
    last = 1
    for name, hist in runs.items():
        epochs = np.arange(1, len(hist["train_loss"]) + 1)
        last = max(last, len(epochs))
        style = dict(color=_color(hist), markersize=4)
        for ax, key in zip(axes, ("loss", "acc")):
            ax.plot(epochs, hist[f"train_{key}"], "--o", label=f"{name} train", **style)
            ax.plot(epochs, hist[f"test_{key}"], "-s", label=f"{name} test", **style)
    for ax, label in zip(axes, ("cross-entropy", "accuracy")):
        ax.set(xlabel="epoch", ylabel=label, xlim=(0.5, last + 0.5))
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
    axes[0].set_title("loss")
    axes[1].set_title("accuracy")
    # below the axes, so that it never hides a point
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center",
               ncols=2 * len(runs))
    return fig


def predictions_figure(predictions, images, labels, rows=4, cols=6):
    """A grid of test images per run, titled ``predicted (true)`` in green or red.

    Parameters
    ----------
    predictions : dict
        ``name -> predicted labels (N,)``, all for the same ``images``.
    images : array (N, 1, H, W)
        Test images in the order of ``labels``; the first ``rows * cols`` are shown.
    labels : array (N,)
        True labels.

    Returns
    -------
    matplotlib.figure.Figure
    """
    use_style()
    shown = min(rows * cols, len(labels))
    fig = plt.figure(figsize=(3.45 * len(predictions), 3.4))
    subfigs = np.atleast_1d(fig.subfigures(1, len(predictions)))
    for sub, (name, pred) in zip(subfigs, predictions.items()):
        axes = sub.subplots(rows, cols)
        for i, ax in enumerate(axes.flat):
            ax.set_axis_off()
            if i >= shown:
                continue
            ax.imshow(images[i, 0], cmap="gray_r")
            right = pred[i] == labels[i]
            ax.set_title(f"{pred[i]} ({labels[i]})", fontsize=9, pad=2,
                         color=RIGHT if right else WRONG)
        correct = int((pred[:shown] == labels[:shown]).sum())
        sub.suptitle(f"{name}: {correct} of {shown} right", fontsize=10)
    fig.supxlabel("predicted (true) label: green right, red wrong", fontsize=9)
    return fig
