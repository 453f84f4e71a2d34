"""Softmax cross-entropy, fused with its gradient."""
from . import backend


def softmax_cross_entropy(logits, labels):
    """Mean cross-entropy of ``softmax(logits)`` against integer ``labels``.

    Parameters
    ----------
    logits : array (N, K)
    labels : integer array (N,) with values in [0, K)

    Returns
    -------
    loss : float
        ``-(1/N) Σ_n log softmax(logits)[n, labels[n]]``
    dlogits : array (N, K)
        ``(softmax(logits) - onehot(labels)) / N``, the gradient of ``loss``.
    """
    xp = backend.array_module(logits)
    if logits.ndim != 2:
        raise ValueError(f"logits must have shape (N, K), got {tuple(logits.shape)}")
    if labels.shape != (logits.shape[0],):
        raise ValueError(f"labels must have shape ({logits.shape[0]},) to match logits "
                         f"{tuple(logits.shape)}, got {tuple(labels.shape)}")
    if labels.dtype.kind not in "iu":
        raise TypeError(f"labels must be integers, got dtype {labels.dtype}")
    n, k = logits.shape
    if n and (int(labels.min()) < 0 or int(labels.max()) >= k):
        raise ValueError(f"labels must lie in [0, {k}), got range "
                         f"[{int(labels.min())}, {int(labels.max())}]")
    shifted = logits - logits.max(axis=1, keepdims=True)     # (N, K), max 0: no overflow
    log_z = xp.log(xp.exp(shifted).sum(axis=1, keepdims=True))
    log_p = shifted - log_z                                   # log softmax
    rows = xp.arange(n)
    loss = -float(log_p[rows, labels].mean())
    dlogits = xp.exp(log_p)
    dlogits[rows, labels] -= 1
    dlogits /= n
    return loss, dlogits
