"""The computational-graph figures of the backward-pass chapter."""
import matplotlib.pyplot as plt

from . import COLORS


def _check_graph_m(m, largest):
    """Reject a batch size the graph figures cannot draw legibly (2 to ``largest``)."""
    if not isinstance(m, int) or isinstance(m, bool):
        raise TypeError(f"m must be an int, got {type(m).__name__}")
    if not 2 <= m <= largest:
        sizes = ", ".join(map(str, range(2, largest))) + f" or {largest}"
        raise ValueError(f"m must be {sizes} (a legible graph), got {m}")


def _graph_layout(m):
    """Node positions of :func:`bn_graph`: name -> (x, y, TeX label)."""
    rows = [2.0 * (m - 1 - j) for j in range(m)]          # top row first
    mid = rows[0] / 2
    nodes = {"mu": (2.4, mid + 1.0, r"$\mu_B$"),
             "var": (4.0, mid - 1.0, r"$\sigma_B^2$"),
             "loss": (10.0, mid, r"$\ell$")}
    for j, r in enumerate(rows, start=1):
        nodes[f"x{j}"] = (0.0, r, rf"$x_{j}$")
        nodes[f"xh{j}"] = (6.8, r, rf"$\hat x_{j}$")
        nodes[f"y{j}"] = (8.5, r, rf"$y_{j}$")
    return nodes


def _graph_edges(m):
    """(parent, child, local derivative d child / d parent, label position)."""
    edges = [("mu", "var", r"$-2\,\Sigma_k (x_k-\mu_B)/m$", 0.62)]
    for j in range(1, m + 1):
        edges += [
            (f"x{j}", "mu", r"$1/m$", 0.3),
            (f"x{j}", "var", rf"$2(x_{j}-\mu_B)/m$", 0.3),
            (f"x{j}", f"xh{j}", r"$1/\sigma_\epsilon$", 0.82),
            ("mu", f"xh{j}", r"$-1/\sigma_\epsilon$", 0.6),
            ("var", f"xh{j}", rf"$-\hat x_{j}/2\sigma_\epsilon^2$", 0.6),
            (f"xh{j}", f"y{j}", r"$\gamma$", 0.5),
            (f"y{j}", "loss", rf"$g_{j}$", 0.5),
        ]
    return edges


def bn_graph(m=3, ax=None):
    r"""The batch-coupled computational graph of BN for one feature.

    Every input :math:`x_j` feeds :math:`\mu_B`, :math:`\sigma_B^2` and
    :math:`\hat x_j`. Forward edges are grey arrows; each backward edge
    (orange, dashed, pointing from child to parent) is labelled with its
    local derivative, with :math:`\sigma_\epsilon = \sqrt{\sigma_B^2 +
    \epsilon}`. The shared :math:`\gamma, \beta` are left out (their
    gradients are sums).

    Parameters
    ----------
    m : int
        Batch size, 2 to 4 (larger batches are not legible).
    ax : matplotlib Axes, optional
        Where to draw; a new 6.9 x 4.6 in figure if None.

    Returns
    -------
    matplotlib Axes
    """
    _check_graph_m(m, largest=4)
    if ax is None:
        _, ax = plt.subplots(figsize=(6.9, 1.4 + 1.05 * m))
    nodes = _graph_layout(m)
    for a, b, label, t in _graph_edges(m):
        (xa, ya, _), (xb, yb, _) = nodes[a], nodes[b]
        ax.annotate("", xy=(xb, yb), xytext=(xa, ya), arrowprops=dict(
            arrowstyle="-|>", color="#999999", lw=0.9,
            shrinkA=13, shrinkB=13))
        ax.annotate("", xy=(xa, ya), xytext=(xb, yb), arrowprops=dict(
            arrowstyle="-|>", color=COLORS["bn"], lw=1.0, ls="--",
            shrinkA=13, shrinkB=13, connectionstyle="arc3,rad=0.08"))
        left = a == "mu" and b == "var"          # beside the vertical-ish edge
        ax.text(xa + t * (xb - xa) + 0.25 * left, ya + t * (yb - ya), label,
                fontsize=9, ha="left" if left else "center", va="center",
                color="#8a4a1a",
                bbox=dict(boxstyle="round,pad=0.1", fc="white", ec="none",
                          alpha=0.85))
    for name, (xn, yn, label) in nodes.items():
        ax.text(xn, yn, label, ha="center", va="center", fontsize=11,
                bbox=dict(boxstyle="round,pad=0.35", fc="white",
                          ec=COLORS["plain"], lw=1.4))
    ys = [v[1] for v in nodes.values()]
    ax.set_xlim(-0.5, 10.5)
    ax.set_ylim(min(ys) - 0.6, max(ys) + 0.6)
    ax.axis("off")
    return ax


