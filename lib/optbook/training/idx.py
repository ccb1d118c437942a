"""MNIST-format data that loads offline: the IDX file format and where to find the files.

MNIST, Fashion-MNIST and their relatives ship as four IDX files::

    train-images-idx3-ubyte   60000 × 28 × 28   uint8
    train-labels-idx1-ubyte   60000             uint8 (classes 0–9)
    t10k-images-idx3-ubyte    10000 × 28 × 28
    t10k-labels-idx1-ubyte    10000

each possibly gzipped (``….gz``). An IDX file is a 4-byte magic number — two zero bytes,
a type code (``0x08`` = unsigned byte, …) and the number of dimensions — then one
big-endian 32-bit size per dimension, then the values in C order.

:func:`load_mnist` looks for the files in this order and says which it used:

1. a folder you name (``root=...`` or the environment variable ``OPTBOOK_MNIST_DIR``);
   torchvision's layout ``<root>/MNIST/raw/`` is found too;
2. a download with torchvision, when torchvision is installed and the network is
   reachable (into ``~/.cache/optbook/mnist`` unless ``download_dir`` is given);
3. Debian's ``dataset-fashion-mnist`` package (``/usr/share/datasets/fashion-mnist``):
   Fashion-MNIST, a drop-in with the same format, shapes and number of classes
   (clothing instead of digits — and harder: expect lower accuracies);
4. otherwise a :class:`MnistNotFoundError` that lists these three ways to get data.

The book and its tests never need the network: they use the Debian package, or small
IDX files they write themselves with :func:`write_idx`.
"""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: The IDX type codes and the NumPy types they stand for (big-endian where it matters).
IDX_TYPES = {0x08: np.dtype("u1"), 0x09: np.dtype("i1"), 0x0B: np.dtype(">i2"),
             0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}

FILES = {"train_images": "train-images-idx3-ubyte", "train_labels": "train-labels-idx1-ubyte",
         "test_images": "t10k-images-idx3-ubyte", "test_labels": "t10k-labels-idx1-ubyte"}

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")

MNIST_CLASSES = tuple(str(d) for d in range(10))
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                   "Sneaker", "Bag", "Ankle boot")


class IdxFormatError(ValueError):
    """A file is not a well-formed IDX file (wrong magic number, truncated, …)."""


class MnistNotFoundError(FileNotFoundError):
    """No MNIST-format data could be found or downloaded."""


# --------------------------------------------------------------------------------------
# The file format
# --------------------------------------------------------------------------------------
def _open(path: Path):
    with open(path, "rb") as f:
        gzipped = f.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rb") if gzipped else open(path, "rb")


