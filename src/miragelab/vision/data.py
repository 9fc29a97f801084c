"""Real image datasets, loaded offline, as arrays in [0, 1].

Three sources, one result type (:class:`ImageData`):

``load_digits_data()``
    The handwritten digits bundled with scikit-learn (UCI optical digits:
    1,797 images of 8x8 pixels, ten classes). Pixel values 0..16 are divided
    by 16. Needs no download; it is the default of every ``mirage vision``
    command.

``load_mnist_idx(images_path, labels_path)``
    MNIST in its original IDX format (``train-images-idx3-ubyte`` and
    ``train-labels-idx1-ubyte``, optionally ``.gz``). The header is checked
    field by field: two zero bytes, the data-type code ``0x08`` (unsigned
    byte), the number of dimensions (3 for images, 1 for labels), the
    dimensions themselves and the exact number of data bytes. Pixel values
    0..255 are divided by 255.

``load_cifar100_numpy(path)``
    CIFAR-100 exported to a numpy ``.npz`` archive. The official download is a
    Python pickle, which can run arbitrary code when loaded, so it is never
    read here; convert it once with trusted tools and save the arrays with
    ``np.savez(path, x=images, y=labels)``. Read with
    ``np.load(path, allow_pickle=False)`` (object arrays are refused). Keys:
    images under ``x`` (or ``images``, ``data``), labels under ``y`` (or
    ``labels``, ``fine_labels``). Images may be ``(N, 32, 32, 3)`` (channels
    last), ``(N, 3, 32, 32)`` or ``(N, 3072)`` (the pickle's row layout: 1024
    red, then green, then blue values, each row-major); ``uint8`` 0..255 or
    floats already in [0, 1]. Labels are integers 0..99.

Any problem with a file raises :class:`~miragelab.errors.InputError` naming
the file and what is wrong with it.
"""

from __future__ import annotations

import gzip
import os
import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from miragelab.errors import InputError
from miragelab.textio import regular_file

__all__ = [
    "ImageData",
    "load_cifar100_numpy",
    "load_digits_data",
    "load_mnist_idx",
    "train_test_split",
]

#: IDX data-type codes (third header byte) and the dtype they name
_IDX_TYPES = {
    0x08: ("unsigned byte", np.dtype(">u1")),
    0x09: ("signed byte", np.dtype(">i1")),
    0x0B: ("short", np.dtype(">i2")),
    0x0C: ("int", np.dtype(">i4")),
    0x0D: ("float", np.dtype(">f4")),
    0x0E: ("double", np.dtype(">f8")),
}
_GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True)
class ImageData:
    """Images in [0, 1] with integer labels.

    ``images`` has shape ``(N, *image_shape)`` and dtype float32; ``labels``
    shape ``(N,)`` and dtype int64; ``name`` names the dataset in tables.
    """

    name: str
    images: NDArray[np.float32]
    labels: NDArray[np.int64]

    def __post_init__(self) -> None:
        if self.images.shape[0] != self.labels.shape[0]:
            raise ValueError(
                f"{self.images.shape[0]} images but {self.labels.shape[0]} labels in {self.name}"
            )

    @property
    def n(self) -> int:
        return int(self.images.shape[0])

    @property
    def n_features(self) -> int:
        """Values per image (pixels times channels)."""
        return int(np.prod(self.images.shape[1:]))

    @property
    def n_classes(self) -> int:
        return int(self.labels.max()) + 1

    def flat(self) -> NDArray[np.float32]:
        """Images as rows of ``n_features`` values."""
        return self.images.reshape(self.n, -1)

    def subset(self, index: NDArray[np.int64]) -> ImageData:
        return ImageData(self.name, self.images[index], self.labels[index])


