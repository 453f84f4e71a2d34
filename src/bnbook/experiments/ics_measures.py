"""Learning-rate grids and the drift measure of the covariate-shift chapter.

* :func:`best_rate` picks a rate from a grid and says whether it is strictly inside.
* :func:`median_drift` measures how much a distribution moves between records.
* :func:`dln_grid` trains the deep linear network of
  :func:`~bnbook.experiments.covariate_shift.train_deep_linear` at every rate
  of a grid and several seeds, without the (costly) ICS measure.
"""
import numpy as np
from threadpoolctl import threadpool_limits

from .covariate_shift import train_deep_linear


def best_rate(lrs, scores):
    """The rate with the lowest mean score, and whether it lies strictly inside the grid.

    ``lrs`` (K,) increasing; ``scores`` (K, seeds), lower is better (NaN, a
    diverged run, counts as worst). Returns ``(lr, inside)``.
    """
    lrs, scores = np.asarray(lrs, dtype=float), np.asarray(scores, dtype=float)
    if lrs.ndim != 1 or len(lrs) < 3 or np.any(np.diff(lrs) <= 0):
        raise ValueError(f"lrs must be at least 3 increasing rates, got {lrs.tolist()}")
    if scores.ndim != 2 or len(scores) != len(lrs):
        raise ValueError(f"scores must have shape (len(lrs), seeds) = ({len(lrs)}, S), "
                         f"got {scores.shape}")
    mean = np.where(np.isfinite(scores), scores, np.inf).mean(axis=1)
    k = int(np.argmin(mean))
    return float(lrs[k]), 0 < k < len(lrs) - 1


def median_drift(percentiles):
    """How far the median moves from one record to the next.

    ``percentiles`` (..., R, 3, D) as :func:`~bnbook.experiments.ics_fig1.train_fig1`
    returns them. Returns (..., R - 1): the mean over units of
    ``|median_{r+1} - median_r|``.
    """
    med = np.asarray(percentiles)[..., 1, :]                    # (..., R, D)
    if med.shape[-2] < 2:
        raise ValueError(f"need at least 2 records, got {med.shape[-2]}")
    return np.abs(np.diff(med, axis=-2)).mean(axis=-1)


def dln_grid(bn, lrs, steps, seeds=(0, 1, 2), **kwargs):
    """Final training loss of :func:`train_deep_linear` for every rate and seed.

    Returns (len(lrs), len(seeds)); a diverged run gives NaN or inf. ``kwargs``
    go to :func:`train_deep_linear` (``depth``, ``width``, ``n_samples``).
    """
    out = np.empty((len(lrs), len(seeds)))
    with threadpool_limits(limits=1, user_api="blas"), np.errstate(all="ignore"):
        for i, lr in enumerate(lrs):
            for j, s in enumerate(seeds):
                out[i, j] = train_deep_linear(bn, steps, lr, seed=s, ics_every=0,
                                              **kwargs)["loss"][-1]
    return out
