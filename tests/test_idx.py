"""The IDX reader/writer and the MNIST-format loader, on small files the tests write."""

import gzip
import struct

import numpy as np
import pytest

from optbook.training import idx
from optbook.training.idx import (FILES, IdxFormatError, MnistNotFoundError, load_mnist,
                                  read_idx, write_idx)


def hand_written_idx(path, array):
    """An IDX file written byte by byte from the format's description, not by write_idx."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(struct.pack(">I", n) for n in array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())
    return path


def fake_mnist(folder, n_train=12, n_test=5, gz=True, seed=0):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {"train_images": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
              "train_labels": rng.integers(0, 10, n_train, dtype=np.uint8),
              "test_images": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
              "test_labels": rng.integers(0, 10, n_test, dtype=np.uint8)}
    for key, array in arrays.items():
        write_idx(folder / (FILES[key] + (".gz" if gz else "")), array)
    return arrays


def test_reads_a_file_written_from_the_spec(tmp_path):
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    got = read_idx(hand_written_idx(tmp_path / "a-idx3-ubyte", array))
    assert got.shape == (2, 3, 4) and got.dtype == np.uint8
    np.testing.assert_array_equal(got, array)


@pytest.mark.parametrize("dtype", ["u1", "i1", "i2", "i4", "f4", "f8"])
@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_write_then_read_round_trip(tmp_path, dtype, suffix):
    array = (np.arange(30).reshape(5, 6) - 7).astype(dtype)
    path = write_idx(tmp_path / f"x{suffix}", array)
    if suffix:
        assert path.read_bytes()[:2] == b"\x1f\x8b"  # really gzipped
        raw = gzip.decompress(path.read_bytes())
    else:
        raw = path.read_bytes()
    assert raw[3] == 2 and struct.unpack(">II", raw[4:12]) == (5, 6)
    got = read_idx(path)
    assert got.dtype == np.dtype(dtype) and got.shape == (5, 6)
    np.testing.assert_array_equal(got, array)


def test_malformed_files_are_named(tmp_path):
    bad_magic = tmp_path / "bad"
    bad_magic.write_bytes(b"\x01\x00\x08\x01" + struct.pack(">I", 3) + b"abc")
    with pytest.raises(IdxFormatError, match="not an IDX file"):
        read_idx(bad_magic)
    truncated = tmp_path / "short"
    truncated.write_bytes(b"\x00\x00\x08\x01" + struct.pack(">I", 10) + b"abc")
    with pytest.raises(IdxFormatError, match="11 bytes.*needs 18"):
        read_idx(truncated)
    unknown = tmp_path / "type"
    unknown.write_bytes(b"\x00\x00\x07\x01" + struct.pack(">I", 1) + b"a")
    with pytest.raises(IdxFormatError, match="type code 0x07"):
        read_idx(unknown)
    with pytest.raises(FileNotFoundError, match="No IDX file"):
        read_idx(tmp_path / "missing")
    with pytest.raises(TypeError, match="cannot store"):
        write_idx(tmp_path / "c", np.zeros(3, dtype=np.complex64))


@pytest.mark.parametrize("gz", [True, False])
def test_load_from_a_user_folder(tmp_path, gz):
    arrays = fake_mnist(tmp_path / "data", gz=gz)
    data = load_mnist(tmp_path / "data", download=False)
    assert data.name == "MNIST-format" and data.source == str(tmp_path / "data")
    np.testing.assert_array_equal(data.train_images, arrays["train_images"])
    np.testing.assert_array_equal(data.test_labels, arrays["test_labels"])
    assert data.train_labels.dtype == np.int64
    X, y, Xt, yt = data.arrays(n_train=10, n_test=3)
    assert X.shape == (10, 784) and X.dtype == np.float32 and Xt.shape == (3, 784)
    assert 0.0 <= X.min() and X.max() <= 1.0
    np.testing.assert_allclose(X[0], arrays["train_images"][0].reshape(-1) / 255.0, rtol=1e-6)
    with pytest.raises(ValueError, match="Asked for 99"):
        data.arrays(n_train=99)


def test_environment_variable_and_torchvision_layout(tmp_path, monkeypatch):
    fake_mnist(tmp_path / "tv" / "MNIST" / "raw", gz=False)
    monkeypatch.setenv("OPTBOOK_MNIST_DIR", str(tmp_path / "tv"))
    assert load_mnist(download=False).train_images.shape == (12, 28, 28)


def test_order_of_sources(tmp_path, monkeypatch):
    monkeypatch.delenv("OPTBOOK_MNIST_DIR", raising=False)
    debian = tmp_path / "debian"
    fake_mnist(debian, n_train=7)
    downloaded = tmp_path / "downloaded"
    fake_mnist(downloaded / "MNIST" / "raw", n_train=9)

    monkeypatch.setattr(idx, "_download_with_torchvision", lambda target: downloaded / "MNIST" / "raw")
    data = load_mnist(debian_dir=debian)
    assert data.name == "MNIST" and len(data.train_labels) == 9          # download before Debian
    data = load_mnist(download=False, debian_dir=debian)
    assert data.name == "Fashion-MNIST" and len(data.train_labels) == 7  # then Debian's package
    assert data.classes[9] == "Ankle boot"

    monkeypatch.setattr(idx, "_download_with_torchvision", lambda target: None)   # offline
    assert load_mnist(debian_dir=debian).name == "Fashion-MNIST"
    with pytest.raises(MnistNotFoundError, match="dataset-fashion-mnist") as error:
        load_mnist(debian_dir=tmp_path / "nothing")
    assert "OPTBOOK_MNIST_DIR" in str(error.value) and "torchvision" in str(error.value)


def test_a_user_folder_that_is_wrong_says_so(tmp_path):
    with pytest.raises(MnistNotFoundError, match="does not exist"):
        load_mnist(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(MnistNotFoundError, match="does not hold"):
        load_mnist(tmp_path / "empty")
    folder = tmp_path / "mismatch"
    fake_mnist(folder)
    write_idx(folder / (FILES["train_labels"] + ".gz"), np.zeros(3, dtype=np.uint8))
    with pytest.raises(IdxFormatError, match="do not match"):
        load_mnist(folder)


def test_debian_fashion_mnist_package():
    """`make test` installs the package (Makefile target `data`); exercise D2 uses it."""
    assert idx.DEBIAN_FASHION_MNIST.is_dir(), "run `make data` (apt-get install dataset-fashion-mnist)"
    data = load_mnist(download=False)
    assert data.name == "Fashion-MNIST"
    assert data.train_images.shape == (60000, 28, 28) and data.test_images.shape == (10000, 28, 28)
    assert sorted(np.unique(data.train_labels)) == list(range(10))
    assert np.bincount(data.test_labels).tolist() == [1000] * 10
