"""bnbook.plots: the batch-coupled graph of the backward chapter."""
import matplotlib

matplotlib.use("Agg")

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


@pytest.mark.parametrize("m, err", [(1, ValueError), (5, ValueError),
                                    (3.0, TypeError), (True, TypeError)])
def test_bn_graph_rejects_bad_m(m, err):
    with pytest.raises(err, match="m must be"):
        plots.bn_graph(m)