def load_digits_data() -> ImageData:
    """scikit-learn's bundled 8x8 digits, scaled to [0, 1] (pixel / 16)."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = (np.asarray(bunch.images, dtype=np.float32) / 16.0).astype(np.float32)
    return ImageData("digits", images, np.asarray(bunch.target, dtype=np.int64))


def train_test_split(n: int, test_fraction: float = 0.3, seed: int = 0) -> tuple[NDArray, NDArray]:
    """Indices of a fixed random split: ``(train, test)``, each sorted.

    The split depends on ``n``, ``test_fraction`` and ``seed`` only, so every
    model of a ladder, whatever its own seed, is evaluated on the same images.
    """
    if not 0 < test_fraction < 1:
        raise InputError(f"must be in (0, 1), got {test_fraction}", field="test_fraction")
    n_test = int(round(n * test_fraction))
    if n_test < 1 or n_test >= n:
        raise InputError(
            f"{n} images cannot be split into train and test at fraction {test_fraction}",
            field="test_fraction",
        )
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[n_test:]), np.sort(order[:n_test])


# --------------------------------------------------------------------------- MNIST (IDX)


def _read_maybe_gzip(path: Path) -> bytes:
    """All bytes of ``path``, decompressed when it is gzip (by its magic bytes).

    Errors in the content name the byte offset in the decompressed data.
    """
    regular_file(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", path=path) from None
    if raw[:2] != _GZIP_MAGIC:
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise InputError(f"corrupt gzip data ({exc})", path=path) from None


def _idx_error(message: str, path: Path, offset: int, field: str) -> InputError:
    """An IDX error at ``offset`` (counted from 0) in the header field or data it names."""
    return InputError(message, path=path, line=offset, field=field, unit="byte offset")


def _parse_idx(path: Path, ndim: int, what: str) -> np.ndarray:
    """The array of an IDX file: magic (2 zero bytes, type code, dimension count),
    one big-endian uint32 size per dimension, then the data."""
    data = _read_maybe_gzip(path)
    if len(data) < 4:
        raise _idx_error(
            f"not an IDX file: {len(data)} byte(s), shorter than the 4-byte magic number",
            path,
            0,
            "magic",
        )
    zero, code, dims = data[:2], data[2], data[3]
    if zero != b"\x00\x00":
        raise _idx_error(
            f"not an IDX file: magic number {data[:4].hex()} does not start with two zero bytes",
            path,
            0,
            "magic",
        )
    if code not in _IDX_TYPES:
        raise _idx_error(f"not an IDX file: unknown data-type code 0x{code:02x}", path, 2, "magic")
    if dims != ndim:
        raise _idx_error(
            f"expected {what} with {ndim} dimension(s) (magic 0x{0x800 + ndim:08x}), "
            f"the header says {dims} (magic {data[:4].hex()})",
            path,
            3,
            "magic",
        )
    header = 4 + 4 * dims
    if len(data) < header:
        raise _idx_error(
            f"truncated header: {len(data)} bytes, the {dims} dimension sizes need {header}",
            path,
            len(data),
            "dimensions",
        )
    shape = struct.unpack(f">{dims}I", data[4:header])
    if any(size == 0 for size in shape):
        axis = shape.index(0)
        raise _idx_error(f"empty dataset: dimensions {shape}", path, 4 + 4 * axis, "dimensions")
    type_name, dtype = _IDX_TYPES[code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    found = len(data) - header
    if found < expected:
        raise _idx_error(
            f"truncated: dimensions {'x'.join(map(str, shape))} of {type_name} need "
            f"{expected} data bytes, the file has {found}",
            path,
            len(data),
            "data",
        )
    if found > expected:
        raise _idx_error(
            f"{found - expected} unexpected byte(s) after the {expected} data bytes of "
            f"dimensions {'x'.join(map(str, shape))}",
            path,
            header + expected,
            "data",
        )
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)


def load_mnist_idx(
    images_path: str | os.PathLike[str],
    labels_path: str | os.PathLike[str],
    name: str = "mnist",
) -> ImageData:
    """MNIST-style IDX image and label files (plain or gzip) as :class:`ImageData`.

    Images must be unsigned bytes with 3 dimensions ``(N, rows, cols)``
    (magic ``0x00000803``); labels unsigned bytes with 1 dimension ``(N,)``
    (magic ``0x00000801``), as many as images, each below 256. Pixels are
    divided by 255.
    """
    ipath, lpath = Path(images_path), Path(labels_path)
    images = _parse_idx(ipath, 3, "images")
    if images.dtype != np.dtype(">u1"):
        raise _idx_error(
            f"images must be unsigned bytes (type code 0x08), got {images.dtype}", ipath, 2, "magic"
        )
    labels = _parse_idx(lpath, 1, "labels")
    if labels.dtype != np.dtype(">u1"):
        raise _idx_error(
            f"labels must be unsigned bytes (type code 0x08), got {labels.dtype}", lpath, 2, "magic"
        )
    if labels.shape[0] != images.shape[0]:
        raise _idx_error(
            f"{labels.shape[0]} labels for {images.shape[0]} images in {ipath.name}",
            lpath,
            4,
            "dimensions",
        )
    pixels = (images.astype(np.float32) / 255.0).astype(np.float32)
    return ImageData(name, pixels, labels.astype(np.int64))


# --------------------------------------------------------------------------- CIFAR-100 (.npz)

_IMAGE_KEYS = ("x", "images", "data")
_LABEL_KEYS = ("y", "labels", "fine_labels")
CIFAR_CLASSES = 100


def _pick(archive: np.lib.npyio.NpzFile, keys: tuple[str, ...], what: str, path: Path) -> str:
    for key in keys:
        if key in archive.files:
            return key
    raise InputError(
        f"no {what} array: expected one of {', '.join(keys)}; the archive has "
        f"{', '.join(archive.files) or 'no arrays'}",
        path=path,
        field=what,
    )


def _cifar_images(x: np.ndarray, path: Path, key: str) -> NDArray[np.float32]:
    """Images (the archive's array ``key``) as ``(N, 32, 32, 3)`` float32 in [0, 1]."""
    if x.ndim == 2 and x.shape[1] == 3072:
        x = x.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    elif x.ndim == 4 and x.shape[1:] == (3, 32, 32):
        x = x.transpose(0, 2, 3, 1)
    elif not (x.ndim == 4 and x.shape[1:] == (32, 32, 3)):
        raise InputError(
            f"images have shape {x.shape}; expected (N, 32, 32, 3), (N, 3, 32, 32) or (N, 3072)",
            path=path,
            field=key,
        )
    if x.dtype == np.uint8:
        return (x.astype(np.float32) / 255.0).astype(np.float32)
    if np.issubdtype(x.dtype, np.floating):
        values = x.astype(np.float32)
        if not np.all(np.isfinite(values)) or values.min() < 0 or values.max() > 1:
            raise InputError("float images must hold finite values in [0, 1]", path=path, field=key)
        return values
    raise InputError(f"images have dtype {x.dtype}; expected uint8 or float", path=path, field=key)


def load_cifar100_numpy(path: str | os.PathLike[str], name: str = "cifar100") -> ImageData:
    """CIFAR-100 from a numpy ``.npz`` export (see the module docstring); never unpickles."""
    p = regular_file(path)
    try:
        archive = np.load(p, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise InputError(f"not a readable .npz archive ({exc})", path=p) from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise InputError(
            "a single .npy array, expected an .npz archive with images and labels", path=p
        )
    with archive:
        image_key = _pick(archive, _IMAGE_KEYS, "images", p)
        label_key = _pick(archive, _LABEL_KEYS, "labels", p)
        key = image_key
        try:
            x = archive[image_key]
            key = label_key
            y = archive[label_key]
        except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
            raise InputError(f"cannot read the array ({exc})", path=p, field=key) from None
    images = _cifar_images(x, p, image_key)
    y = np.asarray(y).reshape(-1) if np.ndim(y) == 2 and 1 in np.shape(y) else np.asarray(y)
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise InputError(
            f"labels must be a 1-d integer array, got shape {y.shape} dtype {y.dtype}",
            path=p,
            field=label_key,
        )
    if y.shape[0] != images.shape[0]:
        raise InputError(
            f"{y.shape[0]} labels for {images.shape[0]} images", path=p, field=label_key
        )
    if y.size == 0:
        raise InputError("empty dataset: no images", path=p, field=image_key)
    if y.min() < 0 or y.max() >= CIFAR_CLASSES:
        first = int(np.flatnonzero((y < 0) | (y >= CIFAR_CLASSES))[0])
        raise InputError(
            f"labels must lie in 0..{CIFAR_CLASSES - 1}, found {int(y.min())}..{int(y.max())} "
            f"(first at index {first})",
            path=p,
            field=label_key,
        )
    return ImageData(name, images, y.astype(np.int64))