def read_idx(path) -> np.ndarray:
    """Read one IDX file (gzipped or not) into a NumPy array of its shape and type."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No IDX file at {path}")
    with _open(path) as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise IdxFormatError(f"{path}: not an IDX file (its first two bytes must be zero)")
    code, ndim = data[2], data[3]
    if code not in IDX_TYPES:
        raise IdxFormatError(f"{path}: unknown IDX type code 0x{code:02x}")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise IdxFormatError(f"{path}: truncated header ({len(data)} bytes for {ndim} dims)")
    shape = tuple(int(n) for n in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    dtype = IDX_TYPES[code]
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) != expected:
        raise IdxFormatError(f"{path}: {len(data)} bytes, but a header of shape {shape} "
                             f"and type {dtype} needs {expected}")
    values = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    return values.astype(dtype.newbyteorder("="))


def write_idx(path, array) -> Path:
    """Write ``array`` as an IDX file (gzipped when ``path`` ends in ``.gz``)."""
    array = np.asarray(array)
    codes = {np.dtype(t).newbyteorder("="): c for c, t in IDX_TYPES.items()}
    dtype = array.dtype.newbyteorder("=")
    if dtype not in codes:
        raise TypeError(f"IDX cannot store {array.dtype}; use one of "
                        f"{sorted(str(t) for t in codes)}")
    if not 1 <= array.ndim <= 255:
        raise ValueError(f"IDX needs 1 to 255 dimensions, got {array.ndim}")
    code = codes[dtype]
    payload = (bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
               + np.ascontiguousarray(array, dtype=IDX_TYPES[code]).tobytes())
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wb") as f:
        f.write(payload)
    return path


# --------------------------------------------------------------------------------------
# Finding the files
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MnistData:
    """The four arrays, where they came from, and the names of the ten classes."""

    train_images: np.ndarray   # (n_train, 28, 28) uint8
    train_labels: np.ndarray   # (n_train,) int64
    test_images: np.ndarray
    test_labels: np.ndarray
    source: str                # the folder the files were read from
    name: str                  # "MNIST", "Fashion-MNIST" or "MNIST-format"
    classes: tuple

    def arrays(self, n_train: int | None = None, n_test: int | None = None, flatten=True):
        """Float32 arrays scaled to [0, 1] (flattened to 784 columns unless asked not to)
        and int64 labels: ``(X_train, y_train, X_test, y_test)``, optionally the first
        ``n_train`` / ``n_test`` examples only."""
        def take(images, labels, n):
            if n is not None and not 1 <= n <= len(labels):
                raise ValueError(f"Asked for {n} examples; there are {len(labels)}")
            images, labels = images[:n], labels[:n]
            x = images.astype(np.float32) / 255.0
            return (x.reshape(len(x), -1) if flatten else x), labels
        return (*take(self.train_images, self.train_labels, n_train),
                *take(self.test_images, self.test_labels, n_test))


def _find_files(folder: Path) -> dict[str, Path] | None:
    """The four files in ``folder`` (raw or ``.gz``; torchvision's ``MNIST/raw`` too)."""
    for candidate in (folder, folder / "MNIST" / "raw", folder / "raw"):
        found = {}
        for key, stem in FILES.items():
            for name in (stem, stem + ".gz", stem.replace("-idx", ".idx")):
                if (candidate / name).is_file():
                    found[key] = candidate / name
                    break
        if len(found) == len(FILES):
            return found
    return None


def _read_folder(folder: Path, name: str, classes: tuple) -> MnistData:
    files = _find_files(folder)
    if files is None:
        missing = ", ".join(FILES.values())
        raise MnistNotFoundError(f"{folder} does not hold the four MNIST-format files "
                                 f"({missing}, each optionally .gz)")
    arrays = {key: read_idx(path) for key, path in files.items()}
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise IdxFormatError(f"{folder}: {split} images {images.shape} and labels "
                                 f"{labels.shape} do not match (expected (n, rows, cols) and (n,))")
        if labels.size and (labels.min() < 0 or labels.max() >= len(classes)):
            raise IdxFormatError(f"{folder}: {split} labels outside 0–{len(classes) - 1}")
    return MnistData(arrays["train_images"], arrays["train_labels"].astype(np.int64),
                     arrays["test_images"], arrays["test_labels"].astype(np.int64),
                     source=str(folder), name=name, classes=classes)


def _download_with_torchvision(download_dir: Path) -> Path | None:
    """Try torchvision's MNIST download; ``None`` when torchvision or the network is missing."""
    try:
        from torchvision.datasets import MNIST  # noqa: PLC0415 (optional dependency)
    except ImportError:
        return None
    try:
        MNIST(str(download_dir), train=True, download=True)
        MNIST(str(download_dir), train=False, download=True)
    except Exception:  # no network, a mirror down, a full disk: try the next source
        return None
    return download_dir / "MNIST" / "raw"


def load_mnist(root=None, *, download: bool = True, download_dir=None,
               debian_dir=DEBIAN_FASHION_MNIST) -> MnistData:
    """MNIST-format data from the first source that has it (see the module docstring)."""
    root = root if root is not None else os.environ.get("OPTBOOK_MNIST_DIR")
    if root:
        folder = Path(root).expanduser()
        if not folder.is_dir():
            raise MnistNotFoundError(f"The MNIST folder {folder} does not exist")
        return _read_folder(folder, "MNIST-format", MNIST_CLASSES)
    if download:
        target = Path(download_dir or Path.home() / ".cache" / "optbook" / "mnist")
        folder = _download_with_torchvision(target)
        if folder is not None:
            return _read_folder(folder, "MNIST", MNIST_CLASSES)
    debian = Path(debian_dir)
    if _find_files(debian) is not None:
        return _read_folder(debian, "Fashion-MNIST", FASHION_CLASSES)
    raise MnistNotFoundError(
        "No MNIST-format data found. Any one of these works:\n"
        "  1. put the four IDX files (train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], "
        "t10k-images-idx3-ubyte[.gz], t10k-labels-idx1-ubyte[.gz]) in a folder and pass "
        "load_mnist(root=FOLDER) or set OPTBOOK_MNIST_DIR=FOLDER;\n"
        "  2. pip install torchvision and run once with internet access (it downloads MNIST);\n"
        "  3. on Debian/Ubuntu: sudo apt-get install dataset-fashion-mnist "
        f"(installs Fashion-MNIST in {DEBIAN_FASHION_MNIST}).")
