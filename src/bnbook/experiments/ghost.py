"""Ghost batches: BN layers that normalize each micro-batch of an SGD batch
on its own, as ``k`` data-parallel devices without synchronized statistics do
(Hoffer et al., 2017; Ioffe's small-minibatch set-up for Batch Renormalization).
"""
import numpy as np

from ..layers import BatchNorm, BatchRenorm


class _Ghost:
    """Mixin: in training mode each consecutive micro-batch of ``size`` samples
    is normalized on its own (and updates the running statistics); the
    gradients of ``gamma`` and ``beta`` are summed over the micro-batches."""
    size = None

    def forward(self, x):
        self._parts = None
        if not self.training or self.size is None or len(x) <= self.size:
            return super().forward(x)
        ys, self._parts = [], []
        for i in range(0, len(x), self.size):
            ys.append(super().forward(x[i:i + self.size]))
            self._parts.append((self.cache, getattr(self, "r", None),
                                getattr(self, "d", None)))
        if isinstance(self, BatchRenorm):     # every micro-batch's r and d
            self.r = np.stack([p[1] for p in self._parts])
            self.d = np.stack([p[2] for p in self._parts])
        return np.concatenate(ys)

    def backward(self, dy):
        if self._parts is None:
            return super().backward(dy)
        r, d, dxs, grads = getattr(self, "r", None), getattr(self, "d", None), [], 0
        for i, (self.cache, *rd) in enumerate(self._parts):
            if r is not None:
                self.r, self.d = rd
            dxs.append(super().backward(dy[i * self.size:(i + 1) * self.size]))
            grads = grads + np.stack([self.gamma.grad, self.beta.grad])
        self.gamma.grad, self.beta.grad = grads[0], grads[1]
        if r is not None:
            self.r, self.d = r, d
        return np.concatenate(dxs)


class GhostBatchNorm(_Ghost, BatchNorm):
    """BatchNorm over micro-batches of ``size`` in training mode."""


class GhostBatchRenorm(_Ghost, BatchRenorm):
    """BatchRenorm over micro-batches of ``size`` in training mode."""
