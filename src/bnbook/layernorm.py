"""Layer and group normalization as pure functions (array API: NumPy, CuPy, ...).

Both normalize each *sample* on its own, so, unlike batch normalization, the
output of one sample never depends on the rest of the batch and training and
inference compute the same thing (no running statistics).

Group normalization (Wu & He, 2018) splits the ``C`` channels of a sample
``x[n]`` of shape ``(C, *spatial)`` into ``G`` groups of ``C/G`` consecutive
channels and normalizes each group over its ``m = (C/G) * prod(spatial)``
entries::

    mu[n, g]      = mean of the group's entries
    var[n, g]     = biased variance (1/m) of the group's entries
    x_hat         = (x - mu[n, g]) / sqrt(var[n, g] + eps)       # eps inside the root
    y[n, c, ...]  = gamma[c] * x_hat[n, c, ...] + beta[c]        # per-channel affine

Layer normalization (Ba et al., 2016) is the case ``G = 1``: every non-batch
entry of a sample is normalized together, with a per-feature (2-D input) or
per-channel (4-D input) affine, as ``torch.nn.functional.layer_norm(x, (D,))``
for ``(N, D)`` and ``torch.nn.functional.group_norm(x, 1)`` for ``(N, C, H, W)``.

Functions
---------
layer_norm(x, gamma, beta, eps=1e-5) -> (y, cache)
group_norm(x, gamma, beta, num_groups, eps=1e-5) -> (y, cache)
backward(dy, cache) -> (dx, dgamma, dbeta)      (for either)
"""
import numbers

from .backend import array_namespace


def _check(x, gamma, beta, num_groups, eps):
    if not hasattr(x, "shape") or not hasattr(x, "ndim"):
        raise TypeError(f"x must be an array of shape (N, C) or (N, C, H, W), "
                        f"got {type(x).__name__}")
    if x.ndim < 2:
        raise ValueError(f"x must have shape (N, C) or (N, C, H, W) (at least 2 axes), "
                         f"got shape {tuple(x.shape)}")
    channels = x.shape[1]
    for name, p in (("gamma", gamma), ("beta", beta)):
        if not hasattr(p, "shape") or tuple(p.shape) != (channels,):
            shape = tuple(p.shape) if hasattr(p, "shape") else type(p).__name__
            raise ValueError(f"{name} must have shape (C,) = ({channels},) for x of shape "
                             f"{tuple(x.shape)}, got {shape}")
    if not isinstance(num_groups, numbers.Integral) or isinstance(num_groups, bool):
        raise TypeError(f"num_groups must be an int, got {type(num_groups).__name__}")
    if num_groups < 1 or channels % num_groups:
        raise ValueError(f"num_groups must be a positive divisor of the {channels} channels, "
                         f"got {num_groups}")
    if not eps >= 0:
        raise ValueError(f"eps must be >= 0, got {eps}")


def _channel_shape(x):
    # (1, C, 1, ..., 1): broadcasts a per-channel vector against x
    return (1, x.shape[1]) + (1,) * (x.ndim - 2)


def group_norm(x, gamma, beta, num_groups, eps=1e-5):
    """Group normalization of ``x`` (N, C, *spatial) with ``num_groups`` groups.

    Returns ``(y, cache)``; ``y`` has the shape and dtype of ``x``. The statistics
    use the biased variance (1/m) with ``eps`` inside the square root, as PyTorch.
    """
    _check(x, gamma, beta, num_groups, eps)
    xp = array_namespace(x, gamma, beta)
    n = x.shape[0]
    xg = xp.reshape(x, (n, num_groups, -1))                  # (N, G, m)
    mu = xp.mean(xg, axis=2, keepdims=True)                  # (N, G, 1)
    var = xp.var(xg, axis=2, keepdims=True)                  # biased, 1/m
    inv_std = 1.0 / xp.sqrt(var + eps)                       # (N, G, 1)
    x_hat = xp.reshape((xg - mu) * inv_std, x.shape)         # like x
    gamma_b = xp.reshape(gamma, _channel_shape(x))
    y = gamma_b * x_hat + xp.reshape(beta, _channel_shape(x))
    cache = {"x_hat": x_hat, "inv_std": inv_std, "gamma": gamma, "num_groups": num_groups}
    return y, cache


def layer_norm(x, gamma, beta, eps=1e-5):
    """Layer normalization: all non-batch entries of each sample together (``G = 1``)."""
    return group_norm(x, gamma, beta, 1, eps)


def backward(dy, cache):
    """Gradients of group (or layer) normalization: ``(dx, dgamma, dbeta)``.

    With ``dx_hat = gamma * dy`` and, per sample and group, the means over the
    group's ``m`` entries written ``<.>``::

        dx = inv_std * (dx_hat - <dx_hat> - x_hat * <dx_hat * x_hat>)

    (the same projection as batch normalization, taken over a group of one
    sample instead of over the batch); ``dgamma = Σ dy * x_hat`` and
    ``dbeta = Σ dy``, summed over every axis but the channel axis.
    """
    x_hat, inv_std, gamma = cache["x_hat"], cache["inv_std"], cache["gamma"]
    if tuple(dy.shape) != tuple(x_hat.shape):
        raise ValueError(f"dy must have the shape of the forward input {tuple(x_hat.shape)}, "
                         f"got {tuple(dy.shape)}")
    xp = array_namespace(dy, x_hat)
    axes = (0,) + tuple(range(2, dy.ndim))                   # all but the channel axis
    dgamma = xp.sum(dy * x_hat, axis=axes)                   # (C,)
    dbeta = xp.sum(dy, axis=axes)                            # (C,)
    n, groups = dy.shape[0], cache["num_groups"]
    dx_hat = xp.reshape(dy * xp.reshape(gamma, _channel_shape(dy)), (n, groups, -1))
    xg_hat = xp.reshape(x_hat, (n, groups, -1))              # (N, G, m)
    mean_dx_hat = xp.mean(dx_hat, axis=2, keepdims=True)
    mean_dx_hat_x_hat = xp.mean(dx_hat * xg_hat, axis=2, keepdims=True)
    dx = inv_std * (dx_hat - mean_dx_hat - xg_hat * mean_dx_hat_x_hat)
    return xp.reshape(dx, dy.shape), dgamma, dbeta


__all__ = ["group_norm", "layer_norm", "backward"]