def _paths_layout(m):
    """Node positions of :func:`bn_graph_paths`: name -> (x, y, TeX label)."""
    nodes = {"x1": (0.0, 0.0, r"$x_1$"), "mu": (4.6, 2.4, r"$\mu_B$"),
             "var": (4.6, -2.4, r"$\sigma_B^2$")}
    for i in range(1, m + 1):                # x_hat_1 left of the mu-var edge
        nodes[f"xh{i}"] = (3.2 + (i > 1) * (3.0 + 3.0 * (i - 2)), 0.0,
                           rf"$\hat x_{i}$")
    return nodes


def _paths_edges(m):
    """(child, parent, local derivative d child / d parent, label position)."""
    edges = [("mu", "x1", r"$1/m$", 0.66),
             ("var", "x1", r"$2(x_1-\mu_B)/m$", 0.72),
             ("xh1", "x1", r"$1/\sigma_\epsilon$", 0.5),
             ("var", "mu", r"$0$", 0.5)]
    for i in range(1, m + 1):
        edges += [(f"xh{i}", "mu", r"$-1/\sigma_\epsilon$", 0.45),
                  (f"xh{i}", "var", rf"$-\hat x_{i}/2\sigma_\epsilon^2$",
                   0.4)]
    return edges


def bn_graph_paths(m=3, ax=None):
    r"""The backward paths that end in one input, :math:`x_1`, of BN.

    Only the backward edges are drawn, each an arrow from child to parent
    labelled with its local derivative (:math:`\sigma_\epsilon =
    \sqrt{\sigma_B^2 + \epsilon}`): :math:`x_1` collects from
    :math:`\hat x_1` directly and from every :math:`\hat x_i` through
    :math:`\mu_B` and :math:`\sigma_B^2`. The :math:`\mu_B \to
    \sigma_B^2` edge is labelled 0, the value of its local derivative.

    Parameters
    ----------
    m : int
        Batch size, 2 or 3 (at 4 the labels crowd).
    ax : matplotlib Axes, optional
        Where to draw; a new 5.4 x 3.5 in figure if None (narrower than
        the column, so that it is not scaled down on a phone).

    Returns
    -------
    matplotlib Axes
    """
    _check_graph_m(m, largest=3)
    if ax is None:
        _, ax = plt.subplots(figsize=(5.4, 3.5))
    nodes = _paths_layout(m)
    for a, b, label, t in _paths_edges(m):
        (xa, ya, _), (xb, yb, _) = nodes[a], nodes[b]
        ax.annotate("", xy=(xb, yb), xytext=(xa, ya), arrowprops=dict(
            arrowstyle="-|>", color=COLORS["bn"], lw=1.4,
            shrinkA=21, shrinkB=21))
        ax.text(xa + t * (xb - xa), ya + t * (yb - ya), label, fontsize=11,
                ha="center", va="center", color="#8a4a1a",
                bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none"))
    for name, (xn, yn, label) in nodes.items():
        ax.text(xn, yn, label, ha="center", va="center", fontsize=14,
                bbox=dict(boxstyle="round,pad=0.35", fc="white",
                          ec=COLORS["plain"], lw=1.4))
    xs = [v[0] for v in nodes.values()]
    ax.set_xlim(-0.6, max(xs) + 0.6)
    ax.set_ylim(-2.9, 2.9)
    ax.axis("off")
    return ax


#: the four normalizations of :func:`norm_axes`, in panel order
NORMS = ("BatchNorm", "LayerNorm", "InstanceNorm", "GroupNorm")
