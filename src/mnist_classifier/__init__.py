"""mnist-classifier: train, evaluate, tune and serve networks that read handwritten digits.

The public Python API: `train`, `load_run` and `tune` give a `Run` (`load_run()` alone: the bundled fast CNN, ready
at install); `TrainConfig` and `resolve` describe one; `runs` lists a folder's runs as a DataFrame and `compare` sets
some side by side.
Importing it is light and changes nothing in the process: TensorFlow starts only when a model is built or loaded.
"""

from importlib.metadata import version

from .api import Predictions, Report, Run, bundled_models, load_run, resume, train, tune
from .config import TrainConfig, resolve
from .data import Dataset, load_dataset
from .errors import ConfigError, DataError, ImageError, MnistClassifierError, RunError, SettingError
from .overview import compare, runs

__version__ = version("mnist-classifier")  # pyproject.toml's, as installed
__all__ = [
    "ConfigError",
    "DataError",
    "Dataset",
    "ImageError",
    "MnistClassifierError",
    "Predictions",
    "Report",
    "Run",
    "RunError",
    "SettingError",
    "TrainConfig",
    "bundled_models",
    "compare",
    "load_dataset",
    "load_run",
    "resolve",
    "resume",
    "runs",
    "train",
    "tune",
]
