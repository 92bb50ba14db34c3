from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import numpy as np
import pytest

from mnist_classifier.data import datasets, load_dataset, split_validation, verify_files, write_idx
from mnist_classifier.data.idx import read_idx
from mnist_classifier.errors import DataError

from .conftest import require

TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_bundled_mnist_matches_checksums_and_counts() -> None:
    checked = verify_files("mnist")
    assert [digest for _, digest, _ in checked] == list(datasets.REGISTRY["mnist"].sha256.values())
    data = load_dataset("mnist")
    assert data.x_train.shape == (60000, 28, 28) and data.x_test.shape == (10000, 28, 28)
    assert data.x_train.dtype == np.uint8
    assert np.bincount(data.y_train).tolist() == TRAIN_COUNTS
    assert np.bincount(data.y_test).tolist() == TEST_COUNTS


def test_second_load_comes_from_the_cache(private_cache: Path) -> None:
    first = load_dataset("mnist")
    cached = list(private_cache.glob("mnist-*/train-images.npy"))
    assert len(cached) == 1
    np.save(cached[0].parent / "t10k-labels.npy", np.zeros(10000, np.uint8))
    assert load_dataset("mnist").y_test.sum() == 0, "the cached arrays were not used"
    shutil.rmtree(cached[0].parent)
    again = load_dataset("mnist")
    np.testing.assert_array_equal(again.y_test, first.y_test)


def test_an_unwritable_cache_folder_only_costs_the_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """/proc takes no new folders, even from root: the arrays load, verified, and nothing is cached."""
    monkeypatch.setenv("MNIST_CLASSIFIER_CACHE", "/proc/mnist-classifier-cache")
    data = load_dataset("mnist")
    assert np.bincount(data.y_test).tolist() == TEST_COUNTS
    assert not Path("/proc/mnist-classifier-cache").exists()


@pytest.fixture
def mnist_copy(tmp_path: Path) -> Path:
    folder = tmp_path / "mnist"
    shutil.copytree(datasets.BUNDLED, folder)
    return folder


def test_checksum_mismatch_is_refused(mnist_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    labels = read_idx(mnist_copy / "t10k-labels-idx1-ubyte.gz")
    labels[0] = (labels[0] + 1) % 10
    write_idx(mnist_copy / "t10k-labels-idx1-ubyte.gz", labels)
    spec = dataclasses.replace(datasets.REGISTRY["mnist"], folders=(mnist_copy,))
    monkeypatch.setitem(datasets.REGISTRY, "mnist", spec)
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte\.gz: SHA-256 .* does not match mnist"):
        load_dataset("mnist")


def test_data_dir_with_inconsistent_counts(mnist_copy: Path) -> None:
    labels = read_idx(mnist_copy / "t10k-labels-idx1-ubyte.gz")
    write_idx(mnist_copy / "t10k-labels-idx1-ubyte.gz", labels[:-1])
    with pytest.raises(DataError, match="9999 labels for 10000 images"):
        load_dataset("custom", mnist_copy)


def test_data_dir_missing_files(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="expected the four IDX files"):
        load_dataset("custom", tmp_path)


def test_data_dir_accepts_raw_files(tmp_path: Path) -> None:
    for part, name in datasets.FILES.items():
        array = read_idx(datasets.BUNDLED / f"{name}.gz")[:100]
        write_idx(tmp_path / name, array)
        assert part in datasets.PARTS
    data = load_dataset("mine", tmp_path)
    assert data.name == "mine" and len(data.x_train) == 100


def test_missing_download_says_where_to_put_files(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    spec = dataclasses.replace(
        datasets.REGISTRY["fashion-mnist"], folders=(tmp_path / "nowhere",), url="http://127.0.0.1:9/"
    )
    monkeypatch.setitem(datasets.REGISTRY, "fashion-mnist", spec)
    with pytest.raises(DataError, match=r"cannot be downloaded .*apt-get install dataset-fashion-mnist.*--data-dir"):
        load_dataset("fashion-mnist")
    assert not any((datasets.cache_dir() / "fashion-mnist").glob("*")), "nothing half-downloaded is kept"


def test_without_allow_download_nothing_is_fetched(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    spec = dataclasses.replace(datasets.REGISTRY["fashion-mnist"], folders=(tmp_path / "nowhere",))
    monkeypatch.setitem(datasets.REGISTRY, "fashion-mnist", spec)
    monkeypatch.setattr(datasets, "download", lambda spec: pytest.fail("a download was attempted"))
    with pytest.raises(DataError, match="fashion-mnist is not on this machine, and downloading it was not allowed"):
        load_dataset("fashion-mnist", allow_download=False)


def test_unknown_dataset() -> None:
    with pytest.raises(DataError, match="unknown dataset 'nope'"):
        load_dataset("nope")


def test_validation_split_is_stratified_and_seeded() -> None:
    data = load_dataset("mnist")
    _x_tr, y_tr, _x_val, y_val = split_validation(data.x_train, data.y_train, 0.1, seed=3)
    assert len(y_val) == 6000 and len(y_tr) == 54000
    expected = np.array(TRAIN_COUNTS) * 0.1
    assert np.all(np.abs(np.bincount(y_val) - expected) <= 1)
    again = split_validation(data.x_train, data.y_train, 0.1, seed=3)
    np.testing.assert_array_equal(again[3], y_val)
    other = split_validation(data.x_train, data.y_train, 0.1, seed=4)
    assert not np.array_equal(other[1], y_tr)


def test_fashion_mnist_from_debian_package() -> None:
    require(
        Path("/usr/share/datasets/fashion-mnist").is_dir(),
        "Debian's dataset-fashion-mnist package is not installed",
    )
    data = load_dataset("fashion-mnist")
    assert data.x_train.shape == (60000, 28, 28) and data.class_names[9] == "Ankle boot"
    assert np.bincount(data.y_test).tolist() == [1000] * 10


def test_cli_rejects_a_corrupt_file_in_one_line(cli, mnist_copy: Path) -> None:  # type: ignore[no-untyped-def]
    path = mnist_copy / "train-labels-idx1-ubyte.gz"
    path.write_bytes(path.read_bytes()[:100])
    result = cli("data", "info", "--data-dir", str(mnist_copy))
    assert result.code == 2
    assert result.err.count("\n") == 1 and "train-labels-idx1-ubyte.gz" in result.err
    assert "Traceback" not in result.err + result.out
