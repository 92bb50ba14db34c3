"""Datasets in IDX format: the bundled MNIST, Fashion-MNIST, or any folder of the four files.

The first load of a set of files verifies them (checksums where known, IDX structure and
consistency always) and caches the arrays as .npy keyed by the files' own hash, so later
loads read the cache in a fraction of a second.
"""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError, WriteError
from ..utils import atomic_path, write_bytes
from .idx import decompress, parse_idx, read_bytes

PARTS = ("train-images", "train-labels", "t10k-images", "t10k-labels")
FILES = {
    "train-images": "train-images-idx3-ubyte",
    "train-labels": "train-labels-idx1-ubyte",
    "t10k-images": "t10k-images-idx3-ubyte",
    "t10k-labels": "t10k-labels-idx1-ubyte",
}
BUNDLED = Path(__file__).parent / "mnist"
MAX_DOWNLOAD = 64 << 20  # the largest compressed file of a dataset here is 26 MB


@dataclass(frozen=True)
class DatasetSpec:
    """Where a known dataset lives and the SHA-256 of each decompressed file."""

    name: str
    sha256: dict[str, str]
    class_names: tuple[str, ...]
    folders: tuple[Path, ...] = ()
    url: str = ""


DIGITS = tuple(str(d) for d in range(10))
REGISTRY: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in (
        DatasetSpec(
            "mnist",
            {
                "train-images": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
                "train-labels": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
                "t10k-images": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
                "t10k-labels": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
            },
            DIGITS,
            (BUNDLED,),
        ),
        DatasetSpec(
            "fashion-mnist",
            {
                "train-images": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
                "train-labels": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
                "t10k-images": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
                "t10k-labels": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
            },
            ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
            (Path("/usr/share/datasets/fashion-mnist"),),
            "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        ),
    )
}


@dataclass
class Dataset:
    """Images (N, 28, 28) uint8 and labels (N,) uint8 of a train and a test split."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...]
    source: str = ""

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def cache_dir() -> Path:
    """Where verified arrays and downloads are kept: $MNIST_CLASSIFIER_CACHE or ~/.cache/mnist-classifier."""
    env = os.environ.get("MNIST_CLASSIFIER_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "mnist-classifier"


def find_files(folder: Path) -> dict[str, Path] | None:
    """The four IDX files in a folder (each .gz or raw), or None if any is missing."""
    found = {}
    for part in PARTS:
        for candidate in (folder / f"{FILES[part]}.gz", folder / FILES[part]):
            if candidate.is_file():
                found[part] = candidate
                break
        else:
            return None
    return found


def download(spec: DatasetSpec) -> dict[str, Path]:
    """Fetch a dataset's four files from its mirror into the cache, verifying each before it is kept."""
    target = cache_dir() / spec.name
    files = {}
    for part in PARTS:
        path = target / f"{FILES[part]}.gz"
        if not path.is_file():
            url = f"{spec.url}{FILES[part]}.gz"
            try:
                with urllib.request.urlopen(url, timeout=30) as response:
                    data = response.read(MAX_DOWNLOAD + 1)
                if len(data) > MAX_DOWNLOAD:
                    raise DataError(f"{url}: larger than {MAX_DOWNLOAD >> 20} MB, not one of {spec.name}'s files")
            except (urllib.error.URLError, OSError) as e:
                folders = " or ".join(str(f) for f in spec.folders)
                raise DataError(
                    f"{spec.name} is not on this machine and cannot be downloaded ({e}); put its four IDX"
                    f" files in {folders or target} (Debian: apt-get install dataset-{spec.name}),"
                    f" or point --data-dir at a folder holding them"
                ) from None
            verify(spec, part, decompress(data, url), url)
            write_bytes(path, data)
        files[part] = path
    return files


def verify(spec: DatasetSpec, part: str, content: bytes, name: str = "") -> str:
    """Check decompressed content against the spec's SHA-256; return the digest."""
    digest = hashlib.sha256(content).hexdigest()
    if spec.sha256 and digest != spec.sha256[part]:
        raise DataError(
            f"{name or part}: SHA-256 {digest[:16]}... does not match {spec.name}'s {spec.sha256[part][:16]}...;"
            " the file is corrupt or not the original: replace it"
        )
    return digest


