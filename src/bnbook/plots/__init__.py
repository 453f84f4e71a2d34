"""One figure style for the whole book, and small reusable plot helpers.

Call :func:`use_style` once at the top of a chapter. Colours are fixed per
meaning so that "with BN" is the same colour on every page.
"""
import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np

#: colour per meaning, used by every chapter
COLORS = {
    "plain": "#4C72B0",   # no normalization
    "bn": "#DD8452",      # batch normalization
    "noisy": "#55A868",   # BN followed by injected noise
    "ln": "#8172B3",      # layer normalization
    "gn": "#937860",      # group normalization
    "frozen": "#DA8BC3",  # BN with statistics frozen in the backward pass
    "ref": "#555555",     # theory / reference lines
}

STYLE = {
    "figure.figsize": (7.0, 3.6),
    "figure.dpi": 110,
    "savefig.dpi": 110,
    "figure.constrained_layout.use": True,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "legend.fontsize": 9,
    "legend.frameon": False,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "lines.linewidth": 1.6,
}


def use_style():
    """Apply the book's matplotlib style (idempotent)."""
    mpl.rcParams.update(STYLE)


def band(ax, x, lo, hi, color, label=None, alpha=0.25, line=None):
    """Shade ``lo..hi`` over ``x`` (a min-max band) and optionally draw ``line`` in it."""
    ax.fill_between(x, lo, hi, color=color, alpha=alpha, linewidth=0,
                    label=None if line is not None else label)
    if line is not None:
        ax.plot(x, line, color=color, label=label)
    return ax


def curves(ax, histories, key, xlabel="epoch", ylabel=None, **style):
    """Plot ``history[key]`` for each ``name -> history`` in ``histories``."""
    for name, hist in histories.items():
        ax.plot(range(1, len(hist[key]) + 1), hist[key], label=name,
                color=COLORS.get(name), **style)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel or key)
    ax.legend()
    return ax


from .graphs import bn_graph, bn_graph_paths  # noqa: E402
from .axes3d import NORMS, norm_axes, norm_set  # noqa: E402

__all__ = ["COLORS", "STYLE", "use_style", "band", "curves", "bn_graph",
           "bn_graph_paths",
           "NORMS", "norm_set", "norm_axes", "plt"]
