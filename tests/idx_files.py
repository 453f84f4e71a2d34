"""Tiny IDX data sets for the tests of the command line and the full-scale driver."""
import gzip
import struct

import numpy as np


def write_idx_set(directory, n_train=70, n_test=30):
    """Tiny real IDX files (gzipped), random pixels and labels, as full MNIST names them."""
    rng = np.random.default_rng(0)
    directory.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n, dtype=np.uint8)
        for kind, array in (("images-idx3", images), ("labels-idx1", labels)):
            header = struct.pack(">HBB", 0, 0x08, array.ndim)
            header += struct.pack(f">{array.ndim}I", *array.shape)
            path = directory / f"{prefix}-{kind}-ubyte.gz"
            path.write_bytes(gzip.compress(header + array.tobytes()))
    return directory
