"""Which values share one set of statistics: BN, LN, IN and GN drawn as cubes."""
import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np

from . import COLORS


#: the four normalizations of :func:`norm_axes`, in panel order
NORMS = ("BatchNorm", "LayerNorm", "InstanceNorm", "GroupNorm")


def norm_set(kind, N=4, C=6, HW=4, groups=2):
    """Boolean (N, C, HW) mask of the values that share the statistics of x[0, 0, 0].

    BatchNorm: channel 0 over all of N and H*W; LayerNorm: sample 0 over C and
    H*W; InstanceNorm: sample 0, channel 0 over H*W; GroupNorm: sample 0 over the
    C / ``groups`` channels of the first group and H*W.
    """
    if kind not in NORMS:
        raise ValueError(f"kind must be one of {NORMS}, got {kind!r}")
    if C % groups:
        raise ValueError(f"groups must divide C = {C}, got {groups}")
    mask = np.zeros((N, C, HW), dtype=bool)
    n = slice(None) if kind == "BatchNorm" else 0
    c = {"BatchNorm": 0, "LayerNorm": slice(None), "InstanceNorm": 0,
         "GroupNorm": slice(0, C // groups)}[kind]
    mask[n, c, :] = True
    return mask


def _cube(ax, mask, color):
    """Oblique drawing of the (N, C, HW) cells; ``mask`` shaded in ``color``."""
    N, C, HW = mask.shape
    dx, dy = 0.45, 0.35                       # depth (N) goes up and right
    faces, colors = [], []
    for n in range(N - 1, -1, -1):            # back to front, painter's order
        for h in range(HW):
            for c in range(C):
                x0, y0 = c + dx * n, h + dy * n
                fill = color if mask[n, c, h] else "#f2f2f2"
                faces += [
                    [(x0, y0), (x0 + 1, y0), (x0 + 1, y0 + 1), (x0, y0 + 1)],
                    [(x0, y0 + 1), (x0 + 1, y0 + 1), (x0 + 1 + dx, y0 + 1 + dy),
                     (x0 + dx, y0 + 1 + dy)],
                    [(x0 + 1, y0), (x0 + 1 + dx, y0 + dy),
                     (x0 + 1 + dx, y0 + 1 + dy), (x0 + 1, y0 + 1)]]
                colors += [fill] * 3
    ax.add_collection(mpl.collections.PolyCollection(
        faces, facecolors=colors, edgecolors="#777777", linewidths=0.5))
    ax.text(C / 2, -0.7, "C (channels)", ha="center", va="top", fontsize=9)
    ax.text(-0.4, HW / 2, "H·W", ha="right", va="center", fontsize=9,
            rotation=90)
    ax.text(C + 0.3 + dx * N / 2, dy * N / 2 - 0.2, "N (batch)", fontsize=9,
            rotation=38, ha="left", va="top")
    ax.set_xlim(-1.4, C + dx * N + 2.0)
    ax.set_ylim(-1.7, HW + dy * N + 0.3)
    ax.set_aspect("equal")
    ax.axis("off")


def norm_axes(N=4, C=6, HW=4, groups=2):
    """The sets of values BN, LayerNorm, InstanceNorm and GroupNorm normalize over.

    Four panels, 2 x 2, each the (N, C, H*W) cube of a convolutional batch with
    the set of :func:`norm_set` shaded. Returns the figure (6.4 x 4.6 in).
    """
    fig, axes = plt.subplots(2, 2, figsize=(6.4, 4.6))
    color = {"BatchNorm": COLORS["bn"], "LayerNorm": COLORS["ln"],
             "InstanceNorm": COLORS["noisy"], "GroupNorm": COLORS["gn"]}
    for ax, kind in zip(axes.flat, NORMS):
        _cube(ax, norm_set(kind, N, C, HW, groups), color[kind])
        title = f"{kind} ({groups} groups)" if kind == "GroupNorm" else kind
        ax.set_title(title, fontsize=10)
    return fig
