"""bnbook.plots: the batch-coupled graph of the backward chapter, and the
normalization sets of the forward chapter."""
import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from bnbook import plots  # noqa: E402


@pytest.mark.parametrize("m", [2, 3, 4])
def test_bn_graph_edges_and_nodes(m):
    ax = plots.bn_graph(m)
    fwd = [a for a in ax.texts if a.get_text() == ""]       # annotations
    # per x_j: mu, var, x_hat_j; mu -> x_hat_j, var -> x_hat_j, y_j, loss;
    # plus mu -> var, and each edge drawn forward and backward
    assert len(fwd) == 2 * (7 * m + 1)
    labels = {t.get_text() for t in ax.texts}
    for j in range(1, m + 1):
        assert rf"$x_{j}$" in labels and rf"$g_{j}$" in labels
    assert r"$\mu_B$" in labels and r"$\sigma_B^2$" in labels
    plots.plt.close(ax.figure)


def test_bn_graph_is_legible():
    ax = plots.bn_graph(4)
    assert ax.figure.get_size_inches()[0] <= 6.9
    assert min(t.get_fontsize() for t in ax.texts) >= 9
    plots.plt.close(ax.figure)


@pytest.mark.parametrize("graph, m, err", [
    ("bn_graph", 1, ValueError), ("bn_graph", 5, ValueError),
    ("bn_graph", 3.0, TypeError), ("bn_graph", True, TypeError),
    ("bn_graph_paths", 1, ValueError), ("bn_graph_paths", 4, ValueError),
    ("bn_graph_paths", 3.0, TypeError), ("bn_graph_paths", False, TypeError)])
def test_backward_graphs_reject_bad_m(graph, m, err):
    with pytest.raises(err, match="m must be"):
        getattr(plots, graph)(m)



def _reference_set(kind, x, groups):
    """Which values share x[0, 0, 0]'s statistics, from the definitions."""
    N, C, HW = x.shape
    if kind == "BatchNorm":        # per channel, over N and H*W
        return np.broadcast_to(np.arange(C)[None, :, None] == 0, x.shape)
    n = np.arange(N)[:, None, None] == 0
    if kind == "LayerNorm":        # per sample, over C and H*W
        return np.broadcast_to(n, x.shape)
    if kind == "InstanceNorm":     # per sample and channel, over H*W
        return np.broadcast_to(n & (np.arange(C)[None, :, None] == 0), x.shape)
    group = np.arange(C) // (C // groups)   # per sample and channel group
    return np.broadcast_to(n & (group[None, :, None] == 0), x.shape)


@pytest.mark.parametrize("kind", plots.NORMS)
@pytest.mark.parametrize("shape,groups", [((4, 6, 4), 2), ((3, 8, 5), 4)])
def test_norm_set_matches_definition(kind, shape, groups):
    N, C, HW = shape
    mask = plots.norm_set(kind, N, C, HW, groups)
    expected = _reference_set(kind, np.zeros(shape), groups)
    assert mask.shape == shape and mask.dtype == bool
    np.testing.assert_array_equal(mask, expected)
    sizes = {"BatchNorm": N * HW, "LayerNorm": C * HW,
             "InstanceNorm": HW, "GroupNorm": C // groups * HW}
    assert mask.sum() == sizes[kind]


def test_norm_set_rejects_bad_arguments():
    with pytest.raises(ValueError, match="kind must be one of"):
        plots.norm_set("BatchNorm2d")
    with pytest.raises(ValueError, match="groups must divide C"):
        plots.norm_set("GroupNorm", C=6, groups=4)


def test_norm_axes_draws_four_panels_in_the_column():
    fig = plots.norm_axes()
    try:
        assert len(fig.axes) == 4
        assert fig.get_size_inches()[0] <= 6.9
        titles = [ax.get_title() for ax in fig.axes]
        assert titles[:3] == ["BatchNorm", "LayerNorm", "InstanceNorm"]
        assert titles[3].startswith("GroupNorm")
        # one shaded face triple per cell of the set, the rest light grey
        faces = fig.axes[0].collections[0].get_facecolors()
        shaded = (np.abs(faces[:, :3] - 0.949) > 0.01).any(axis=1)
        assert shaded.sum() == 3 * plots.norm_set("BatchNorm").sum()
    finally:
        plots.plt.close(fig)


def _boxes(ax):
    """Display-space boxes of the edge labels and of the nodes."""
    ax.figure.canvas.draw()
    r = ax.figure.canvas.get_renderer()
    return [t.get_bbox_patch().get_window_extent(r) for t in ax.texts
            if t.get_text()]


@pytest.mark.parametrize("m", [2, 3])
def test_bn_graph_paths_edges_labels_and_no_overlap(m):
    ax = plots.bn_graph_paths(m)
    try:
        arrows = [a for a in ax.texts if a.get_text() == ""]
        # x1 <- mu, var, x_hat_1; mu <- var; mu, var <- each x_hat_i
        assert len(arrows) == 4 + 2 * m
        labels = [t.get_text() for t in ax.texts if t.get_text()]
        assert labels.count(r"$-1/\sigma_\epsilon$") == m
        assert r"$0$" in labels and r"$2(x_1-\mu_B)/m$" in labels
        assert ax.figure.get_size_inches()[0] <= 6.9
        assert min(t.get_fontsize() for t in ax.texts if t.get_text()) >= 9
        boxes = _boxes(ax)
        for i, a in enumerate(boxes):               # no label on a label
            for b in boxes[i + 1:]:
                assert not a.overlaps(b), (a, b)
        # no label box is crossed by an arrow other than its own edge
        r = ax.figure.canvas.get_renderer()
        texts = [t for t in ax.texts if t.get_text()]
        for k, arrow in enumerate(arrows):
            # the arrow's path, in display space once drawn
            path = arrow.arrow_patch.get_path().interpolated(200)
            px, py = path.vertices.T
            own = texts[k]                          # label drawn after it
            for t in texts:
                if t is own:
                    continue
                box = t.get_bbox_patch().get_window_extent(r)
                inside = ((px > box.x0) & (px < box.x1)
                          & (py > box.y0) & (py < box.y1))
                assert not inside.any(), (k, t.get_text())
    finally:
        plots.plt.close(ax.figure)
