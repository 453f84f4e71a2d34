"""Layers: bookkeeping around the pure functions (see :mod:`bnbook.batchnorm`).

Every layer is a :class:`Module` with ``forward``, ``backward``, ``parameters()``
and explicit ``train()`` / ``eval()``.
"""
from .base import Module, Parameter, Sequential
from .basic import Flatten, Identity, Linear, ReLU, Sigmoid, Tanh
from .conv import Conv2d
from .groupnorm import GroupNorm, LayerNorm
from .norm import BatchNorm
from .renorm import BatchRenorm
from .noise import NoiseInjection
from .pool import AvgPool2d, MaxPool2d
