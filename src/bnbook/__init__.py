"""bnbook: the NumPy library behind an executable textbook on batch normalization.

Modules
-------
backend     which array module is in use (NumPy, CuPy on request)
batchnorm   the batch-normalization math as pure functions
layers      Module, Parameter, Sequential and the layers (BatchNorm, Linear, Conv2d, ...)
losses      softmax cross-entropy
optim       SGD with momentum and weight decay
init        LeCun, Glorot and Kaiming initializers
"""
__version__ = "0.1.0"
