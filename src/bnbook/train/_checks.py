"""Argument checks shared by the training loops and the evaluation helpers."""
import math
import numbers


def check_int(name, value, minimum):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")


def check_xy(x, y, what):
    if not hasattr(x, "shape") or not hasattr(y, "shape"):
        raise TypeError(f"{what}: images and labels must be arrays, got "
                        f"{type(x).__name__} and {type(y).__name__}")
    if y.ndim != 1 or len(x) != len(y):
        raise ValueError(f"{what}: expected labels (N,) matching images (N, ...), got "
                         f"images {tuple(x.shape)} and labels {tuple(y.shape)}")
    if y.dtype.kind not in "iu":
        raise TypeError(f"{what}: labels must be integers, got dtype {y.dtype}")
    if len(y) == 0:
        raise ValueError(f"{what}: no examples")


def check_model_and_data(model, data):
    for name in ("forward", "backward", "parameters", "train", "eval"):
        if not callable(getattr(model, name, None)):
            raise TypeError(f"model must be a bnbook Module with {name}(), "
                            f"got {type(model).__name__}")
    if not isinstance(data, tuple) or len(data) != 4:
        raise TypeError("data must be a Dataset (x_train, y_train, x_test, y_test), "
                        f"got {type(data).__name__}")
    check_xy(data[0], data[1], "training data")
    check_xy(data[2], data[3], "test data")


def check_lr(lr):
    if isinstance(lr, bool) or not isinstance(lr, numbers.Real) or not math.isfinite(lr) \
            or lr <= 0:
        raise ValueError(f"lr must be a positive finite number, got {lr!r}")


def check_callbacks(**callbacks):
    for name, cb in callbacks.items():
        if cb is not None and not callable(cb):
            raise TypeError(f"{name} must be callable, got {type(cb).__name__}")
