"""Stochastic gradient descent with momentum and weight decay (PyTorch's convention)."""


class SGD:
    """SGD on a list of :class:`~bnbook.layers.Parameter`.

    With ``g = grad + weight_decay * w`` and velocity ``v``::

        v <- momentum * v + g        (v = g on the first step)
        w <- w - lr * v

    the update PyTorch's ``torch.optim.SGD`` makes (dampening 0, no Nesterov).
    Weight decay applies to every parameter passed in; pass BN's gamma and beta
    in a separate optimizer if they should be exempt. Layers overwrite ``grad``
    on every backward pass, so there is no ``zero_grad``; a parameter whose
    ``grad`` is None is skipped.
    """

    def __init__(self, params, lr, momentum=0.0, weight_decay=0.0):
        if lr <= 0:
            raise ValueError(f"lr must be positive, got {lr}")
        if not 0 <= momentum < 1:
            raise ValueError(f"momentum must lie in [0, 1), got {momentum}")
        if weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
        self.params = list(params)
        self.lr, self.momentum, self.weight_decay = lr, momentum, weight_decay
        self.velocity = [None] * len(self.params)

    def step(self):
        for i, p in enumerate(self.params):
            if p.grad is None:
                continue
            g = p.grad
            if self.weight_decay:
                g = g + self.weight_decay * p.data
            if self.momentum:
                v = self.velocity[i]
                self.velocity[i] = v = g.copy() if v is None else self.momentum * v + g
                g = v
            p.data -= self.lr * g