def locate(name: str, data_dir: Path | None, allow_download: bool = True) -> tuple[DatasetSpec, dict[str, Path]]:
    """The spec and the four files of a dataset, from --data-dir, a known folder or the mirror (without
    `allow_download`, a copy downloaded before or a DataError)."""
    if name not in REGISTRY and data_dir is None:
        raise DataError(f"unknown dataset {name!r}: choose one of {', '.join(REGISTRY)} or give --data-dir")
    spec = REGISTRY.get(name) or DatasetSpec(name, {}, DIGITS)
    if data_dir is not None:
        files = find_files(data_dir)
        if files is None:
            wanted = ", ".join(f"{FILES[p]}[.gz]" for p in PARTS)
            raise DataError(f"{data_dir}: expected the four IDX files {wanted}")
        return spec, files
    for folder in spec.folders:
        files = find_files(folder)
        if files is not None:
            return spec, files
    if not allow_download:
        files = find_files(cache_dir() / spec.name)
        if files is None:
            raise DataError(f"{spec.name} is not on this machine, and downloading it was not allowed")
        return spec, files
    return spec, download(spec)


def load_dataset(name: str = "mnist", data_dir: Path | None = None, allow_download: bool = True) -> Dataset:
    """Load a dataset's verified arrays, from the cache when these exact files were verified before; without
    `allow_download`, only from this machine."""
    spec, files = locate(name, data_dir, allow_download)
    key = hashlib.sha256()
    for part in PARTS:
        key.update(files[part].read_bytes())
    cached = cache_dir() / f"{spec.name}-{key.hexdigest()[:20]}"
    arrays = load_cache(cached)
    if arrays is None:
        arrays = {}
        for part in PARTS:
            content = read_bytes(files[part])
            verify(spec, part, content, str(files[part]))
            arrays[part] = parse_idx(content, str(files[part]))
        check_consistent(arrays, files, len(spec.class_names))
        save_cache(cached, arrays)
    return Dataset(
        spec.name,
        arrays["train-images"],
        arrays["train-labels"],
        arrays["t10k-images"],
        arrays["t10k-labels"],
        spec.class_names,
        source=str(files["train-images"].parent),
    )


def check_consistent(arrays: dict[str, np.ndarray], files: dict[str, Path], num_classes: int) -> None:
    """Images are (N, H, W) uint8, labels (N,) uint8 in range, and the counts agree."""
    for split in ("train", "t10k"):
        images, labels = arrays[f"{split}-images"], arrays[f"{split}-labels"]
        if images.ndim != 3 or images.dtype != np.uint8:
            raise DataError(
                f"{files[f'{split}-images']}: expected (N, H, W) uint8 images, got {images.shape} {images.dtype}"
            )
        if labels.ndim != 1 or labels.dtype != np.uint8:
            raise DataError(
                f"{files[f'{split}-labels']}: expected (N,) uint8 labels, got {labels.shape} {labels.dtype}"
            )
        if len(images) != len(labels):
            raise DataError(f"{files[f'{split}-labels']}: {len(labels)} labels for {len(images)} images")
        if len(labels) and labels.max() >= num_classes:
            raise DataError(f"{files[f'{split}-labels']}: label {labels.max()} outside 0..{num_classes - 1}")
    if arrays["train-images"].shape[1:] != arrays["t10k-images"].shape[1:]:
        raise DataError(f"{files['t10k-images']}: image size differs from the training images'")


def load_cache(folder: Path) -> dict[str, np.ndarray] | None:
    try:
        return {part: np.load(folder / f"{part}.npy") for part in PARTS}
    except (OSError, ValueError):
        return None


def save_cache(folder: Path, arrays: dict[str, np.ndarray]) -> None:
    """Best effort: a cache folder that cannot be written (read-only, full) only costs speed."""
    try:
        for part in PARTS:
            with atomic_path(folder / f"{part}.npy") as tmp, open(tmp, "wb") as f:
                np.save(f, arrays[part])
    except WriteError:
        pass


def split_validation(
    x: np.ndarray, y: np.ndarray, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A stratified, seeded split of the training set: (x_train, y_train, x_val, y_val)."""
    from sklearn.model_selection import train_test_split  # imported here: scikit-learn takes a second to load

    x_train, x_val, y_train, y_val = train_test_split(x, y, test_size=fraction, random_state=seed, stratify=y)
    return x_train, y_train, x_val, y_val


def verify_files(name: str = "mnist", data_dir: Path | None = None) -> list[tuple[Path, str, tuple[int, ...]]]:
    """Re-check a dataset's files from scratch, bypassing the cache: (file, SHA-256, shape) of each."""
    spec, files = locate(name, data_dir)
    checked, arrays = [], {}
    for part in PARTS:
        content = read_bytes(files[part])
        digest = verify(spec, part, content, str(files[part]))
        arrays[part] = parse_idx(content, str(files[part]))
        checked.append((files[part], digest, arrays[part].shape))
    check_consistent(arrays, files, len(spec.class_names))
    return checked
