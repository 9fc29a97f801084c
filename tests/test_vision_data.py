"""Dataset loaders: small IDX and .npz files written here, valid and corrupt ones."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from miragelab.errors import InputError
from miragelab.vision.data import (
    load_cifar100_numpy,
    load_digits_data,
    load_mnist_idx,
    train_test_split,
)

PIXELS = np.array(
    [[[0, 255, 51], [102, 0, 0]], [[1, 2, 3], [4, 5, 6]], [[255, 255, 255], [0, 0, 0]]],
    dtype=np.uint8,
)  # 3 images of 2 x 3
LABELS = np.array([7, 0, 9], dtype=np.uint8)


def idx_bytes(array: np.ndarray, code: int = 0x08) -> bytes:
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.tobytes()


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.fixture
def labels_file(tmp_path: Path) -> Path:
    return write(tmp_path / "labels-idx1-ubyte", idx_bytes(LABELS))


# --------------------------------------------------------------------------- digits


def test_digits_is_bundled_and_scaled():
    data = load_digits_data()
    assert data.images.shape == (1797, 8, 8)
    assert data.images.dtype == np.float32
    assert data.images.min() == 0.0 and data.images.max() == 1.0  # 16 / 16
    assert data.n_features == 64 and data.n_classes == 10
    assert sorted(np.unique(data.labels).tolist()) == list(range(10))


def test_split_is_fixed_disjoint_and_complete():
    train, test = train_test_split(100, 0.3, seed=0)
    assert len(test) == 30 and len(train) == 70
    assert not set(train) & set(test)
    assert sorted(np.concatenate([train, test]).tolist()) == list(range(100))
    again = train_test_split(100, 0.3, seed=0)
    assert np.array_equal(train, again[0]) and np.array_equal(test, again[1])


# --------------------------------------------------------------------------- MNIST IDX


@pytest.mark.parametrize("compress", [False, True])
def test_mnist_idx_valid(tmp_path, compress):
    images, labels = idx_bytes(PIXELS), idx_bytes(LABELS)
    if compress:
        images, labels = gzip.compress(images), gzip.compress(labels)
    ipath = write(tmp_path / "images.gz", images)
    lpath = write(tmp_path / "labels.gz", labels)
    data = load_mnist_idx(ipath, lpath)
    assert data.images.shape == (3, 2, 3)
    assert data.images[0, 0].tolist() == pytest.approx([0.0, 1.0, 0.2])  # 51 / 255 = 0.2
    assert data.labels.tolist() == [7, 0, 9]
    assert data.n_features == 6


GOOD = idx_bytes(PIXELS)
# (bytes, phrase, where): ``where`` is the byte offset (from 0, in the decompressed data) and
# header field an IDX file is wrong at, by the layout: bytes 0-1 zero, 2 type code, 3 number of
# dimensions, then one 4-byte size per dimension (bytes 4-15 for images), then the data
CORRUPT_IMAGES = {
    "empty": (b"", "shorter than the 4-byte magic", (0, "magic")),
    "text": (b"hello world, not idx", "two zero bytes", (0, "magic")),
    "labels as images": (idx_bytes(LABELS), "expected images with 3 dimension", (3, "magic")),
    "unknown type": (
        bytes([0, 0, 0x42, 3]) + GOOD[4:],
        "unknown data-type code 0x42",
        (2, "magic"),
    ),
    "int images": (
        idx_bytes(PIXELS.astype(">i4"), code=0x0C),
        "must be unsigned bytes",
        (2, "magic"),
    ),
    "truncated header": (GOOD[:9], "truncated header", (9, "dimensions")),
    "truncated data": (GOOD[:-5], "truncated: dimensions 3x2x3", (29, "data")),  # 16 + 18 - 5
    "trailing bytes": (GOOD + b"\x00\x00", "2 unexpected byte(s)", (34, "data")),
    "zero images": (
        bytes([0, 0, 8, 3]) + struct.pack(">3I", 0, 2, 3),
        "empty dataset",
        (4, "dimensions"),
    ),
    "corrupt gzip": (gzip.compress(GOOD)[:-12], "corrupt gzip", None),
}


@pytest.mark.parametrize("case", sorted(CORRUPT_IMAGES))
def test_mnist_idx_rejects_corrupt_images(tmp_path, labels_file, case):
    data, phrase, where = CORRUPT_IMAGES[case]
    bad = write(tmp_path / "bad-images-idx3-ubyte", data)
    with pytest.raises(InputError) as info:
        load_mnist_idx(bad, labels_file)
    message = str(info.value)
    if where is None:
        assert message.startswith(str(bad) + ": ")  # names the file first
    else:  # and the byte offset and header field at fault
        assert message.startswith(f"{bad}, byte offset {where[0]}, field '{where[1]}': ")
    assert phrase in message
    assert "\n" not in message


def test_mnist_idx_rejects_label_count_mismatch(tmp_path):
    ipath = write(tmp_path / "images", GOOD)
    lpath = write(tmp_path / "labels", idx_bytes(LABELS[:2]))
    with pytest.raises(InputError, match="2 labels for 3 images") as info:
        load_mnist_idx(ipath, lpath)
    assert info.value.path == str(lpath)


def test_mnist_idx_missing_file(tmp_path, labels_file):
    with pytest.raises(InputError, match="no such file"):
        load_mnist_idx(tmp_path / "absent", labels_file)


# --------------------------------------------------------------------------- CIFAR-100 .npz


def cifar(n: int = 4) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8), np.array([0, 5, 99, 42][:n])


def test_cifar_npz_channels_last(tmp_path):
    x, y = cifar()
    path = tmp_path / "c.npz"
    np.savez(path, x=x, y=y)
    data = load_cifar100_numpy(path)
    assert data.images.shape == (4, 32, 32, 3)
    assert np.array_equal(data.images, x.astype(np.float32) / 255)
    assert data.labels.tolist() == [0, 5, 99, 42]


def test_cifar_npz_pickle_row_layout(tmp_path):
    # the pickle's rows: 1024 red values, 1024 green, 1024 blue, each row-major
    x, y = cifar()
    rows = x.transpose(0, 3, 1, 2).reshape(4, 3072)
    path = tmp_path / "rows.npz"
    np.savez_compressed(path, data=rows, fine_labels=y)
    data = load_cifar100_numpy(path)
    assert np.array_equal(data.images, x.astype(np.float32) / 255)
    # pixel (row 1, col 2) of image 0, green channel = element 1024 + 1 * 32 + 2 of the row
    assert data.images[0, 1, 2, 1] == pytest.approx(rows[0, 1024 + 34] / 255)


def _savez(path: Path, **arrays: np.ndarray) -> Path:
    np.savez(path, **arrays)
    return path


def test_cifar_rejects_object_arrays_without_unpickling(tmp_path):
    x, y = cifar()
    path = tmp_path / "pickled.npz"
    np.savez(path, x=np.array([x[0], "oops"], dtype=object), y=y)  # written with pickle
    with pytest.raises(InputError) as info:
        load_cifar100_numpy(path)
    assert str(info.value).startswith(str(path))
    assert "pickle" in str(info.value).lower()


@pytest.mark.parametrize(
    ("case", "phrase", "field"),
    [
        ("not zip", "not a readable .npz archive", None),
        ("truncated", "not a readable .npz archive", None),
        ("no labels", "no labels array", "labels"),
        ("bad shape", "expected (N, 32, 32, 3)", "x"),
        ("label range", "labels must lie in 0..99, found 0..100 (first at index 3)", "y"),
        ("count mismatch", "3 labels for 4 images", "y"),
        ("float range", "finite values in [0, 1]", "x"),
    ],
)
def test_cifar_rejects_corrupt_files(tmp_path, case, phrase, field):
    x, y = cifar()
    path = tmp_path / "bad.npz"
    if case == "not zip":
        path.write_bytes(b"definitely not a zip archive")
    elif case == "truncated":
        _savez(path, x=x, y=y)
        path.write_bytes(path.read_bytes()[:2000])
    elif case == "no labels":
        _savez(path, x=x)
    elif case == "bad shape":
        _savez(path, x=x.reshape(4, 32, 96), y=y)
    elif case == "label range":
        _savez(path, x=x, y=np.array([0, 1, 2, 100]))
    elif case == "count mismatch":
        _savez(path, x=x, y=y[:3])
    else:
        _savez(path, x=x.astype(np.float32), y=y)  # floats 0..255, not [0, 1]
    with pytest.raises(InputError) as info:
        load_cifar100_numpy(path)
    message = str(info.value)
    # the file, then the array at fault (by its name in the archive) when there is one
    assert message.startswith(str(path) + ("" if field is None else f", field '{field}'") + ": ")
    assert phrase in message
    assert "\n" not in message
