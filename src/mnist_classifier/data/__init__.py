"""Datasets in IDX format and their verified loading."""

from .datasets import REGISTRY, Dataset, load_dataset, split_validation, verify_files
from .idx import read_idx, write_idx

__all__ = ["REGISTRY", "Dataset", "load_dataset", "read_idx", "split_validation", "verify_files", "write_idx"]
