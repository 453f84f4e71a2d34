r"""Batch normalization, equation by equation: the oracle of every fast path.

Each line computes one symbol and cites the book's equation: (2.1)
``fwd-stats`` and (2.2) ``fwd-norm`` in the forward-pass chapter, (3.2)
``bw-chain``, (3.3) ``bw-compact`` and (3.5) ``bw-params`` in the
backward-pass chapter. Everything is computed in float64, with two passes
over the batch (the mean first, then the squared deviations from it), and
written against the array API standard: it runs on NumPy, CuPy and
``array_api_strict`` alike. ``axis`` is the channel axis; every other axis
is the batch, of ``m`` values per channel. Results are float64.
"""
from array_api_compat import array_namespace


def _setup(x, axis):
    """xp, float64 x, batch axes, m, and c: (C,) -> broadcast along axis."""
    xp = array_namespace(x)
    axes = tuple(i for i in range(x.ndim) if i != axis)
    shape = tuple(-1 if i == axis else 1 for i in range(x.ndim))
    m = x.size // x.shape[axis]
    x = xp.astype(x, xp.float64)
    return xp, x, axes, m, lambda v: xp.reshape(v, shape)


def stats(x, axis=1):
    """Per-channel batch mean and biased variance (divide by m)."""
    xp, x, axes, m, c = _setup(x, axis)
    mu = xp.sum(x, axis=axes) / m                        # (2.1) mu_B
    var = xp.sum((x - c(mu)) ** 2, axis=axes) / m        # (2.1) sigma_B^2
    return mu, var


def normalize(x, eps=1e-5, axis=1):
    """The normalized batch and the steps to it: mu, var, inv_std, x_hat."""
    xp, x, axes, m, c = _setup(x, axis)
    mu, var = stats(x, axis)                             # (2.1)
    inv_std = 1.0 / xp.sqrt(var + eps)                   # (2.2)
    x_hat = (x - c(mu)) * c(inv_std)                     # (2.2) x_hat
    return mu, var, inv_std, x_hat


def forward(x, gamma, beta, eps=1e-5, axis=1):
    """Training-mode batch normalization: the output y."""
    xp, x, axes, m, c = _setup(x, axis)
    gamma = xp.astype(gamma, xp.float64)
    beta = xp.astype(beta, xp.float64)
    mu, var, inv_std, x_hat = normalize(x, eps, axis)
    y = c(gamma) * x_hat + c(beta)                       # (2.2) y
    return y


def backward_params(dy, x_hat, axis=1):
    """dgamma, dbeta: gamma and beta are shared by the whole batch."""
    xp, dy, axes, m, c = _setup(dy, axis)
    dgamma = xp.sum(dy * x_hat, axis=axes)               # (3.5)
    dbeta = xp.sum(dy, axis=axes)                        # (3.5)
    return dgamma, dbeta


def backward_staged(dy, x, gamma, eps=1e-5, axis=1):
    """(dx, dgamma, dbeta) by the paper's four chain-rule steps (3.2)."""
    xp, x, axes, m, c = _setup(x, axis)
    dy = xp.astype(dy, xp.float64)
    gamma = xp.astype(gamma, xp.float64)
    mu, var, inv_std, x_hat = normalize(x, eps, axis)
    x_mu = x - c(mu)
    dx_hat = dy * c(gamma)                               # (3.2) step 1
    dvar = (xp.sum(dx_hat * x_mu, axis=axes)
            * -0.5 * inv_std**3)                         # (3.2) step 2
    dmu = (xp.sum(-dx_hat, axis=axes) * inv_std
           + dvar * xp.sum(-2.0 * x_mu, axis=axes) / m)  # (3.2) step 3
    dx = (dx_hat * c(inv_std) + c(dvar) * 2.0 * x_mu / m
          + c(dmu) / m)                                  # (3.2) step 4
    return (dx, *backward_params(dy, x_hat, axis))


def backward(dy, x, gamma, eps=1e-5, axis=1):
    """(dx, dgamma, dbeta) with the compact one-line dx (3.3)."""
    xp, x, axes, m, c = _setup(x, axis)
    dy = xp.astype(dy, xp.float64)
    gamma = xp.astype(gamma, xp.float64)
    mu, var, inv_std, x_hat = normalize(x, eps, axis)
    dx_hat = dy * c(gamma)                               # (3.2) step 1
    dx = c(inv_std) / m * (
        m * dx_hat - c(xp.sum(dx_hat, axis=axes))
        - x_hat * c(xp.sum(dx_hat * x_hat, axis=axes)))  # (3.3)
    return (dx, *backward_params(dy, x_hat, axis))
