"""mnist-classifier: train, evaluate, tune and serve networks that read handwritten digits."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from .config import TrainConfig, resolve
from .data import Dataset, load_dataset
from .errors import ConfigError, DataError, ImageError, MnistClassifierError, RunError

__version__ = "0.1.0"
__all__ = [
    "ConfigError",
    "DataError",
    "Dataset",
    "ImageError",
    "MnistClassifierError",
    "RunError",
    "TrainConfig",
    "load_dataset",
    "resolve",
]
