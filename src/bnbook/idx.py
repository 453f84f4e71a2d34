"""The IDX file format of full MNIST and Fashion-MNIST: a checked reader.

:func:`read_idx` reads one file (gzipped or not) and refuses a damaged one with
a ValueError naming it; :func:`load_idx` reads one split of a directory as
float32 images (N, 1, H, W) in [0, 1] and int64 labels.
"""
import gzip
import os
import struct
import zlib
from pathlib import Path

import numpy as np

#: IDX element type code -> big-endian NumPy dtype (the IDX format's table)
IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}

#: file stems of the IDX sets, by split
IDX_NAMES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


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
